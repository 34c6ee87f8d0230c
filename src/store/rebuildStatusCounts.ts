import type { Sql } from '../db/connect.ts'
import { isLockTimeout } from '../db/lockTimeout.ts'

/** How long the rebuild waits for its lock on transactions before it gives up. */
const LOCK_WAIT_MS = 2_000

/** Rows past which the CLI asks for --yes: writes wait about a second per million while it counts. */
export const REBUILD_CONFIRM_ROWS = 1_000_000

/**
 * The planner's estimate of the rows in transactions: what a rebuild would count. A table never analysed (-1: right
 * after a data-only restore, the very case for a rebuild) is counted, up to just past REBUILD_CONFIRM_ROWS.
 */
export async function estimatedTransactions(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`SELECT reltuples::int8 AS n FROM pg_class WHERE oid = 'transactions'::regclass`
  const estimate = Number(row?.n ?? -1)
  if (estimate >= 0) return estimate
  const [counted] = await sql<{ n: number }[]>`SELECT count(*)::int8 AS n FROM (SELECT 1 FROM transactions LIMIT ${REBUILD_CONFIRM_ROWS + 1}) t`
  return Number(counted!.n)
}

/**
 * Recounts status_counts from the transactions table, for when the counting triggers were bypassed (disabled
 * triggers, session_replication_role = replica, a data-only restore). Holds writes to transactions while it
 * counts (about a second per million rows): the lock is the one the triggers' creation took, so no change
 * falls between the count and the counters. Returns the transactions counted.
 */
export async function rebuildStatusCounts(sql: Sql): Promise<number> {
  return sql.begin(async (tx) => {
    // Waiting in line for the lock (behind a long write), every accept queued behind this request, for as long:
    // it gives up instead, and says so.
    await tx.unsafe(`SET LOCAL lock_timeout = '${LOCK_WAIT_MS}ms'`)
    await tx`LOCK TABLE transactions IN SHARE ROW EXCLUSIVE MODE`.catch((err: unknown) => {
      if (!isLockTimeout(err)) throw err
      throw new Error(`another transaction is writing to the transactions table (waited ${LOCK_WAIT_MS / 1000} s for it; writes queued behind this meanwhile): nothing was changed, try again`)
    })
    await tx`SET LOCAL lock_timeout = 0`
    // Entries not folded yet go into `entered` first: dropped with the deltas, the counter fell (a reset to
    // Prometheus, and an alert on its increase() fired for the whole total). Taken by the DELETE itself: read
    // apart, deltas a running instance's fold had taken (not committed yet) were added here too, counting them
    // twice, or the delete then waited on that fold while it waited on these counters' rows (a deadlock).
    await tx`
      WITH taken AS (DELETE FROM status_count_deltas RETURNING chain_id, signer, status, entered)
      INSERT INTO status_counts (chain_id, signer, status, count, entered)
      SELECT chain_id, signer, status, 0, sum(entered) FROM taken GROUP BY 1, 2, 3 HAVING sum(entered) > 0 ORDER BY 1, 2, 3
      ON CONFLICT (chain_id, signer, status) DO UPDATE SET entered = status_counts.entered + excluded.entered`
    // Counts start again from the table; `entered` (a counter, never lowered) is kept, at least the count.
    await tx`UPDATE status_counts SET count = 0`
    const [r] = await tx<{ n: number }[]>`
      WITH counted AS (
        INSERT INTO status_counts (chain_id, signer, status, count, entered)
        SELECT chain_id, signer, status, count(*), count(*) FROM transactions GROUP BY 1, 2, 3
        ON CONFLICT (chain_id, signer, status) DO UPDATE SET count = excluded.count, entered = GREATEST(status_counts.entered, excluded.count)
        RETURNING count
      )
      SELECT COALESCE(sum(count), 0)::int AS n FROM counted`
    return r!.n
  })
}
