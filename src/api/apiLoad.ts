import { performance } from 'node:perf_hooks'
import { API_FIRST_MAX_DEFER_MS, apiIsBusy, type ApiLoad } from '../core/apiFirst.ts'

/** How often the event loop's utilization is sampled. */
const SAMPLE_MS = 50
const POLL_MS = 10

export type ApiLoadMonitor = {
  /** Call when a request starts; call the returned function once its answer is sent. */
  started: () => () => void
  current: () => ApiLoad
  /** Resolves at once on a quiet API; while it is busy, waits (at most API_FIRST_MAX_DEFER_MS) for it to calm down. */
  giveWay: () => Promise<void>
  stop: () => void
}

/** Requests in progress and the event loop's recent utilization, for core/apiFirst.ts. */
export function createApiLoadMonitor(): ApiLoadMonitor {
  let inFlight = 0
  let loopUtilization = 0
  let last = performance.eventLoopUtilization()
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization()
    loopUtilization = performance.eventLoopUtilization(now, last).utilization
    last = now
  }, SAMPLE_MS)
  timer.unref()
  const current = (): ApiLoad => ({ inFlight, loopUtilization })
  return {
    started() {
      inFlight++
      let done = false
      return () => {
        if (done) return
        done = true
        inFlight--
      }
    },
    current,
    async giveWay() {
      const until = Date.now() + API_FIRST_MAX_DEFER_MS
      while (apiIsBusy(current()) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, POLL_MS))
    },
    stop: () => clearInterval(timer),
  }
}
