/**
 * Health of each RPC provider of a chain: healthy, degraded or down, from its
 * recent errors, latency and how far its head is behind the chain's best head.
 * A pure core (state in, state out, time as a parameter) with table-driven tests
 * beside it, and a small holder per chain that the transports and the periodic
 * check write to, and the broadcast stage, the read fallback and the API read.
 */

export type ProviderStatus = 'healthy' | 'degraded' | 'down'

export type HealthPolicy = {
  /** Consecutive failed requests after which a provider is down. */
  downAfterFailures: number
  /** A down provider is skipped at least this long; the wait doubles each time it is found still failing. */
  downForMs: number
  /** Ceiling of that doubling: a provider that comes back is used again within this long. */
  maxDownForMs: number
  /** Head further behind the best head of the chain's providers than this: degraded, and left out of reads. */
  maxLagBlocks: number
  /** Mean latency above this: degraded. */
  slowMs: number
  /** Errors are counted over this window ("errorsLastMinute"). */
  windowMs: number
}

export type ProviderState = {
  /** null until the provider's chain id was checked; false while it serves another chain. */
  chainOk: boolean | null
  consecutiveFailures: number
  /** [epoch second, failures in that second], oldest first, only within the window: bounded however many requests fail. */
  errorSeconds: ReadonlyArray<readonly [number, number]>
  /** Moving average of answered requests' latency. */
  latencyMs: number | null
  headBlock: bigint | null
  /** Set while down: skipped by sends and reads until `downUntil`, then retried. */
  downSince: number | null
  downUntil: number | null
  /** Times in a row it was found down without answering in between: the doubling's exponent. */
  downStreak: number
  lastError: string | null
  lastErrorAt: number | null
}

/** Weight of the newest sample in the latency average. */
const LATENCY_ALPHA = 0.3

export function initialProviderState(): ProviderState {
  return {
    chainOk: null,
    consecutiveFailures: 0,
    errorSeconds: [],
    latencyMs: null,
    headBlock: null,
    downSince: null,
    downUntil: null,
    downStreak: 0,
    lastError: null,
    lastErrorAt: null,
  }
}

function downForMs(streak: number, policy: HealthPolicy): number {
  return Math.min(policy.maxDownForMs, policy.downForMs * 2 ** Math.min(streak, 20))
}

function goDown(s: ProviderState, now: number, policy: HealthPolicy): ProviderState {
  return { ...s, downSince: s.downSince ?? now, downUntil: now + downForMs(s.downStreak, policy), downStreak: s.downStreak + 1 }
}

/** A request the provider answered (an RPC error such as "nonce too low" is an answer too). */
export function onSuccess(s: ProviderState, latencyMs: number, now: number): ProviderState {
  const latency = s.latencyMs === null ? latencyMs : s.latencyMs + LATENCY_ALPHA * (latencyMs - s.latencyMs)
  const next = { ...s, consecutiveFailures: 0, latencyMs: Math.round(latency) }
  // Still inside its time-out: an answer (a probe) does not shorten it; after it, the provider is back.
  if (s.downSince !== null && s.downUntil !== null && now < s.downUntil) return next
  return { ...next, downSince: null, downUntil: null, downStreak: 0 }
}

/**
 * A request that failed because of the provider: timeout, connection error, HTTP 5xx/429, rate limit.
 * A timeout takes it down at once: every caller that tries it again waits the whole timeout.
 */
export function onFailure(s: ProviderState, message: string, now: number, policy: HealthPolicy, opts: { timeout?: boolean } = {}): ProviderState {
  const second = Math.floor(now / 1000)
  const kept = s.errorSeconds.filter(([sec]) => sec > second - Math.ceil(policy.windowMs / 1000))
  const last = kept.at(-1)
  const errorSeconds = last && last[0] === second ? [...kept.slice(0, -1), [second, last[1] + 1] as const] : [...kept, [second, 1] as const]
  const next: ProviderState = { ...s, consecutiveFailures: s.consecutiveFailures + 1, errorSeconds, lastError: message, lastErrorAt: now }
  if (next.downSince === null) return opts.timeout || next.consecutiveFailures >= policy.downAfterFailures ? goDown(next, now, policy) : next
  // Retried after its time-out and still failing: skip it for longer.
  return next.downUntil !== null && now >= next.downUntil ? goDown(next, now, policy) : next
}

/**
 * A health check it answered (the right chain id, and a head) while down, when every other provider of the chain is
 * down too: back at once, not at the end of its time-out (up to maxDownForMs). Meanwhile another one, down and
 * unanswering, got every send and read each time its own shorter time-out ended, until it timed out again. Its
 * streak is kept: failing again, it is skipped for longer.
 */
export function onCheckAnswered(s: ProviderState, othersDown: boolean): ProviderState {
  if (s.chainOk !== true || s.downSince === null || !othersDown) return s
  return { ...s, downSince: null, downUntil: null, consecutiveFailures: 0 }
}

/** The answer to eth_chainId: a provider serving another chain is down until it serves ours. */
export function onChainId(s: ProviderState, actual: number, expected: number, now: number): ProviderState {
  if (actual === expected) return { ...s, chainOk: true }
  return { ...s, chainOk: false, lastError: `serves chain ${actual}, not ${expected}`, lastErrorAt: now }
}

export function onHead(s: ProviderState, head: bigint): ProviderState {
  return { ...s, headBlock: head }
}

export function errorsInWindow(s: ProviderState, now: number, policy: HealthPolicy): number {
  const from = Math.floor((now - policy.windowMs) / 1000)
  return s.errorSeconds.reduce((n, [sec, count]) => (sec > from ? n + count : n), 0)
}

/**
 * The head the others' lag is measured from, of three or more providers' heads: the second highest (one that two of
 * them reached). One provider answering a head far ahead of the rest (a bug, a minority branch) made
 * every other provider look behind: they were skipped for reads, and every read (the watcher's blocks and their
 * hashes at depth) went to that one.
 */
export function corroboratedHead(heads: bigint[]): bigint | null {
  if (heads.length === 0) return null
  const sorted = [...heads].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0))
  return sorted.length >= 3 ? sorted[1]! : sorted[0]!
}

/** Blocks behind the best head seen on the chain's providers; null until both are known. */
export function headLag(s: ProviderState, bestHead: bigint | null): number | null {
  if (s.headBlock === null || bestHead === null) return null
  return Number(bestHead > s.headBlock ? bestHead - s.headBlock : 0n)
}

export function isDown(s: ProviderState): boolean {
  return s.chainOk !== true || s.downSince !== null
}

export function providerStatus(s: ProviderState, bestHead: bigint | null, now: number, policy: HealthPolicy): ProviderStatus {
  if (isDown(s)) return 'down'
  const lag = headLag(s, bestHead)
  if (errorsInWindow(s, now, policy) > 0 || (s.latencyMs !== null && s.latencyMs > policy.slowMs) || (lag !== null && lag > policy.maxLagBlocks))
    return 'degraded'
  return 'healthy'
}

/** Sends go to every provider that is not down (a slow or lagging node still relays a transaction). */
export function canSend(s: ProviderState, now: number): boolean {
  if (s.chainOk !== true) return false
  return s.downSince === null || (s.downUntil !== null && now >= s.downUntil)
}

/** Reads skip down providers and ones so far behind that they would answer "not found" for recent blocks. */
export function canRead(s: ProviderState, bestHead: bigint | null, now: number, policy: HealthPolicy): boolean {
  if (!canSend(s, now)) return false
  const lag = headLag(s, bestHead)
  return lag === null || lag <= policy.maxLagBlocks
}

/** What the API shows for one provider. No URL: it may hold credentials. */
export type ProviderHealthView = {
  name: string
  chainId: number
  status: ProviderStatus
  latencyMs: number | null
  headBlock: bigint | null
  headLag: number | null
  errorsLastMinute: number
  consecutiveFailures: number
  lastError: string | null
  lastErrorAt: Date | null
  downUntil: Date | null
}

/** The health of one chain's providers: written by the transports and the periodic check. */
export type ProviderHealth = {
  chainId: number
  policy: HealthPolicy
  recordSuccess: (name: string, latencyMs: number) => void
  recordFailure: (name: string, message: string, opts?: { timeout?: boolean }) => void
  /** Down at once (unreachable at start-up), whatever the failure count. */
  markDown: (name: string, message: string) => void
  recordChainId: (name: string, actual: number) => void
  recordHead: (name: string, head: bigint) => void
  /** The periodic check's eth_chainId and eth_blockNumber both answered (after recordChainId and recordHead). */
  recordCheckAnswered: (name: string) => void
  /**
   * A head some read got from the provider between checks (the watcher's, each block). Not the provider's head for
   * the lag: the others' are as old as the last check, and would look behind (degraded, skipped for reads) on a
   * fast chain.
   */
  recordSeenHead: (name: string, head: bigint) => void
  /**
   * The chain's head as last known: the highest of each provider's last head (checked or read) among those serving
   * the chain. Per provider, so reads moving to another provider a block behind do not take it back below the
   * watcher's cursor; checked when asked, so one found serving another chain says nothing of this one's.
   */
  latestHead: () => bigint | null
  /** False for a down provider, unless every provider of the chain is down: then all are tried. */
  usableForSend: (name: string) => boolean
  usableForRead: (name: string) => boolean
  view: () => ProviderHealthView[]
}

/** A provider's state changing in a way an operator wants to read in the log (once per change, not per request). */
export type ProviderChange = { name: string; change: 'down' | 'up' | 'wrong_chain'; error: string | null }

export function createProviderHealth(args: {
  chainId: number
  names: readonly string[]
  policy: HealthPolicy
  now?: () => number
  onChange?: (c: ProviderChange) => void
}): ProviderHealth {
  const { chainId, policy } = args
  const now = args.now ?? Date.now
  const states = new Map<string, ProviderState>(args.names.map((n) => [n, initialProviderState()]))
  const update = (name: string, fn: (s: ProviderState) => ProviderState) => {
    const s = states.get(name)
    if (!s) return
    const next = fn(s)
    states.set(name, next)
    // A provider going down or coming back was seen only in its effects (the stages' errors), never said.
    if (!args.onChange) return
    if (s.downSince === null && next.downSince !== null) args.onChange({ name, change: 'down', error: next.lastError })
    else if (s.downSince !== null && next.downSince === null) args.onChange({ name, change: 'up', error: null })
    if (s.chainOk !== false && next.chainOk === false) args.onChange({ name, change: 'wrong_chain', error: next.lastError })
  }
  // Corroborated among providers that are up only: a down one's head is as old as its last answer, and counted as one
  // of three it made a lagging one look current. With fewer than three up, the highest of all, as before.
  const bestHead = (): bigint | null => {
    const known = [...states.values()].filter((s) => s.chainOk === true && s.headBlock !== null)
    const up = known.filter((s) => !isDown(s))
    if (up.length >= 3) return corroboratedHead(up.map((s) => s.headBlock!))
    return known.reduce<bigint | null>((best, s) => (best === null || s.headBlock! > best ? s.headBlock! : best), null)
  }
  /** Each provider's head: from its last check, or the highest read since. */
  const lastHeads = new Map<string, bigint>()
  const usable = (name: string, test: (s: ProviderState, t: number, best: bigint | null) => boolean) => {
    const t = now()
    const best = bestHead()
    const s = states.get(name)
    if (!s) return false
    if (test(s, t, best)) return true
    // Known to serve another chain: never, not even when no provider passes. Tried with the others, its answers
    // ("invalid chain id" to every send, read as never valid) failed requests and handed their nonces on, and its
    // reads (nonce counts, fees, receipts, estimates) were another chain's.
    if (s.chainOk === false) return false
    // No provider passes: try them all rather than none.
    for (const other of states.values()) if (test(other, t, best)) return false
    return true
  }
  return {
    chainId,
    policy,
    recordSuccess: (name, latencyMs) => update(name, (s) => onSuccess(s, latencyMs, now())),
    recordFailure: (name, message, opts) => update(name, (s) => onFailure(s, message, now(), policy, opts)),
    markDown: (name, message) =>
      update(name, (s) => {
        const failed = onFailure(s, message, now(), policy)
        return failed.downSince === null ? goDown(failed, now(), policy) : failed
      }),
    recordChainId: (name, actual) => update(name, (s) => onChainId(s, actual, chainId, now())),
    recordHead: (name, head) => {
      update(name, (s) => onHead(s, head))
      if (states.has(name)) lastHeads.set(name, head)
    },
    recordCheckAnswered: (name) =>
      update(name, (s) => onCheckAnswered(s, [...states].every(([other, o]) => other === name || o.chainOk !== true || o.downSince !== null))),
    // Between checks, the highest read: a name behind a load balancer may answer one read from a node a block
    // behind. The next check sets it again (a reorg to a lower head, or a bogus answer, lasts until then).
    recordSeenHead: (name, head) => {
      const last = lastHeads.get(name)
      if (states.has(name) && (last === undefined || head > last)) lastHeads.set(name, head)
    },
    latestHead: () => {
      let best: bigint | null = null
      for (const [name, head] of lastHeads) if (states.get(name)?.chainOk === true && (best === null || head > best)) best = head
      return best
    },
    usableForSend: (name) => usable(name, (s, t) => canSend(s, t)),
    usableForRead: (name) => usable(name, (s, t, best) => canRead(s, best, t, policy)),
    view: () => {
      const t = now()
      const best = bestHead()
      return [...states.entries()].map(([name, s]) => ({
        name,
        chainId,
        status: providerStatus(s, best, t, policy),
        latencyMs: s.latencyMs,
        headBlock: s.headBlock,
        headLag: headLag(s, best),
        errorsLastMinute: errorsInWindow(s, t, policy),
        consecutiveFailures: s.consecutiveFailures,
        lastError: s.lastError,
        lastErrorAt: s.lastErrorAt === null ? null : new Date(s.lastErrorAt),
        downUntil: s.downSince !== null && s.downUntil !== null ? new Date(s.downUntil) : null,
      }))
    },
  }
}
