import type { Sql } from '../db/connect.ts'
import { pgArray } from '../db/pgArray.ts'
import { clearMinedColumns } from './minedColumns.ts'

/** An INCLUDED, CONFIRMED, REVERTED or CANCELLED transaction, as it was read before a reorg was found to have taken its block. */
export type MinedRow = { id: string; status: string; nonce: number; block_hash: string; execution: number }

/**
 * A mined transaction whose block a reorg took away goes back to PENDING at its nonce, in one commit: its mined
 * columns cleared, its execution's attempts SENT again (one of them may mine again), an event saying why. Only if
 * the row is still as it was read (another instance may have got there first): returns whether it moved. A final
 * one keeps its code only when cancelled or expired (its cancel attempt is what runs); an INCLUDED one keeps its
 * code and words, as the watcher's move back to PENDING does (watchChain.ts, advanceConfirmations).
 */
export async function reopenMined(sql: Sql, row: MinedRow, detail: Record<string, string | number>): Promise<boolean> {
  return (await reopenMinedMany(sql, [{ row, detail }])).has(row.id)
}

/**
 * reopenMined for many rows in one commit (three statements in all): a reorg of a busy stretch moves thousands,
 * and one commit each took longer than the watcher's tick. Returns the ids that moved.
 */
export async function reopenMinedMany(sql: Sql, rows: { row: MinedRow; detail: Record<string, string | number> }[]): Promise<Set<string>> {
  if (rows.length === 0) return new Set()
  return sql.begin(async (tx) => {
    const back = await tx<{ id: string; from_status: string; execution: number }[]>`
      UPDATE transactions t SET status = 'PENDING', final_at = NULL, ${clearMinedColumns(sql)},
        error_code = CASE WHEN t.status = 'INCLUDED' OR t.error_code IN ('CANCELLED', 'EXPIRED') THEN t.error_code END,
        error_message = CASE WHEN t.status = 'INCLUDED' OR t.error_code IN ('CANCELLED', 'EXPIRED') THEN t.error_message END,
        last_sent_at = now(), updated_at = now()
      FROM unnest(${pgArray(rows.map((r) => r.row.id))}::uuid[], ${pgArray(rows.map((r) => r.row.status))}::text[], ${pgArray(rows.map((r) => r.row.nonce))}::bigint[],
                  ${pgArray(rows.map((r) => r.row.block_hash))}::text[]) AS v(id, status, nonce, block_hash)
      WHERE t.id = v.id AND t.status = v.status AND t.nonce = v.nonce AND t.block_hash = v.block_hash
      RETURNING t.id, v.status AS from_status, t.execution`
    if (back.length === 0) return new Set<string>()
    await tx`
      UPDATE attempts a SET status = 'SENT' FROM unnest(${pgArray(back.map((b) => b.id))}::uuid[], ${pgArray(back.map((b) => b.execution))}::int[]) AS v(id, execution)
      WHERE a.transaction_id = v.id AND a.execution = v.execution AND a.status IN ('MINED', 'REPLACED')`
    const detailOf = new Map(rows.map((r) => [r.row.id, JSON.stringify(r.detail)]))
    await tx`
      INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
      SELECT v.id, v.from_status, 'PENDING', v.detail::jsonb
      FROM unnest(${pgArray(back.map((b) => b.id))}::uuid[], ${pgArray(back.map((b) => b.from_status))}::text[], ${pgArray(back.map((b) => detailOf.get(b.id)!))}::text[]) AS v(id, from_status, detail)`
    return new Set(back.map((b) => b.id))
  })
}
