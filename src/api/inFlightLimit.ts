import { ERROR_CODE } from '../core/errors.ts'
import type { Sql } from '../db/connect.ts'
import { TooManyRequestsError } from './rateLimit.ts'

export type InFlightLimiter = {
  /** Throws TooManyRequestsError (429) when the key already has `max` QUEUED/PENDING/INCLUDED transactions. */
  check: (keyName: string) => Promise<void>
  /** Counts a just-accepted transaction until the next reload. */
  accepted: (keyName: string) => void
}

/** How long one count is trusted: a burst costs one query per key per this, not one per request. */
export const IN_FLIGHT_CACHE_MS = 1_000

/**
 * The cap on a key's unfinished transactions, counted in Postgres (so it spans
 * instances) with the partial index transactions_key_inflight_idx, cached briefly
 * and bumped locally on each accept so a burst between reloads cannot overshoot by much.
 */
export function createInFlightLimiter(sql: Sql, max: number, cacheMs = IN_FLIGHT_CACHE_MS): InFlightLimiter {
  const counts = new Map<string, { count: number; at: number; loading: Promise<number> | null }>()
  const load = (keyName: string) =>
    sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM transactions WHERE api_key_name = ${keyName} AND status IN ('QUEUED', 'PENDING', 'INCLUDED')`.then((r) => r[0]!.n)

  async function current(keyName: string): Promise<number> {
    const now = Date.now()
    let entry = counts.get(keyName)
    if (entry && now - entry.at < cacheMs) return entry.count
    if (!entry) {
      entry = { count: 0, at: 0, loading: null }
      counts.set(keyName, entry)
    }
    const e = entry
    // Concurrent requests of one key share one query.
    e.loading ??= load(keyName).then(
      (n) => {
        e.count = n
        e.at = Date.now()
        e.loading = null
        return n
      },
      (err: unknown) => {
        e.loading = null
        throw err
      },
    )
    return e.loading
  }

  return {
    async check(keyName) {
      const n = await current(keyName)
      if (n >= max)
        throw new TooManyRequestsError(
          ERROR_CODE.TOO_MANY_IN_FLIGHT,
          `Key "${keyName}" has ${n} unfinished transactions (QUEUED, PENDING or INCLUDED); the limit is ${max}. Retry once some are final.`,
          Math.max(1, Math.ceil(cacheMs / 1000)),
        )
    },
    accepted(keyName) {
      const e = counts.get(keyName)
      if (e) e.count++
    },
  }
}
