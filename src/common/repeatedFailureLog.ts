import type { Logger } from './logger.ts'

/** A failure repeated (numbers aside) is logged again at most this often, with how many times it came meanwhile. */
const REPEAT_LOG_MS = 60_000

export type RepeatedFailureLog = { failed: (err: unknown) => void; succeeded: () => void }

function firstLine(err: unknown): string {
  return String((err as Error | null)?.message ?? err).split('\n')[0]!
}

/** What makes two failures the same one: the first line of their message, numbers aside (a block number, a port). */
export function failureShape(err: unknown): string {
  return firstLine(err).replace(/\d+/g, 'N')
}

/**
 * Logs a failure of something done again and again (a loop's run, a signer's drain) in full when it starts or
 * changes, then one line a minute with how many more came, and a line when it works again. An outage (a provider,
 * the database) made each of them log a stack trace per try, burying the first line that said what was wrong.
 * A failure whose first line differs only in a number (a block number, a port) is the same failure.
 */
export function createRepeatedFailureLog(
  log: Logger,
  fields: Record<string, unknown>,
  text: { failed: string; still: string; again: string },
  level: 'warn' | 'error' = 'error',
): RepeatedFailureLog {
  let failing: { shape: string; since: number; loggedAt: number; repeats: number } | null = null
  return {
    failed(err) {
      const message = firstLine(err)
      const shape = failureShape(err)
      const now = Date.now()
      if (failing?.shape !== shape) {
        log[level]({ err, ...fields }, text.failed)
        failing = { shape, since: now, loggedAt: now, repeats: 0 }
        return
      }
      failing.repeats++
      if (now - failing.loggedAt < REPEAT_LOG_MS) return
      log[level]({ ...fields, error: message, repeats: failing.repeats, failingForS: Math.round((now - failing.since) / 1000) }, text.still)
      failing.loggedAt = now
      failing.repeats = 0
    },
    succeeded() {
      if (failing) log.info({ ...fields, failedForS: Math.round((Date.now() - failing.since) / 1000) }, text.again)
      failing = null
    },
  }
}

/**
 * One RepeatedFailureLog per key (a signer), made on first use: what fails for one signer is said apart from
 * another's. The keys are the configured ones, so the map stays small.
 */
export function createRepeatedFailureLogs(
  log: Logger,
  text: { failed: string; still: string; again: string },
  level: 'warn' | 'error' = 'error',
): (key: string, fields: Record<string, unknown>) => RepeatedFailureLog {
  const logs = new Map<string, RepeatedFailureLog>()
  return (key, fields) => {
    let f = logs.get(key)
    if (!f) logs.set(key, (f = createRepeatedFailureLog(log, fields, text, level)))
    return f
  }
}
