import type { Sql } from '../db/connect.ts'
import type { Logger } from '../common/logger.ts'
import { pgArray } from '../db/pgArray.ts'
import type { TransactionRow } from '../store/transactionRow.ts'

export type TransactionUpdates = {
  /**
   * Calls `listener` once per status change (and per bump, cancel or retry) of any
   * transaction, on any instance, in the order the changes were made. The row is
   * the transaction now, with `status` as of that change, so no step is skipped
   * even when several land within one batch.
   */
  subscribe: (listener: (row: TransactionRow) => void) => () => void
  stop: () => Promise<void>
}

/** Notifications arriving within this window are loaded with one query. */
const COALESCE_MS = 25

/**
 * Cross-instance change feed over Postgres LISTEN/NOTIFY (no extra broker): a
 * trigger on transaction_events announces each event; this loads them, in
 * batches, and only while someone is listening.
 */
export async function startTransactionUpdates(sql: Sql, log: Logger): Promise<TransactionUpdates> {
  const listeners = new Set<(row: TransactionRow) => void>()
  let pending = new Set<string>()
  let timer: NodeJS.Timeout | null = null
  let flushing: Promise<void> = Promise.resolve()

  const flush = async () => {
    timer = null
    const ids = [...pending]
    pending = new Set()
    if (ids.length === 0 || listeners.size === 0) return
    const rows = await sql<TransactionRow[]>`
      SELECT t.*, e.to_status AS status FROM transaction_events e JOIN transactions t ON t.id = e.transaction_id
      WHERE e.id = ANY(${pgArray(ids)}::bigint[]) ORDER BY e.id`
    for (const row of rows)
      for (const l of listeners) {
        try {
          l(row)
        } catch (err) {
          log.error({ err }, 'transaction update listener failed')
        }
      }
  }

  // The payload is a comma-separated list of event ids (one NOTIFY per statement).
  const { unlisten } = await sql.listen('transaction_updated', (ids) => {
    if (listeners.size === 0) return
    for (const id of ids.split(',')) pending.add(id)
    // Serialized flushes keep the order in which changes were committed.
    timer ??= setTimeout(() => {
      flushing = flushing.then(flush).catch((err) => log.error({ err }, 'loading updated transactions failed'))
    }, COALESCE_MS)
  })

  return {
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async stop() {
      if (timer) clearTimeout(timer)
      await flushing
      await unlisten()
    },
  }
}
