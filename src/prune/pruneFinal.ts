import type { Logger } from '../common/logger.ts'
import type { Sql } from '../db/connect.ts'

/** Rows per DELETE: each batch is its own short transaction, so no lock is held for long. */
export const PRUNE_BATCH_SIZE = 1_000
/** Per run, then the loop sleeps: a large backlog is worked off over several runs instead of hogging Postgres. */
const MAX_BATCHES_PER_RUN = 50
/** How often the retention loop runs. */
export const PRUNE_INTERVAL_MS = 60_000

/**
 * Deletes final transactions (CONFIRMED, REVERTED, FAILED, CANCELLED) whose final_at
 * is older than `retentionDays`, with their attempts and events (same statement: neither has a foreign key),
 * oldest first, in batches. SKIP LOCKED: instances running this together, or an
 * admin retrying an old FAILED row, never wait on each other. Returns rows deleted.
 */
export async function pruneFinalTransactions(
  sql: Sql,
  opts: { retentionDays: number; batchSize?: number; maxBatches?: number; log?: Logger; signal?: AbortSignal },
): Promise<number> {
  const batchSize = opts.batchSize ?? PRUNE_BATCH_SIZE
  const maxBatches = opts.maxBatches ?? MAX_BATCHES_PER_RUN
  let total = 0
  for (let i = 0; i < maxBatches && !opts.signal?.aborted; i++) {
    const [deleted] = await sql<{ n: number }[]>`
      WITH doomed AS (
        SELECT id FROM transactions
        WHERE final_at < now() - make_interval(days => ${opts.retentionDays}::int)
        ORDER BY final_at LIMIT ${batchSize}
        FOR UPDATE SKIP LOCKED
      ), gone AS (
        DELETE FROM transactions t USING doomed WHERE t.id = doomed.id AND t.final_at IS NOT NULL RETURNING t.id
      ), events AS (
        DELETE FROM transaction_events e USING gone WHERE e.transaction_id = gone.id
      ), gone_attempts AS (
        DELETE FROM attempts a USING gone WHERE a.transaction_id = gone.id
      )
      SELECT count(*)::int AS n FROM gone`
    total += deleted!.n
    if (deleted!.n < batchSize) break
  }
  if (total > 0) opts.log?.info({ deleted: total, retentionDays: opts.retentionDays }, 'pruned final transactions past retention')
  return total
}
