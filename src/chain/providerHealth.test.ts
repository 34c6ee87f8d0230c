import { describe, expect, it } from 'vitest'
import {
  canRead,
  canSend,
  createProviderHealth,
  errorsInWindow,
  initialProviderState,
  onChainId,
  onFailure,
  onHead,
  onSuccess,
  providerStatus,
  type HealthPolicy,
  type ProviderState,
} from './providerHealth.ts'

const POLICY: HealthPolicy = { downAfterFailures: 3, downForMs: 5_000, maxDownForMs: 60_000, maxLagBlocks: 5, slowMs: 1_000, windowMs: 60_000 }
const T0 = 1_000_000_000_000

const verified = (): ProviderState => onChainId(initialProviderState(), 1, 1, T0)
const fail = (s: ProviderState, times: number, at = T0) => {
  for (let i = 0; i < times; i++) s = onFailure(s, 'timed out', at, POLICY)
  return s
}

describe('providerStatus', () => {
  const cases: Array<[string, () => ProviderState, bigint | null, number, ReturnType<typeof providerStatus>]> = [
    ['unchecked chain id: down', () => initialProviderState(), null, T0, 'down'],
    ['serving another chain: down', () => onChainId(verified(), 5, 1, T0), null, T0, 'down'],
    ['verified, no errors: healthy', verified, null, T0, 'healthy'],
    ['one error in the last minute: degraded', () => fail(verified(), 1), null, T0 + 30_000, 'degraded'],
    ['one error over a minute ago: healthy again', () => fail(verified(), 1), null, T0 + 61_000, 'healthy'],
    [`${POLICY.downAfterFailures - 1} failures in a row: degraded`, () => fail(verified(), POLICY.downAfterFailures - 1), null, T0, 'degraded'],
    [`${POLICY.downAfterFailures} failures in a row: down`, () => fail(verified(), POLICY.downAfterFailures), null, T0, 'down'],
    ['failures broken by an answer: not down', () => fail(onSuccess(fail(verified(), 2), 10, T0), 2), null, T0, 'degraded'],
    ['one timeout: down at once', () => onFailure(verified(), 'timed out', T0, POLICY, { timeout: true }), null, T0, 'down'],
    ['slow: degraded', () => onSuccess(verified(), 2_000, T0), null, T0, 'degraded'],
    ['behind by more than maxLagBlocks: degraded', () => onHead(verified(), 100n), 106n, T0, 'degraded'],
    ['behind by maxLagBlocks: healthy', () => onHead(verified(), 100n), 105n, T0, 'healthy'],
  ]
  it.each(cases)('%s', (_, make, bestHead, now, expected) => {
    expect(providerStatus(make(), bestHead, now, POLICY)).toBe(expected)
  })
})

describe('down and back', () => {
  it('is skipped for downForMs, retried after, and skipped twice as long when still failing', () => {
    let s = fail(verified(), 3)
    expect(canSend(s, T0 + 4_999)).toBe(false)
    // A probe answering inside the time-out does not cut it short.
    s = onSuccess(s, 10, T0 + 2_000)
    expect(providerStatus(s, null, T0 + 2_000, POLICY)).toBe('down')
    expect(canSend(s, T0 + 5_000)).toBe(true)
    s = onFailure(s, 'timed out', T0 + 5_000, POLICY)
    expect(s.downUntil).toBe(T0 + 5_000 + 10_000)
    expect(canSend(s, T0 + 14_999)).toBe(false)
    s = onFailure(s, 'timed out', T0 + 15_000, POLICY)
    expect(s.downUntil).toBe(T0 + 15_000 + 20_000)
    // Once it answers after its time-out it is back, and the next time-out starts short again.
    s = onSuccess(s, 10, T0 + 35_000)
    expect(providerStatus(s, null, T0 + 35_000, POLICY)).toBe('degraded')
    expect(canSend(s, T0 + 35_000)).toBe(true)
    s = fail(s, 3, T0 + 36_000)
    expect(s.downUntil).toBe(T0 + 36_000 + 5_000)
  })

  it('never waits longer than maxDownForMs', () => {
    let s = fail(verified(), 3)
    for (let i = 0; i < 30; i++) s = onFailure(s, 'x', s.downUntil!, POLICY)
    expect(s.downUntil! - s.lastErrorAt!).toBe(POLICY.maxDownForMs)
  })

  it('reads also skip a lagging provider, sends do not', () => {
    const s = onHead(verified(), 100n)
    expect(canRead(s, 110n, T0, POLICY)).toBe(false)
    expect(canSend(s, T0)).toBe(true)
    expect(canRead(s, 103n, T0, POLICY)).toBe(true)
  })
})

describe('errorsInWindow', () => {
  it('counts failures per second and forgets those older than the window', () => {
    let s = verified()
    for (let i = 0; i < 500; i++) s = onFailure(s, 'x', T0 + i * 10, POLICY)
    expect(s.errorSeconds.length).toBe(5)
    expect(errorsInWindow(s, T0 + 5_000, POLICY)).toBe(500)
    s = onFailure(s, 'x', T0 + 62_500, POLICY)
    // Seconds 0-2 fell out of the window; 3 and 4 (100 each) are still in it.
    expect(errorsInWindow(s, T0 + 62_500, POLICY)).toBe(1 + 200)
    expect(s.errorSeconds.length).toBe(3)
  })
})

describe('createProviderHealth', () => {
  it('says once when a provider goes down, once when it answers again, and when it serves another chain', () => {
    let now = T0
    const changes: string[] = []
    const h = createProviderHealth({ chainId: 1, names: ['a'], policy: POLICY, now: () => now, onChange: (c) => changes.push(`${c.name} ${c.change} ${c.error}`) })
    h.recordChainId('a', 1)
    for (let i = 0; i < 10; i++) h.recordFailure('a', 'HTTP 500')
    now += 6_000
    // Retried after downForMs and failing again: still the same outage, not said again.
    for (let i = 0; i < 3; i++) h.recordFailure('a', 'HTTP 500')
    // An answer inside its time-out does not bring it back; one after it does.
    h.recordSuccess('a', 30)
    now += 11_000
    h.recordSuccess('a', 30)
    h.recordSuccess('a', 30)
    h.recordChainId('a', 5)
    expect(changes).toEqual(['a down HTTP 500', 'a up null', expect.stringMatching(/^a wrong_chain /)])
  })

  it('reports each provider, lag against the best head, and tries all when all are down', () => {
    let now = T0
    const h = createProviderHealth({ chainId: 1, names: ['a', 'b'], policy: POLICY, now: () => now })
    expect(h.usableForSend('a')).toBe(true) // nothing verified yet: all are tried
    h.recordChainId('a', 1)
    h.recordChainId('b', 1)
    h.recordHead('a', 120n)
    h.recordHead('b', 100n)
    h.recordSuccess('a', 40)
    expect(h.usableForRead('b')).toBe(false)
    expect(h.usableForSend('b')).toBe(true)
    for (let i = 0; i < 3; i++) h.recordFailure('a', 'HTTP 500')
    expect(h.usableForSend('a')).toBe(false)
    // a is down: b is the only one left, and reads use it even though it lags.
    expect(h.usableForRead('b')).toBe(true)
    const [a, b] = h.view()
    expect(a).toMatchObject({ name: 'a', chainId: 1, status: 'down', latencyMs: 40, headBlock: 120n, errorsLastMinute: 3, lastError: 'HTTP 500' })
    expect(a!.downUntil).toEqual(new Date(T0 + 5_000))
    expect(b).toMatchObject({ name: 'b', status: 'degraded', headLag: 20, errorsLastMinute: 0 })
    h.markDown('b', 'unreachable')
    expect(h.usableForSend('a')).toBe(true)
    expect(h.usableForSend('b')).toBe(true)
    now += 5_000
    h.recordSuccess('a', 40)
    expect(h.view()[0]!.status).toBe('degraded')
    now += 61_000
    expect(h.view()[0]!.status).toBe('healthy')
  })

  it('with three or more providers, one answering a head far ahead of the others does not make them look behind', () => {
    const h = createProviderHealth({ chainId: 1, names: ['a', 'b', 'c'], policy: POLICY, now: () => T0 })
    for (const name of ['a', 'b', 'c']) h.recordChainId(name, 1)
    h.recordHead('a', 100n)
    h.recordHead('b', 101n)
    // c says it is 1,000 blocks on (a bug, a minority branch): before, a and b were skipped for reads, and every read
    // went to c.
    h.recordHead('c', 1_101n)
    expect(['a', 'b', 'c'].map((n) => h.usableForRead(n))).toEqual([true, true, true])
    expect(h.view().map((v) => v.headLag)).toEqual([1, 0, 0])
    // Two that lag behind two others are still behind.
    h.recordHead('a', 1_100n)
    expect(h.usableForRead('b')).toBe(false)
    // Not a down provider's head: as old as its last answer, counted as one of three it made a lagging one look current.
    h.recordHead('a', 90n)
    for (let i = 0; i < 3; i++) h.recordFailure('a', 'HTTP 500')
    h.recordHead('c', 130n)
    expect(h.usableForRead('b')).toBe(false)
    // With two, there is no telling which is right: the one ahead is taken to be.
    const two = createProviderHealth({ chainId: 1, names: ['a', 'b'], policy: POLICY, now: () => T0 })
    for (const name of ['a', 'b']) two.recordChainId(name, 1)
    two.recordHead('a', 100n)
    two.recordHead('b', 200n)
    expect(two.usableForRead('a')).toBe(false)
  })

  it('a provider known to serve another chain is never used, not even when no other passes', () => {
    const h = createProviderHealth({ chainId: 1, names: ['a', 'b'], policy: POLICY, now: () => T0 })
    h.recordChainId('a', 1)
    h.recordChainId('b', 137)
    h.markDown('a', 'timeout')
    // Before: a down, no provider passed, so every one was tried, b with it.
    expect([h.usableForSend('a'), h.usableForRead('a')]).toEqual([true, true])
    expect([h.usableForSend('b'), h.usableForRead('b')]).toEqual([false, false])
    const only = createProviderHealth({ chainId: 1, names: ['c'], policy: POLICY, now: () => T0 })
    expect(only.usableForSend('c')).toBe(true) // not verified yet: tried
    only.recordChainId('c', 137)
    expect([only.usableForSend('c'), only.usableForRead('c')]).toEqual([false, false])
    only.recordChainId('c', 1)
    expect(only.usableForSend('c')).toBe(true)
  })

  it('one answering its checks while every other one is down is back at once, not at the end of its long time-out', () => {
    let now = T0
    const h = createProviderHealth({ chainId: 1, names: ['a', 'b'], policy: POLICY, now: () => now })
    h.recordChainId('a', 1)
    h.recordChainId('b', 1)
    // b has been down long (20 s now), a only just (5 s).
    h.markDown('b', 'timed out')
    now += 5_000
    h.recordFailure('b', 'timed out')
    now += 10_000
    h.recordFailure('b', 'timed out')
    h.markDown('a', 'timed out')
    now += 5_000
    // a's time-out is over (it is tried again), b's is not: before, sends and reads went to a alone, down or not.
    expect([h.usableForSend('a'), h.usableForSend('b')]).toEqual([true, false])
    // b answers its check: back at once (a, down, is tried beside it once its time-out is over, as before).
    h.recordHead('b', 100n)
    h.recordCheckAnswered('b')
    expect(h.usableForSend('b')).toBe(true)
    expect(h.view().map((v) => v.status)).toEqual(['down', 'degraded']) // its errors of the last minute
    // While another one is up, an answered check does not cut a time-out short (one flapping under load).
    h.markDown('b', 'timed out')
    h.recordSuccess('a', 10)
    now += 20_000
    h.recordSuccess('a', 10)
    h.recordCheckAnswered('b')
    expect(h.usableForSend('b')).toBe(false)
    // Failing again, it is skipped for longer: its streak was kept.
    expect(h.view()[1]!.downUntil!.getTime() - (now - 20_000)).toBeGreaterThan(POLICY.downForMs)
  })

  it("a head read between checks is the chain's latest head, not one provider's: the others do not look behind for it", () => {
    const h = createProviderHealth({ chainId: 1, names: ['a', 'b', 'c'], policy: POLICY, now: () => T0 })
    expect(h.latestHead()).toBeNull()
    h.recordChainId('a', 1)
    h.recordChainId('b', 1)
    h.recordChainId('c', 7)
    h.recordHead('a', 100n)
    h.recordHead('b', 100n)
    expect(h.latestHead()).toBe(100n)
    // The watcher read a's head ten blocks later, on a fast chain before the next check.
    h.recordSeenHead('a', 110n)
    expect(h.latestHead()).toBe(110n)
    expect(h.usableForRead('b')).toBe(true)
    expect(h.view().map((v) => [v.name, v.status, v.headLag])).toEqual([['a', 'healthy', 0], ['b', 'healthy', 0], ['c', 'down', null]])
    // A provider serving another chain says nothing of this one's head.
    h.recordSeenHead('c', 5_000n)
    expect(h.latestHead()).toBe(110n)
    // The next check is newer than the read.
    h.recordHead('a', 112n)
    expect(h.latestHead()).toBe(112n)
    // Reads moved to b, a block behind a: the head stays a's.
    h.recordSeenHead('b', 111n)
    expect(h.latestHead()).toBe(112n)
    // One read of a (a load balancer's node a block behind) does not take the head back; a's next check does.
    h.recordSeenHead('a', 113n)
    h.recordSeenHead('a', 111n)
    expect(h.latestHead()).toBe(113n)
    h.recordHead('a', 112n)
    expect(h.latestHead()).toBe(112n)
    // a turns out to serve another chain: b's is the head now, and c's never was.
    h.recordChainId('a', 9)
    expect(h.latestHead()).toBe(111n)
  })
})
