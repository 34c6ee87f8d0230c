import type { Sql } from '../db/connect.ts'
import { TX_STATUSES, type TxStatus } from '../core/txStatus.ts'

export type CountFilter = { chainId?: number | null; signer?: string | null }

/** One row per status, zeros included, in lifecycle order; one `GROUP BY status` query. */
export async function countTransactionsByStatus(sql: Sql, filter: CountFilter): Promise<Array<{ status: TxStatus; count: number }>> {
  const rows = await sql<Array<{ status: TxStatus; count: string }>>`
    SELECT status, count(*) AS count FROM transactions
    WHERE true
      ${filter.chainId != null ? sql`AND chain_id = ${filter.chainId}` : sql``}
      ${filter.signer ? sql`AND signer = ${filter.signer}` : sql``}
    GROUP BY status`
  const by = new Map(rows.map((r) => [r.status, Number(r.count)]))
  return TX_STATUSES.map((status) => ({ status, count: by.get(status) ?? 0 }))
}
