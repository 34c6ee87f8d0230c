import { ERROR_CODE } from '../core/errors.ts'
import type { Sql } from '../db/connect.ts'
import { TooManyRequestsError } from './rateLimit.ts'

export type InFlightLimiter = {
  /**
   * Throws TooManyRequestsError (429) when the key already has `max` QUEUED/PENDING/INCLUDED transactions; else
   * takes one of the key's places at once, and returns how to give it back (the request failed, or was a retry
   * of one already counted).
   */
  reserve: (keyName: string) => Promise<Reservation>
}

/** A place taken by a request being accepted: `stored` once its row is committed, `giveBack` if it was not. */
export type Reservation = { stored: () => void; giveBack: () => void }

/** How long one count is trusted: a burst costs one query per key per this, not one per request. */
export const IN_FLIGHT_CACHE_MS = 1_000

/**
 * The cap on a key's unfinished transactions, counted in Postgres (so it spans
 * instances) with the partial index transactions_key_inflight_idx, cached briefly
 * and raised locally by each request as it is let in, so a burst between reloads cannot overshoot (other
 * instances' requests since the last reload can, by up to a second's worth).
 */
export function createInFlightLimiter(sql: Sql, max: number, cacheMs = IN_FLIGHT_CACHE_MS): InFlightLimiter {
  /** `unsettled`: places taken by requests not committed yet (or not answered), which a count read from the table misses. */
  /** `storedDuringLoad`: places settled while a reload was running, which its count may or may not include. */
  const counts = new Map<string, { count: number; unsettled: number; storedDuringLoad: number; at: number; loading: Promise<number> | null }>()
  const load = (keyName: string) =>
    sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM transactions WHERE api_key_name = ${keyName} AND status IN ('QUEUED', 'PENDING', 'INCLUDED')`.then((r) => r[0]!.n)

  async function current(keyName: string): Promise<number> {
    const now = Date.now()
    let entry = counts.get(keyName)
    if (entry && now - entry.at < cacheMs) return entry.count
    if (!entry) {
      entry = { count: 0, unsettled: 0, storedDuringLoad: 0, at: 0, loading: null }
      counts.set(keyName, entry)
    }
    const e = entry
    // Concurrent requests of one key share one query.
    if (!e.loading) e.storedDuringLoad = 0
    e.loading ??= load(keyName).then(
      (n) => {
        // Places taken since are not in the table yet: a reload that forgot them let a second burst past the cap.
        // Those stored while it ran may be in its count or not: counted again (the safe side) until the next reload.
        e.count = n + e.unsettled + e.storedDuringLoad
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
    async reserve(keyName) {
      await current(keyName)
      // Checked and taken with no await in between: requests of a key sent at once each see the places the ones
      // before them took. (Checked against the count read before the await, all of a burst passed, and a cap of
      // 10 let 400 in.)
      const e = counts.get(keyName)!
      if (e.count >= max)
        throw new TooManyRequestsError(
          ERROR_CODE.TOO_MANY_IN_FLIGHT,
          `Key "${keyName}" has ${e.count} unfinished transactions (QUEUED, PENDING or INCLUDED); the limit is ${max}. Retry once some are final.`,
          Math.max(1, Math.ceil(cacheMs / 1000)),
        )
      e.count++
      e.unsettled++
      let settled = false
      const settle = (stored: boolean) => {
        if (settled) return
        settled = true
        e.unsettled--
        if (stored && e.loading) e.storedDuringLoad++
        if (!stored) e.count = Math.max(0, e.count - 1)
      }
      return { stored: () => settle(true), giveBack: () => settle(false) }
    },
  }
}
