import type { Sql } from '../db/connect.ts'

/**
 * Recounts status_counts from the transactions table, for when the counting triggers were bypassed (disabled
 * triggers, session_replication_role = replica, a data-only restore). Holds writes to transactions while it
 * counts (about a second per million rows): the lock is the one the triggers' creation took, so no change
 * falls between the count and the counters. Returns the transactions counted.
 */
export async function rebuildStatusCounts(sql: Sql): Promise<number> {
  return sql.begin(async (tx) => {
    await tx`LOCK TABLE transactions IN SHARE ROW EXCLUSIVE MODE`
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
