import type { Sql } from '../db/connect.ts'
import { countBySigner } from '../store/countTransactions.ts'

/** How long a read of the signers' backlogs is used before the next (it runs in the background). */
const REFRESH_MS = 1_000
/** A read older than this (requests came seldom) is waited for, not used while a new one runs. */
const STALE_MS = 5_000

/**
 * The signer with the fewest unfinished transactions, the earliest in `order` on a tie, leaving out those in
 * `avoid` (short of funds) unless every one is. Pure: `order` is the chain's signers from the round-robin
 * position, so equal backlogs still take turns.
 */
export function leastLoaded(order: readonly string[], backlog: ReadonlyMap<string, number>, avoid: ReadonlySet<string> = new Set()): string {
  const usable = order.filter((s) => !avoid.has(s))
  const from = usable.length ? usable : order
  let best = from[0]!
  for (const s of from) if ((backlog.get(s) ?? 0) < (backlog.get(best) ?? 0)) best = s
  return best
}

/**
 * Each signer's unfinished (QUEUED + PENDING) transactions, per chain, from the trigger-kept counters (never
 * the transactions table), re-read at most once a second in the background, plus what this process accepted
 * for it since. A request that names no signer goes to the least loaded one: a signer that cannot send (short
 * of funds, stuck behind a nonce, a remote signer that is down) piles up work and stops getting more, where
 * taking turns blindly gave it its share of every request. One the sign stage last found short of funds
 * (signer_nonces.short_of_funds_at, so every instance sees it), or whose remote signer is failing
 * (remote_failing_since), is left out while another can take the request. A failing remote signer's queue is
 * moved off it, so its backlog was the smallest: it got the next requests, each of which waited out its time-out
 * and then moved.
 */
export function createSignerLoad(sql: Sql) {
  type State = { backlog: Map<string, number>; short: Set<string>; readAt: number; reading: Promise<void> | null }
  const chains = new Map<number, State>()

  function refresh(chainId: number, state: State): Promise<void> {
    return (state.reading = Promise.all([
      countBySigner(sql, chainId, ['QUEUED', 'PENDING']),
      // Flagged by the sign stage; cleared by it or by the recovery sweep once the signer can pay (sign/shortOfFunds.ts).
      sql<{ signer: string }[]>`
        SELECT signer FROM signer_nonces WHERE chain_id = ${chainId} AND (short_of_funds_at IS NOT NULL OR remote_failing_since IS NOT NULL)`,
    ])
      .then(([backlog, short]) => {
        state.backlog = backlog
        state.short = new Set(short.map((r) => r.signer))
        state.readAt = Date.now()
      })
      // Postgres unreachable: the accept itself fails with the real error; the last counts are kept.
      .catch(() => {})
      .finally(() => (state.reading = null)))
  }

  return {
    /** The least loaded of `order` as last read (waited for when older than STALE_MS), counting the picks made since. */
    async pick(chainId: number, order: readonly string[]): Promise<string> {
      let state = chains.get(chainId)
      if (!state) chains.set(chainId, (state = { backlog: new Map(), short: new Set(), readAt: 0, reading: null }))
      const age = Date.now() - state.readAt
      if (!state.reading && age >= REFRESH_MS) {
        const read = refresh(chainId, state)
        if (age >= STALE_MS) await read
      } else if (age >= STALE_MS && state.reading) await state.reading
      const chosen = leastLoaded(order, state.backlog, state.short)
      state.backlog.set(chosen, (state.backlog.get(chosen) ?? 0) + 1)
      return chosen
    },
  }
}

export type SignerLoad = ReturnType<typeof createSignerLoad>
