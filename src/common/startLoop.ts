import type { Logger } from './logger.ts'
import { withTimeout } from './withTimeout.ts'

export type Loop = { stop: () => Promise<void>; runNow: () => Promise<void> }

export type LoopOptions = {
  /** A run that hangs (a dead connection) is given up after this long. */
  runTimeoutMs?: number
  /** Called after a run failed or timed out, before the next one is scheduled. */
  onError?: (err: unknown) => Promise<void>
}

/**
 * Runs `fn` now and then `interval` ms after each run ends (never two at once);
 * `interval` may be a function, read after every run. A failed run is logged and
 * retried on the next tick. Stopping waits for the run in hand.
 */
export function startLoop(
  name: string,
  interval: number | (() => number),
  fn: () => Promise<void>,
  log: Logger,
  opts: LoopOptions = {},
): Loop {
  const runTimeoutMs = opts.runTimeoutMs ?? 60_000
  const nextDelay = typeof interval === 'number' ? () => interval : interval
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()
  const run = () => {
    running = running.then(() =>
      withTimeout(fn(), runTimeoutMs, name).catch(async (err: unknown) => {
        log.error({ err, loop: name }, `${name} failed; retrying`)
        await opts.onError?.(err).catch((e: unknown) => log.error({ err: e, loop: name }, `${name}: recovery after a failure failed`))
      }),
    )
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
      await running
    },
  }
}
