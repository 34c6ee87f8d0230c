import type { Sql } from '../db/connect.ts'
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
  return sql.begin(async (tx) => {
    const back = await tx`
      UPDATE transactions SET status = 'PENDING', final_at = NULL, ${clearMinedColumns(sql)},
        error_code = CASE WHEN status = 'INCLUDED' OR error_code IN ('CANCELLED', 'EXPIRED') THEN error_code END,
        error_message = CASE WHEN status = 'INCLUDED' OR error_code IN ('CANCELLED', 'EXPIRED') THEN error_message END,
        last_sent_at = now(), updated_at = now()
      WHERE id = ${row.id} AND status = ${row.status} AND nonce = ${row.nonce} AND block_hash = ${row.block_hash}`
    if (!back.count) return false
    await tx`UPDATE attempts SET status = 'SENT' WHERE transaction_id = ${row.id} AND execution = ${row.execution} AND status IN ('MINED', 'REPLACED')`
    await tx`
      INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
      VALUES (${row.id}, ${row.status}, 'PENDING', ${tx.json(detail)}::jsonb)`
    return true
  })
}
