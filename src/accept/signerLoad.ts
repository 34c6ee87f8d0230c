import type { Sql } from '../db/connect.ts'
import { countBySigner } from '../store/countTransactions.ts'

/** How long a read of the signers' backlogs is used before the next (it runs in the background). */
const REFRESH_MS = 1_000

/**
 * The signer with the fewest unfinished transactions, the earliest in `order` on a tie. Pure: `order` is the
 * chain's signers from the round-robin position, so equal backlogs still take turns.
 */
export function leastLoaded(order: readonly string[], backlog: ReadonlyMap<string, number>): string {
  let best = order[0]!
  for (const s of order) if ((backlog.get(s) ?? 0) < (backlog.get(best) ?? 0)) best = s
  return best
}

/**
 * Each signer's unfinished (QUEUED + PENDING) transactions, per chain, from the trigger-kept counters (never
 * the transactions table), re-read at most once a second in the background, plus what this process accepted
 * for it since. A request that names no signer goes to the least loaded one: a signer that cannot send (short
 * of funds, stuck behind a nonce, a remote signer that is down) piles up work and stops getting more, where
 * taking turns blindly gave it its share of every request.
 */
export function createSignerLoad(sql: Sql) {
  type State = { backlog: Map<string, number>; readAt: number; reading: Promise<void> | null }
  const chains = new Map<number, State>()

  function refresh(chainId: number, state: State): Promise<void> {
    return (state.reading = countBySigner(sql, chainId, ['QUEUED', 'PENDING'])
      .then((backlog) => {
        state.backlog = backlog
        state.readAt = Date.now()
      })
      // Postgres unreachable: the accept itself fails with the real error; the last counts are kept.
      .catch(() => {})
      .finally(() => (state.reading = null)))
  }

  return {
    /** The least loaded of `order` as last read (waited for only the first time), counting the picks made since. */
    async pick(chainId: number, order: readonly string[]): Promise<string> {
      let state = chains.get(chainId)
      if (!state) chains.set(chainId, (state = { backlog: new Map(), readAt: 0, reading: null }))
      if (!state.reading && Date.now() - state.readAt >= REFRESH_MS) {
        const read = refresh(chainId, state)
        if (state.readAt === 0) await read
      } else if (state.readAt === 0 && state.reading) await state.reading
      const chosen = leastLoaded(order, state.backlog)
      state.backlog.set(chosen, (state.backlog.get(chosen) ?? 0) + 1)
      return chosen
    },
  }
}

export type SignerLoad = ReturnType<typeof createSignerLoad>
