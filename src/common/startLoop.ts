import type { Logger } from './logger.ts'
import { createRepeatedFailureLog } from './repeatedFailureLog.ts'
import { withTimeout } from './withTimeout.ts'

/** `stop` answers whether the run in hand ended within STOP_WAIT_MS (true when none was running). */
export type Loop = { stop: () => Promise<boolean>; runNow: () => Promise<void> }

/**
 * How long stop() waits for the run in hand, its signal aborted: a run that checks it ends at its next await; one that
 * does not (a bump pass sending, a reconcile asking the nodes) is left to finish beside the stop. Waited for in full,
 * a watcher's catch-up tick (30 s) or a reconcile pass (60 s) took the service's stop past main.ts's limit (then 15 s): it exited
 * 1, "service.stop() failed", with pg-boss and the database not closed.
 */
export const STOP_WAIT_MS = 4_000

/** The reason a run's signal is aborted with when its loop stops: not a failure. */
export class LoopStoppedError extends Error {
  override name = 'LoopStoppedError'
  constructor() {
    super('the loop is stopping')
  }
}

export type LoopOptions = {
  /** A run that hangs (a dead connection) is given up after this long. */
  runTimeoutMs?: number
  /** Called after a run failed or timed out, before the next one is scheduled. */
  onError?: (err: unknown) => Promise<void>
}

/**
 * Runs `fn` now and then `interval` ms after each run ends; `interval` may be a function, read after every
 * run. A failed run is logged and retried on the next tick. Stopping aborts the run in hand's signal and waits for
 * it, STOP_WAIT_MS at most.
 *
 * A run that passes `runTimeoutMs` is given up and the next one is scheduled, but a promise cannot be
 * cancelled: the given-up run may still be awaiting an answer that comes late. Its `signal` is aborted
 * then (before `onError` runs), so a run that checks it after each await stops there instead of acting
 * beside the next run (the watcher taking an answer that came too late as leadership). A statement
 * already handed to the database still lands.
 */
export function startLoop(
  name: string,
  interval: number | (() => number),
  fn: (signal: AbortSignal) => Promise<void>,
  log: Logger,
  opts: LoopOptions = {},
): Loop {
  const runTimeoutMs = opts.runTimeoutMs ?? 60_000
  const nextDelay = typeof interval === 'number' ? () => interval : interval
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()
  /** The run in hand's controller (none between runs). */
  let current: AbortController | undefined
  const failures = createRepeatedFailureLog(log, { loop: name }, {
    failed: `${name} failed; retrying`,
    still: `${name} still failing the same way; retrying`,
    again: `${name} works again`,
  })
  const run = () => {
    running = running.then(() => {
      const controller = new AbortController()
      current = controller
      // Called inside a promise, so a function that throws before its first await fails this run only.
      return withTimeout(Promise.resolve().then(() => fn(controller.signal)), runTimeoutMs, name).then(
        () => failures.succeeded(),
        async (err: unknown) => {
          // Ended by stop() (its signal aborted so): not a failure.
          const stopping = controller.signal.reason instanceof LoopStoppedError
          // Whether it timed out or failed, this run is over: nothing it still does may count.
          controller.abort(err)
          if (stopping) return
          failures.failed(err)
          await opts.onError?.(err).catch((e: unknown) => log.error({ err: e, loop: name }, `${name}: recovery after a failure failed`))
        },
      ).finally(() => {
        if (current === controller) current = undefined
      })
    })
    return running
  }
  const schedule = (delay: number) => {
    if (stopped) return
    timer = setTimeout(() => void run().finally(() => schedule(nextDelay())), delay)
  }
  schedule(0)
  return {
    runNow: run,
    async stop() {
      stopped = true
      clearTimeout(timer)
      current?.abort(new LoopStoppedError())
      let waited: NodeJS.Timeout | undefined
      const finished = await Promise.race([running.then(() => true), new Promise<false>((resolve) => (waited = setTimeout(() => resolve(false), STOP_WAIT_MS)))])
      clearTimeout(waited)
      if (!finished) log.warn({ loop: name, waitedMs: STOP_WAIT_MS }, `${name}: stopped without waiting for its run in hand to end`)
      return finished
    },
  }
}
