import type { Sql } from '../db/connect.ts'

/** How often the deltas are folded: they are what every count read adds up besides status_counts. */
export const FOLD_STATUS_COUNTS_INTERVAL_MS = 2_000
/** Delta rows per statement, so a backlog (the loop was stopped for a while) is folded in short transactions. */
const FOLD_BATCH = 10_000

/**
 * Moves status_count_deltas into status_counts, one batch per transaction, until none are left. Instances
 * may run this together: SKIP LOCKED gives each its own rows, and the upserts go in key order so two
 * folds never deadlock. Returns the delta rows folded.
 */
export async function foldStatusCounts(sql: Sql): Promise<number> {
  let total = 0
  for (;;) {
    const [r] = await sql<{ n: number }[]>`
      WITH picked AS (
        SELECT id FROM status_count_deltas ORDER BY id LIMIT ${FOLD_BATCH} FOR UPDATE SKIP LOCKED
      ), folded AS (
        DELETE FROM status_count_deltas d USING picked WHERE d.id = picked.id
        RETURNING d.chain_id, d.signer, d.status, d.delta, d.entered
      ), upserted AS (
        INSERT INTO status_counts (chain_id, signer, status, count, entered)
        SELECT chain_id, signer, status, sum(delta), sum(entered) FROM folded GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (chain_id, signer, status) DO UPDATE SET count = status_counts.count + excluded.count, entered = status_counts.entered + excluded.entered
      )
      SELECT count(*)::int AS n FROM folded`
    total += r!.n
    if (r!.n < FOLD_BATCH) return total
  }
}
