import type { Logger } from '../common/logger.ts'

/** Answers of the same kind in this window are counted, not logged one by one. */
const SUMMARY_MS = 60_000

export type UnacceptedAttempt = { hash: string; answers: Array<{ name: string; outcome: string; error: string | null }> }

/**
 * Logs attempts that no provider took, without a line per attempt per send pass: in a provider outage each of a
 * thousand pending transactions was rebroadcast, and warned about, every pass. An attempt whose answers are of a
 * kind (each provider's outcome) not seen for a minute is logged in full; more of that kind within the minute are
 * counted and said in one line at its end. Each attempt's answers are on the attempt itself (the dashboard shows
 * them); the log says that something is wrong, and how much.
 */
export function createUnacceptedLog(log: Logger, chainId: number): (attempts: UnacceptedAttempt[]) => void {
  /** Each kind of answers, and when it was last seen. A few (providers × outcomes), so never pruned. */
  const lastSeen = new Map<string, number>()
  let counted = new Map<string, number>()
  let timer: NodeJS.Timeout | null = null
  const flush = () => {
    timer = null
    log.warn({ chainId, byAnswers: Object.fromEntries(counted) }, `more attempts no provider accepted in the last ${SUMMARY_MS / 1000} s, by their answers`)
    counted = new Map()
  }
  return (attempts) => {
    const now = Date.now()
    for (const a of attempts) {
      const kind = a.answers.map((r) => `${r.name}: ${r.outcome}`).sort().join(', ')
      const seen = lastSeen.get(kind)
      lastSeen.set(kind, now)
      if (seen === undefined || now - seen > SUMMARY_MS) {
        log.warn({ chainId, hash: a.hash, answers: a.answers.map((r) => `${r.name}: ${r.outcome}: ${r.error}`) }, 'no provider accepted the attempt')
        continue
      }
      counted.set(kind, (counted.get(kind) ?? 0) + 1)
      // Unref'd: a stop does not wait for it (the count is lost from the log, not from the attempts).
      timer ??= setTimeout(flush, SUMMARY_MS).unref()
    }
  }
}
