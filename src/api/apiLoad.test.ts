import { afterEach, describe, expect, it } from 'vitest'
import { API_BUSY_LOOP_UTILIZATION, API_BUSY_REQUESTS_PER_SEC, API_FIRST_MAX_DEFER_MS, type ApiLoad } from '../core/apiFirst.ts'
import { API_LOAD_SAMPLE_MS, createApiLoadMonitor, createRemoteApiLoad, type ApiLoadMonitor, type LoadClock } from './apiLoad.ts'

/** A clock the test moves: time and the event loop's busy/idle time advance only when told. */
function manualClock() {
  let now = 0
  const loop = { active: 0, idle: 0 }
  return {
    clock: { now: () => now, loop: () => ({ ...loop }) } satisfies LoadClock,
    /** `ms` pass, the loop busy for `busyShare` of them. */
    pass(ms: number, busyShare: number) {
      now += ms
      loop.active += ms * busyShare
      loop.idle += ms * (1 - busyShare)
    },
  }
}

const realTime = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('api load monitor', () => {
  let monitor: (ApiLoadMonitor & { sample: () => void }) | undefined
  afterEach(() => monitor?.stop())

  it('lets the pipeline go at once while the API is quiet', async () => {
    const m = manualClock()
    monitor = createApiLoadMonitor({ clock: m.clock, sampleEveryMs: 0 })
    m.pass(50, 0.1)
    monitor.sample()
    const first = await Promise.race([monitor.giveWay().then(() => 'released'), new Promise((r) => setImmediate(() => r('waited')))])
    expect(first).toBe('released')
  })

  it('holds the pipeline back while many requests arrive on a busy loop, and lets it go once they stop', async () => {
    const m = manualClock()
    monitor = createApiLoadMonitor({ clock: m.clock, sampleEveryMs: 0 })
    // 50 ms with requests at 1.2× the busy rate and the loop 95 % busy.
    const busyWindow = () => {
      for (let i = 0; i < Math.round((API_BUSY_REQUESTS_PER_SEC * 1.2) / 20); i++) monitor!.started()
      m.pass(50, 0.95)
      monitor!.sample()
    }
    busyWindow()
    expect(monitor.current().requestsPerSec).toBeCloseTo(API_BUSY_REQUESTS_PER_SEC * 1.2)
    expect(monitor.current().loopUtilization).toBeCloseTo(0.95)
    let released = false
    const waiting = monitor.giveWay().then(() => (released = true))
    // However long the test process is descheduled, the monitor's clock has not moved: still busy.
    await realTime(3 * 10)
    expect(released).toBe(false)
    busyWindow()
    await realTime(3 * 10)
    expect(released).toBe(false)
    // A busy loop alone (a big batch, a GC) is no reason to hold back: the rate must be high too.
    for (let i = 0; i < Math.round((API_BUSY_REQUESTS_PER_SEC * 0.4) / 20); i++) monitor.started()
    m.pass(50, 0.99)
    monitor.sample()
    await waiting
    expect(released).toBe(true)
    expect(monitor.current().requestsPerSec).toBeCloseTo(API_BUSY_REQUESTS_PER_SEC * 0.4)
  })

  it('many requests on a loop with time to spare are not busy either', async () => {
    const m = manualClock()
    monitor = createApiLoadMonitor({ clock: m.clock, sampleEveryMs: 0 })
    for (let i = 0; i < 100; i++) monitor.started()
    m.pass(50, API_BUSY_LOOP_UTILIZATION - 0.1)
    monitor.sample()
    expect(monitor.current().requestsPerSec).toBe(2000)
    await monitor.giveWay()
  })

  it('never holds the pipeline back longer than API_FIRST_MAX_DEFER_MS', async () => {
    const m = manualClock()
    monitor = createApiLoadMonitor({ clock: m.clock, sampleEveryMs: 0 })
    for (let i = 0; i < 100; i++) monitor.started()
    m.pass(50, 1)
    monitor.sample()
    let released = false
    const waiting = monitor.giveWay().then(() => (released = true))
    m.pass(API_FIRST_MAX_DEFER_MS - 1, 1)
    await realTime(3 * 10)
    expect(released).toBe(false)
    m.pass(1, 1)
    await waiting
  })

  it('samples on its own with the real clock: a burst on a busy loop shows, and is gone after a quiet sample', async () => {
    const samples: ApiLoad[] = []
    monitor = createApiLoadMonitor({ onSample: (load) => samples.push(load) })
    for (let i = 0; i < 100; i++) monitor.started()
    const spin = performance.now() + 120
    while (performance.now() < spin);
    // The first sample after the spin covers it, however late it runs; the one after sees no requests.
    await expect.poll(() => samples.length, { interval: 5, timeout: 2_000 }).toBeGreaterThanOrEqual(2)
    expect(samples[0]!.requestsPerSec).toBeGreaterThan(0)
    expect(samples[0]!.loopUtilization).toBeGreaterThan(0.5)
    expect(samples[1]!.requestsPerSec).toBe(0)
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
