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

/** The API's request rate and the event loop's utilization over the last sample, for core/apiFirst.ts. */
export function createApiLoadMonitor(): ApiLoadMonitor {
  let count = 0
  let requestsPerSec = 0
  let loopUtilization = 0
  let last = performance.eventLoopUtilization()
  let lastAt = performance.now()
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization()
    const at = performance.now()
    loopUtilization = performance.eventLoopUtilization(now, last).utilization
    requestsPerSec = (count * 1000) / Math.max(1, at - lastAt)
    count = 0
    last = now
    lastAt = at
  }, API_LOAD_SAMPLE_MS)
  timer.unref()
  const current = (): ApiLoad => ({ requestsPerSec, loopUtilization })
  return {
    started() {
      count++
    },
    current,
    giveWay: () => waitWhile(() => apiIsBusy(current())),
    stop: () => clearInterval(timer),
  }
}

/** Waits while `busy()` holds, at most API_FIRST_MAX_DEFER_MS. */
async function waitWhile(busy: () => boolean): Promise<void> {
  const until = Date.now() + API_FIRST_MAX_DEFER_MS
  while (busy() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, POLL_MS))
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
