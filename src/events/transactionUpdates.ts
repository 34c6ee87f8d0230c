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
 * A load that fails (Postgres restarting, a lock held past a statement timeout) is tried again after this times
 * the failures in a row, at most LOAD_RETRIES times, with what arrived since: a subscriber or dashboard used to
 * miss those changes for good.
 */
const LOAD_RETRY_MS = 500
const LOAD_RETRIES = 10
/** Events looked up after the LISTEN connection came back, at most. */
const GAP_FILL_MAX = 10_000

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
  let failures = 0

  /**
   * Event ids delivered lately (oldest dropped first): a change committed just after LISTEN came back is both
   * announced and found by the gap's lookup, and is delivered once.
   */
  const delivered = new Set<string>()
  const flush = async () => {
    timer = null
    const ids = [...pending].filter((id) => !delivered.has(id))
    pending = new Set()
    if (ids.length === 0 || listeners.size === 0) return
    let rows: TransactionRow[]
    try {
      rows = await sql<TransactionRow[]>`
        SELECT t.*, e.to_status AS status FROM transaction_events e JOIN transactions t ON t.id = e.transaction_id
        WHERE e.id = ANY(${pgArray(ids)}::bigint[]) ORDER BY e.id`
      failures = 0
    } catch (err) {
      if (++failures > LOAD_RETRIES) {
        failures = 0
        log.error({ err, events: ids.length }, 'loading updated transactions failed again and again; subscribers miss these changes')
        return
      }
      log.warn({ err, events: ids.length, attempt: failures }, 'loading updated transactions failed; trying again')
      // Ahead of what arrived meanwhile; the query orders by event id either way.
      pending = new Set([...ids, ...pending])
      if (timer) clearTimeout(timer)
      timer = setTimeout(schedule, LOAD_RETRY_MS * failures)
      return
    }
    for (const id of ids) delivered.add(id)
    for (const id of delivered) {
      if (delivered.size <= GAP_FILL_MAX) break
      delivered.delete(id)
    }
    for (const row of rows)
      for (const l of listeners) {
        try {
          l(row)
        } catch (err) {
          log.error({ err }, 'transaction update listener failed')
        }
      }
  }

  // Serialized flushes keep the order in which changes were committed.
  const schedule = () => {
    flushing = flushing.then(flush).catch((err) => log.error({ err }, 'delivering updated transactions failed'))
  }

  /** The highest event id announced, listened to or not: where a gap after a reconnect starts. */
  let highest = 0
  let listening = false
  // The payload is a comma-separated list of event ids (one NOTIFY per statement).
  const { unlisten } = await sql.listen(
    'transaction_updated',
    (ids) => {
      const list = ids.split(',')
      for (const id of list) highest = Math.max(highest, Number(id))
      if (listeners.size === 0) return
      for (const id of list) pending.add(id)
      timer ??= setTimeout(schedule, COALESCE_MS)
    },
    () => {
      // postgres.js runs LISTEN again on a new connection after the old one dropped (Postgres restarted, a
      // network cut): what was committed meanwhile was announced to no one. Load the events since the last one.
      if (!listening) {
        listening = true
        void sql<{ id: number }[]>`SELECT coalesce(max(id), 0)::int8 AS id FROM transaction_events`.then(
          ([row]) => (highest = Math.max(highest, Number(row?.id ?? 0))),
          (err: unknown) => log.warn({ err }, 'reading the latest transaction event failed'),
        )
        return
      }
      const since = highest
      void sql<{ id: number }[]>`SELECT id FROM transaction_events WHERE id > ${since} ORDER BY id LIMIT ${GAP_FILL_MAX}`.then(
        (rows) => {
          log.info({ since, events: rows.length }, 'transaction updates: listening again; loading the changes made meanwhile')
          if (rows.length === GAP_FILL_MAX) log.warn({ since }, `more than ${GAP_FILL_MAX} changes while not listening: subscribers miss the rest`)
          for (const r of rows) highest = Math.max(highest, Number(r.id))
          if (listeners.size === 0 || rows.length === 0) return
          for (const r of rows) pending.add(String(r.id))
          timer ??= setTimeout(schedule, COALESCE_MS)
        },
        (err: unknown) => log.warn({ err }, 'loading the changes made while not listening failed; subscribers miss them'),
      )
    },
  )

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
