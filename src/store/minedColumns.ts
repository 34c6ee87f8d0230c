import type { Sql } from '../db/connect.ts'

/**
 * The transaction columns its receipt filled in. Whenever the transaction is no longer in that block (a reorg,
 * a reorg deeper than the confirmation depth, an admin's retry) they are all cleared together: kept in one
 * list, a column added later (contract_address, revert_reason) cannot be forgotten in one of those places.
 */
const MINED_COLUMNS = [
  'mined_hash',
  'block_number',
  'block_hash',
  'receipt_status',
  'gas_used',
  'effective_gas_price',
  'contract_address',
  'revert_reason',
  'included_at',
] as const

/** `SET` assignments clearing every mined column, as a fragment for `UPDATE transactions SET ${clearMinedColumns(sql)}, ...`. */
export function clearMinedColumns(sql: Sql) {
  return sql.unsafe(MINED_COLUMNS.map((c) => `${c} = NULL`).join(', '))
}
