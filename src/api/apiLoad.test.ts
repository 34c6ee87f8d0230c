import { afterEach, describe, expect, it } from 'vitest'
import { API_BUSY_IN_FLIGHT } from '../core/apiFirst.ts'
import { createApiLoadMonitor, type ApiLoadMonitor } from './apiLoad.ts'

/** Busy the event loop (as serving requests would), still letting timers and other callbacks run. */
async function keepLoopBusy(ms: number): Promise<void> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    await new Promise((resolve) => setImmediate(resolve))
    const spin = Date.now() + 5
    while (Date.now() < spin);
  }
}

describe('api load monitor', () => {
  let monitor: ApiLoadMonitor | undefined
  afterEach(() => monitor?.stop())

  it('counts requests in progress, each finished once however often its end is reported', () => {
    monitor = createApiLoadMonitor()
    const ends = Array.from({ length: 3 }, () => monitor!.started())
    expect(monitor.current().inFlight).toBe(3)
    ends[0]!()
    ends[0]!()
    expect(monitor.current().inFlight).toBe(2)
    ends[1]!()
    ends[2]!()
    expect(monitor.current().inFlight).toBe(0)
  })

  it('lets the pipeline go at once while the API is quiet', async () => {
    monitor = createApiLoadMonitor()
    const t0 = performance.now()
    await monitor.giveWay()
    expect(performance.now() - t0).toBeLessThan(5)
  })

  it('holds the pipeline back while many requests are in progress on a busy loop, and lets it go when they finish', async () => {
    monitor = createApiLoadMonitor()
    const ends = Array.from({ length: API_BUSY_IN_FLIGHT }, () => monitor!.started())
    await keepLoopBusy(120)
    expect(monitor.current().loopUtilization).toBeGreaterThan(0.85)
    let released = false
    const waiting = monitor.giveWay().then(() => (released = true))
    // Still busy (as serving those requests would keep it): the pipeline waits.
    await keepLoopBusy(60)
    expect(released).toBe(false)
    ends.forEach((end) => end())
    await waiting
    expect(released).toBe(true)
  })
})
