import type { Logger } from './logger.ts'
import { withTimeout } from './withTimeout.ts'

export type Loop = { stop: () => Promise<void>; runNow: () => Promise<void> }

/**
 * Runs `fn` now and then every `intervalMs` after each run ends (never two at
 * once). A failed run is logged and retried on the next tick; a run that hangs
 * (a dead connection) is given up after `runTimeoutMs`. Stopping waits for the
 * run in hand.
 */
export function startLoop(name: string, intervalMs: number, fn: () => Promise<void>, log: Logger, runTimeoutMs = 60_000): Loop {
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()
  const run = () => {
    running = running.then(() =>
      withTimeout(fn(), runTimeoutMs, name).catch((err: unknown) => log.error({ err, loop: name }, `${name} failed; retrying in ${intervalMs} ms`)),
    )
    return running
  }
  const schedule = (delay: number) => {
    if (stopped) return
    timer = setTimeout(() => void run().finally(() => schedule(intervalMs)), delay)
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
