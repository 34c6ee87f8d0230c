import type { Sql } from '../db/connect.ts'
import type { TxStatus } from '../core/txStatus.ts'
import { getTableColumns } from 'drizzle-orm'
import { attempts, transactions } from '../db/schema.ts'
import type { AttemptView, EventRow, ListedTransactionRow, TransactionRow } from './transactionRow.ts'
import { pgArray } from '../db/pgArray.ts'

export async function getTransaction(sql: Sql, id: string): Promise<TransactionRow | null> {
  const [row] = await sql<TransactionRow[]>`SELECT * FROM transactions WHERE id = ${id}`
  return row ?? null
}

/** By any attempt's hash: a client may hold the hash of an attempt that was later replaced. */
export async function getTransactionByHash(sql: Sql, hash: string): Promise<TransactionRow | null> {
  const [row] = await sql<TransactionRow[]>`
    SELECT t.* FROM attempts a JOIN transactions t ON t.id = a.transaction_id WHERE a.hash = ${hash.toLowerCase()}`
  return row ?? null
}

/** Transactions whose id lies in [from, to] (an id prefix as a range over the primary key), at most `limit`. */
export async function getTransactionsInIdRange(sql: Sql, range: { from: string; to: string }, limit: number): Promise<ListedTransactionRow[]> {
  return sql<ListedTransactionRow[]>`SELECT ${listedColumns(sql)} FROM transactions WHERE id BETWEEN ${range.from}::uuid AND ${range.to}::uuid ORDER BY id LIMIT ${limit}`
}

/** Calldata up to this long (hex characters) comes with a listed row; longer is read when asked for (ListedTransactionRow). */
export const INLINE_DATA_CHARS = 4_096

/** Every column of `transactions`, `data` only when short: for lists and the change feed. */
export function listedColumns(sql: Sql, alias = 'transactions') {
  return sql`${sql(TRANSACTION_COLUMNS.map((c) => `${alias}.${c}`))}, CASE WHEN length(${sql(alias)}.data) <= ${INLINE_DATA_CHARS} THEN ${sql(alias)}.data END AS data`
}
const TRANSACTION_COLUMNS = columnNamesExcept(transactions, 'data')

/** A table's column names (as in the database), but one: for a select list that leaves a large column out. */
function columnNamesExcept(table: typeof transactions | typeof attempts, left: string): string[] {
  return Object.values(getTableColumns(table))
    .map((c) => c.name)
    .filter((name) => name !== left)
}

/** The calldata of these transactions, in their order (null for one not found). */
export async function getDataFor(sql: Sql, ids: readonly string[]): Promise<(string | null)[]> {
  const rows = await sql<{ id: string; data: string }[]>`SELECT id, data FROM transactions WHERE id = ANY(${pgArray(ids as string[])}::uuid[])`
  const byId = new Map(rows.map((r) => [r.id, r.data]))
  return ids.map((id) => byId.get(id) ?? null)
}

/** How long these transactions' calldata is, in hex characters, all together (read without reading the data). */
export async function dataLengthOf(sql: Sql, ids: readonly string[]): Promise<number> {
  const [row] = await sql<{ n: number }[]>`SELECT coalesce(sum(length(data)), 0)::int8 AS n FROM transactions WHERE id = ANY(${pgArray(ids as string[])}::uuid[])`
  return row?.n ?? 0
}

export type ListFilter = { statuses?: TxStatus[] | null; chainId?: number | null; signer?: string | null }

/** Newest first, keyset-paginated on seq, so page N costs the same as page 1. */
export async function listTransactions(sql: Sql, filter: ListFilter, limit: number, beforeSeq: number | null): Promise<ListedTransactionRow[]> {
  const rest = sql`
      ${filter.chainId != null ? sql`AND chain_id = ${filter.chainId}` : sql``}
      ${filter.signer ? sql`AND signer = ${filter.signer}` : sql``}
      ${beforeSeq !== null ? sql`AND seq < ${beforeSeq}` : sql``}`
  const statuses = [...new Set(filter.statuses ?? [])]
  if (statuses.length === 0) return sql<ListedTransactionRow[]>`SELECT ${listedColumns(sql)} FROM transactions WHERE true ${rest} ORDER BY seq DESC LIMIT ${limit}`
  // One ordered scan of the (status, seq) index per status, merged. The planner walked the whole table backwards by
  // seq instead, expecting a status spread evenly over it: the Failed tab took 575 ms with 200,000 old failures in
  // a million rows (and `status = ANY(...)` over several statuses cannot follow that index in seq order at all).
  // Each status as a one-element array, ordered as (status, seq): with `status = x` the planner drops status from
  // the order as a constant, and the seq walk wins again. One query text for any set of statuses: a text per set
  // (and per order of it) was a prepared statement each, on every connection, for any reader key to multiply.
  return sql<ListedTransactionRow[]>`
    SELECT t.* FROM unnest(${pgArray(statuses)}::text[]) AS s(status)
    CROSS JOIN LATERAL (
      SELECT ${listedColumns(sql)} FROM transactions WHERE status = ANY(ARRAY[s.status]) ${rest} ORDER BY status DESC, seq DESC LIMIT ${limit}
    ) AS t
    ORDER BY t.seq DESC LIMIT ${limit}`
}

/*
 * Why the attempts and events of a list are read one transaction at a time (a LATERAL join on the (transaction_id,
 * id) index) and not `transaction_id = ANY(ids) ORDER BY id`: the planner chose that form's plan by the table's
 * statistics, and on a table filled faster than autovacuum analyses it (a new deployment's first busy hour, the bench)
 * it walked the whole table in id order, filtering (2,949 rows read for 51 with 3,000 attempts; it grows with the
 * table). Per transaction, the index is the only sensible plan, in id order, whatever the statistics.
 */

/**
 * A transaction's attempts, each MINED one with its receipt's status: the transaction's while it is the one that
 * mined, else (an earlier execution, retried after it reverted) the one its INCLUDED event recorded.
 */
export async function getAttemptsFor(sql: Sql, ids: readonly string[]): Promise<AttemptView[][]> {
  // Not `raw`: no answer shows the signed bytes, and read with every attempt of 500 listed transactions they were
  // hundreds of MB for nothing (an attempt of 127 KiB calldata is that much again, per fee raise).
  const rows = await sql<AttemptView[]>`
    SELECT x.* FROM (SELECT DISTINCT id FROM unnest(${pgArray(ids as string[])}::uuid[]) AS ids(id)) AS u CROSS JOIN LATERAL (
      SELECT ${sql(ATTEMPT_COLUMNS.map((c) => `a.${c}`))}, CASE WHEN a.status = 'MINED' THEN coalesce(
        (SELECT t.receipt_status FROM transactions t WHERE t.id = a.transaction_id AND t.mined_hash = a.hash),
        (SELECT e.detail->>'receiptStatus' FROM transaction_events e
         WHERE e.transaction_id = a.transaction_id AND e.to_status = 'INCLUDED' AND e.detail->>'hash' = a.hash ORDER BY e.id DESC LIMIT 1)) END AS receipt_status
      FROM attempts a WHERE a.transaction_id = u.id ORDER BY a.id) AS x`
  return groupByTransaction(ids, rows)
}

const ATTEMPT_COLUMNS = columnNamesExcept(attempts, 'raw')

/** The highest block each chain's watcher has scanned (chain_cursors), by chain id; null before it ran. */
export async function getScannedHeads(sql: Sql, chainIds: readonly number[]): Promise<(number | null)[]> {
  const rows = await sql<{ chain_id: number; block_number: number }[]>`
    SELECT chain_id, block_number FROM chain_cursors WHERE chain_id = ANY(${pgArray(chainIds.map(String))}::int[])`
  return chainIds.map((id) => rows.find((r) => r.chain_id === id)?.block_number ?? null)
}

export async function getEventsFor(sql: Sql, ids: readonly string[]): Promise<EventRow[][]> {
  const rows = await sql<EventRow[]>`
    SELECT e.* FROM (SELECT DISTINCT id FROM unnest(${pgArray(ids as string[])}::uuid[]) AS ids(id)) AS u
    CROSS JOIN LATERAL (SELECT * FROM transaction_events WHERE transaction_id = u.id ORDER BY id) AS e`
  return groupByTransaction(ids, rows)
}

/** Each id's rows, in the order read (an id asked for twice gets the same array at both places). */
function groupByTransaction<R extends { transaction_id: string }>(ids: readonly string[], rows: readonly R[]): R[][] {
  const byId = new Map<string, R[]>()
  for (const r of rows) {
    const list = byId.get(r.transaction_id)
    if (list) list.push(r)
    else byId.set(r.transaction_id, [r])
  }
  return ids.map((id) => byId.get(id) ?? [])
}
