import { performance } from 'node:perf_hooks'
import { API_FIRST_MAX_DEFER_MS, apiIsBusy, type ApiLoad } from '../core/apiFirst.ts'

/** How often the request rate and the event loop's utilization are sampled. */
export const API_LOAD_SAMPLE_MS = 50
const POLL_MS = 10

export type ApiLoadMonitor = {
  /** Call when a request starts. */
  started: () => void
  current: () => ApiLoad
  /** Resolves at once on a quiet API; while it is busy, waits (at most API_FIRST_MAX_DEFER_MS) for it to calm down. */
  giveWay: () => Promise<void>
  stop: () => void
}

/** Where the monitor reads time and the event loop's cumulative busy/idle time; a test passes its own. */
export type LoadClock = {
  now: () => number
  loop: () => { active: number; idle: number }
}

const realClock: LoadClock = { now: () => performance.now(), loop: () => performance.eventLoopUtilization() }

export type ApiLoadMonitorOptions = {
  clock?: LoadClock
  /** Sample on a timer this often; 0 takes samples only when `sample()` is called. */
  sampleEveryMs?: number
  /** Called with each sample (tests see every sample, however late their own timers run). */
  onSample?: (load: ApiLoad) => void
}

/** The API's request rate and the event loop's utilization over the last sample, for core/apiFirst.ts. */
export function createApiLoadMonitor(opts: ApiLoadMonitorOptions = {}): ApiLoadMonitor & { sample: () => void } {
  const clock = opts.clock ?? realClock
  const sampleEveryMs = opts.sampleEveryMs ?? API_LOAD_SAMPLE_MS
  let count = 0
  let load: ApiLoad = { requestsPerSec: 0, loopUtilization: 0 }
  let last = clock.loop()
  let lastAt = clock.now()
  const sample = () => {
    const loop = clock.loop()
    const at = clock.now()
    const active = loop.active - last.active
    const total = active + loop.idle - last.idle
    load = { requestsPerSec: (count * 1000) / Math.max(1, at - lastAt), loopUtilization: total > 0 ? active / total : 0 }
    count = 0
    last = loop
    lastAt = at
    opts.onSample?.(load)
  }
  const timer = sampleEveryMs > 0 ? setInterval(sample, sampleEveryMs) : undefined
  timer?.unref()
  const current = (): ApiLoad => load
  return {
    started() {
      count++
    },
    current,
    sample,
    giveWay: () => waitWhile(() => apiIsBusy(current()), clock),
    stop: () => clearInterval(timer),
  }
}

/** Waits while `busy()` holds, at most API_FIRST_MAX_DEFER_MS by `clock`. */
async function waitWhile(busy: () => boolean, clock: LoadClock = realClock): Promise<void> {
  const until = clock.now() + API_FIRST_MAX_DEFER_MS
  while (busy() && clock.now() < until) await new Promise((resolve) => setTimeout(resolve, POLL_MS))
}

/**
 * The API's load as seen from the pipeline process (pipeline/pipelineProcess.ts): the API's process
 * sends whether it is saturated each time that changes. Lowering the pipeline's CPU priority is not
 * enough under a burst: its work also runs in Postgres and in the node, at their priority, so the
 * sign stage still gives way as it does in one process.
 */
export function createRemoteApiLoad(): ApiLoadMonitor & { setBusy: (busy: boolean) => void } {
  let busy = false
  return {
    started() {},
    current: () => ({ requestsPerSec: 0, loopUtilization: 0 }),
    giveWay: () => waitWhile(() => busy),
    stop() {},
    setBusy(b) {
      busy = b
    },
  }
}
