import { afterEach, describe, expect, it } from 'vitest'
import { API_BUSY_REQUESTS_PER_SEC, API_FIRST_MAX_DEFER_MS } from '../core/apiFirst.ts'
import { createApiLoadMonitor, createRemoteApiLoad, type ApiLoadMonitor } from './apiLoad.ts'

/** Busy the event loop (as serving requests would), still letting timers and other callbacks run; counts `requests` on the way. */
async function keepLoopBusy(ms: number, onTurn: () => void = () => {}): Promise<void> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    await new Promise((resolve) => setImmediate(resolve))
    onTurn()
    const spin = Date.now() + 5
    while (Date.now() < spin);
  }
}

describe('api load monitor', () => {
  let monitor: ApiLoadMonitor | undefined
  afterEach(() => monitor?.stop())

  it('lets the pipeline go at once while the API is quiet', async () => {
    monitor = createApiLoadMonitor()
    const t0 = performance.now()
    await monitor.giveWay()
    expect(performance.now() - t0).toBeLessThan(5)
  })

  it('holds the pipeline back while many requests arrive on a busy loop, and lets it go once they stop', async () => {
    monitor = createApiLoadMonitor()
    // Requests arriving at twice the busy rate, counted from the time that passed (not per loop turn: on a
    // loaded machine a turn can take much longer than its 5 ms spin, which used to drop the rate below the line).
    let lastArrival = performance.now()
    const arrive = () => {
      const now = performance.now()
      const due = Math.ceil(((now - lastArrival) / 1000) * 2 * API_BUSY_REQUESTS_PER_SEC)
      lastArrival = now
      for (let i = 0; i < due; i++) monitor!.started()
    }
    await keepLoopBusy(120, arrive)
    expect(monitor.current().requestsPerSec).toBeGreaterThanOrEqual(API_BUSY_REQUESTS_PER_SEC)
    expect(monitor.current().loopUtilization).toBeGreaterThan(0.85)
    let released = false
    const waiting = monitor.giveWay().then(() => (released = true))
    await keepLoopBusy(100, arrive)
    expect(released).toBe(false)
    // The requests stop: the next sample sees no rate and the pipeline goes on.
    await waiting
    expect(released).toBe(true)
    expect(monitor.current().requestsPerSec).toBeLessThan(API_BUSY_REQUESTS_PER_SEC)
  })
})

describe('the API load as seen from the pipeline process', () => {
  it('goes at once while the API is not busy, waits while it is, and goes on when told it calmed down', async () => {
    const remote = createRemoteApiLoad()
    let t0 = performance.now()
    await remote.giveWay()
    expect(performance.now() - t0).toBeLessThan(5)
    remote.setBusy(true)
    let released = false
    const waiting = remote.giveWay().then(() => (released = true))
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(released).toBe(false)
    remote.setBusy(false)
    t0 = performance.now()
    await waiting
    expect(performance.now() - t0).toBeLessThan(100)
  })

  it('never waits longer than API_FIRST_MAX_DEFER_MS', async () => {
    const remote = createRemoteApiLoad()
    remote.setBusy(true)
    const t0 = performance.now()
    await remote.giveWay()
    const waited = performance.now() - t0
    expect(waited).toBeGreaterThanOrEqual(API_FIRST_MAX_DEFER_MS - 5)
    expect(waited).toBeLessThan(API_FIRST_MAX_DEFER_MS + 200)
  })
})
