import type { Sql } from '../db/connect.ts'
import type { PendingQuery, Row } from 'postgres'
import { TX_STATUSES, type TxStatus } from '../core/txStatus.ts'
import { pgArray } from '../db/pgArray.ts'

export type CountFilter = { chainId?: number | null; signer?: string | null }

/**
 * One row per status, zeros included, in lifecycle order. Read from status_counts plus the deltas not
 * folded in yet (kept by triggers on transactions, see the schema), never from the transactions table:
 * its cost depends on how many (chain, signer, status) combinations there are, not on how many rows.
 */
export async function countTransactionsByStatus(sql: Sql, filter: CountFilter): Promise<Array<{ status: TxStatus; count: number }>> {
  const where = sql`
    ${filter.chainId != null ? sql`AND chain_id = ${filter.chainId}` : sql``}
    ${filter.signer ? sql`AND signer = ${filter.signer}` : sql``}`
  const rows = await sql<Array<{ status: TxStatus; count: string }>>`SELECT status, sum(n) AS count FROM ${statusCountRows(sql, where)} GROUP BY status`
  const by = new Map(rows.map((r) => [r.status, Number(r.count)]))
  return TX_STATUSES.map((status) => ({ status, count: by.get(status) ?? 0 }))
}

/** Each signer's transactions in `statuses` on a chain, from the same counters (signers with none are absent). */
export async function countBySigner(sql: Sql, chainId: number, statuses: readonly TxStatus[]): Promise<Map<string, number>> {
  const where = sql`AND chain_id = ${chainId} AND status = ANY(${pgArray(statuses)}::text[])`
  const rows = await sql<Array<{ signer: string; n: number }>>`SELECT signer, sum(n)::int AS n FROM ${statusCountRows(sql, where)} GROUP BY signer`
  return new Map(rows.map((r) => [r.signer, r.n]))
}

/** The counted rows, (chain_id, signer, status, n): the folded counters plus the deltas not folded in yet. */
function statusCountRows(sql: Sql, where: PendingQuery<Row[]>) {
  return sql`(
    SELECT chain_id, signer, status, count AS n FROM status_counts WHERE true ${where}
    UNION ALL
    SELECT chain_id, signer, status, delta AS n FROM status_count_deltas WHERE true ${where}
  ) c`
}

/**
 * How many times transactions of a chain entered each status, ever (status_counts.entered plus the rises not folded
 * in yet): a counter, never lowered by retention or a retry, unlike the counts.
 */
export async function countEnteredByStatus(sql: Sql, chainId: number): Promise<Array<{ status: TxStatus; entered: number }>> {
  const rows = await sql<Array<{ status: TxStatus; n: string }>>`
    SELECT status, sum(n) AS n FROM (
      SELECT status, entered AS n FROM status_counts WHERE chain_id = ${chainId}
      UNION ALL
      SELECT status, entered AS n FROM status_count_deltas WHERE chain_id = ${chainId} AND entered > 0
    ) c GROUP BY status`
  const by = new Map(rows.map((r) => [r.status, Number(r.n)]))
  return TX_STATUSES.map((status) => ({ status, entered: by.get(status) ?? 0 }))
}
