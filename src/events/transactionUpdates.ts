import type { Sql } from '../db/connect.ts'
import type { Logger } from '../common/logger.ts'
import { pgArray } from '../db/pgArray.ts'
import type { ListedTransactionRow } from '../store/transactionRow.ts'
import { listedColumns } from '../store/readTransactions.ts'

/** A transaction as of one of its events: `event_id` orders the rows of one transaction (higher is later). */
export type FeedRow = ListedTransactionRow & { event_id: string }

export type TransactionUpdates = {
  /**
   * Calls `listener` once per status change (and per bump, cancel, retry or revert reason found) of any
   * transaction, on any instance, in the order the changes were made. The row is
   * the transaction now, with `status` as of that change, so no step is skipped
   * even when several land within one batch.
   */
  subscribe: (listener: (row: FeedRow) => void) => () => void
  /** The transaction as it is now, with its latest event's id (null if there is no such transaction). */
  current: (id: string) => Promise<FeedRow | null>
  stop: () => Promise<void>
}

/** Notifications arriving within this window are loaded with one query. */
const COALESCE_MS = 25
/**
 * A load that fails (Postgres restarting, a lock held past a statement timeout) is tried again after this times
 * the failures in a row, at most LOAD_RETRY_MAX_MS apart, for as long as it fails, with what arrived since. It
 * gave up after ten tries (28 s) and dropped those changes: after a longer Postgres outage subscribers and
 * dashboards never saw them (nothing commits while Postgres is down, so nothing piles up meanwhile).
 */
const LOAD_RETRY_MS = 500
const LOAD_RETRY_MAX_MS = 5_000
/** Failures in a row between two error lines in the log (the others are warnings). */
const LOG_ERROR_EVERY = 10
/** Announced ids remembered (each queued once), and the events a gap's lookup reads and delivers per page. */
const GAP_FILL_MAX = 10_000
/**
 * Events looked up after the LISTEN connection came back, at most, page after page. One page of GAP_FILL_MAX was
 * read before: postgres.js can bring LISTEN back 10-20 s after the pool, and at a few thousand events a second the
 * changes past the first page were dropped, a subscriber waiting for CONFIRMED waiting for good.
 */
const GAP_FILL_LIMIT = 500_000
/**
 * The gap's lookup starts this many ids below the highest announced: an event id is taken at insert, so one
 * committed while LISTEN was down can have a lower id than one announced before the drop.
 */
const GAP_LOOKBACK = 1_000

/**
 * Cross-instance change feed over Postgres LISTEN/NOTIFY (no extra broker): a
 * trigger on transaction_events announces each event; this loads them, in
 * batches, and only while someone is listening.
 */
export async function startTransactionUpdates(sql: Sql, log: Logger, opts: { retryMs?: number } = {}): Promise<TransactionUpdates> {
  const retryMs = opts.retryMs ?? LOAD_RETRY_MS
  /** The wait before the next try after `failures` in a row. */
  const backoff = (failures: number) => Math.min(retryMs * failures, LOAD_RETRY_MAX_MS)
  const logFailure = (err: unknown, failures: number, what: string, extra: Record<string, unknown> = {}) => {
    if (failures % LOG_ERROR_EVERY === 0) log.error({ err, ...extra, attempt: failures }, `${what} still fails; the changes wait, none is dropped`)
    else log.warn({ err, ...extra, attempt: failures }, `${what} failed; trying again`)
  }
  const listeners = new Set<(row: FeedRow) => void>()
  let pending = new Set<string>()
  let timer: NodeJS.Timeout | null = null
  let flushing: Promise<void> = Promise.resolve()
  let failures = 0
  /** After a failed load, no load before this (a flush queued meanwhile waits too). */
  let backoffUntil = 0
  let stopped = false

  /**
   * Event ids announced or found lately, listened to or not (oldest dropped first): each is queued once, so a
   * change committed just after LISTEN came back, both announced and found by the gap's lookup, is delivered
   * once, and one announced while no one listened is not replayed by a later gap's lookup.
   */
  const known = new Set<string>()
  /** The highest event id announced or found: where the gap's lookup after a reconnect starts. */
  let highest = 0
  const take = (id: string) => {
    if (known.has(id)) return
    known.add(id)
    if (known.size > GAP_FILL_MAX) known.delete(known.values().next().value!)
    highest = Math.max(highest, Number(id))
    if (listeners.size > 0) pending.add(id)
  }
  const soon = (ms: number) => {
    if (stopped) return
    timer ??= setTimeout(schedule, ms)
  }

  /** Delivers what is pending; with `upTo`, only events up to that id (the rest stay pending). */
  const flush = async (upTo?: number) => {
    timer = null
    if (stopped) return
    // While a gap's lookup waits to be tried again, newer changes wait too: delivered first, they would put a
    // transaction's later status before its earlier one.
    if (gapRetry) return soon(retryMs)
    const wait = backoffUntil - Date.now()
    if (wait > 0) return soon(wait)
    let ids = [...pending]
    pending = new Set()
    if (upTo !== undefined) {
      pending = new Set(ids.filter((id) => Number(id) > upTo))
      ids = ids.filter((id) => Number(id) <= upTo)
    }
    if (ids.length === 0 || listeners.size === 0) return
    let rows: FeedRow[]
    try {
      rows = await sql<FeedRow[]>`
        SELECT ${listedColumns(sql, 't')}, e.to_status AS status, e.id::text AS event_id FROM transaction_events e JOIN transactions t ON t.id = e.transaction_id
        WHERE e.id = ANY(${pgArray(ids)}::bigint[]) ORDER BY e.id`
      failures = 0
    } catch (err) {
      logFailure(err, ++failures, 'loading updated transactions', { events: ids.length })
      // Ahead of what arrived meanwhile; the query orders by event id either way.
      pending = new Set([...ids, ...pending])
      backoffUntil = Date.now() + backoff(failures)
      return soon(backoff(failures))
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
  function schedule() {
    flushing = flushing.then(() => flush()).catch((err) => log.error({ err }, 'delivering updated transactions failed'))
  }

  /** The highest event id when the feed started listening: what came before is not this feed's to deliver. */
  let startId: number | null = null
  const readStart = () =>
    sql<{ id: number }[]>`SELECT coalesce(max(id), 0)::int8 AS id FROM transaction_events`.then(([row]) => {
      startId = Number(row?.id ?? 0)
      highest = Math.max(highest, startId)
    })

  /**
   * postgres.js runs LISTEN again on a new connection after the old one dropped (Postgres restarted, a network
   * cut): what was committed meanwhile was announced to no one. Runs in the flush chain, so it cannot overtake
   * what is being delivered, and what it finds goes out with what is announced next, in event order.
   */
  const fillGap = async (): Promise<void> => {
    if (stopped) return
    if (startId === null) return readStart() // never knew where the feed started: nothing to fill, only a start
    // After a page failed: on from where that page started. From below `highest` instead, the changes between that
    // page and the ids announced live meanwhile (which move `highest` on) were never delivered.
    const since = gapResumeFrom ?? Math.max(startId, highest - GAP_LOOKBACK)
    gapResumeFrom = null
    // Page after page, each delivered before the next is read (in event order, and a few MB at a time). A failed
    // page is tried again as a failed load is, and what was delivered is not delivered again (known).
    let from = since
    let read = 0
    let found = 0
    for (;;) {
      let rows: { id: number }[]
      try {
        rows = await sql<{ id: number }[]>`SELECT id FROM transaction_events WHERE id > ${from} ORDER BY id LIMIT ${GAP_FILL_MAX}`
        gapFailures = 0
      } catch (err) {
        // Likely right after Postgres came back: tried again, like a failed load, else those changes are lost.
        logFailure(err, ++gapFailures, 'loading the changes made while not listening')
        gapResumeFrom = from
        gapRetry = setTimeout(() => {
          gapRetry = null
          if (!stopped) runGapFill()
        }, backoff(gapFailures))
        return
      }
      const before = pending.size
      for (const r of rows) take(String(r.id))
      found += pending.size - before
      read += rows.length
      if (timer) clearTimeout(timer)
      const more = rows.length === GAP_FILL_MAX && read < GAP_FILL_LIMIT
      // Changes announced live meanwhile wait for the pages before them: sent with this page, a transaction's
      // CONFIRMED went out ahead of its INCLUDED on a later page, and a subscriber was left on INCLUDED.
      await flush(more ? Number(rows.at(-1)!.id) : undefined)
      if (rows.length < GAP_FILL_MAX || stopped) break
      if (read >= GAP_FILL_LIMIT) {
        log.warn({ since }, `more than ${GAP_FILL_LIMIT} changes while not listening: subscribers miss the rest`)
        break
      }
      from = Number(rows.at(-1)!.id)
    }
    log.info({ since, found }, 'transaction updates: listening again; loaded the changes made meanwhile')
  }
  let gapFailures = 0
  let gapRetry: NodeJS.Timeout | null = null
  /** Where the gap's lookup goes on from after a page failed. */
  let gapResumeFrom: number | null = null
  const runGapFill = () => {
    flushing = flushing.then(fillGap).catch((err: unknown) => log.warn({ err }, 'loading the changes made while not listening failed; subscribers miss them'))
  }

  let listenedBefore = false
  // The payload is a comma-separated list of event ids (one NOTIFY per statement).
  const { unlisten } = await sql.listen(
    'transaction_updated',
    (ids) => {
      for (const id of ids.split(',')) take(id)
      if (pending.size) soon(COALESCE_MS)
    },
    () => {
      if (stopped) return
      if (!listenedBefore) {
        listenedBefore = true
        // In the flush chain, so a reconnect's gap fill runs after it.
        flushing = flushing.then(readStart).catch((err: unknown) => log.warn({ err }, 'reading the latest transaction event failed'))
        return
      }
      runGapFill()
    },
  )

  return {
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async current(id) {
      const [row] = await sql<FeedRow[]>`
        SELECT ${listedColumns(sql, 't')}, coalesce((SELECT max(e.id) FROM transaction_events e WHERE e.transaction_id = t.id), 0)::text AS event_id
        FROM transactions t WHERE t.id = ${id}`
      return row ?? null
    },
    async stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      if (gapRetry) clearTimeout(gapRetry)
      await flushing
      await unlisten()
    },
  }
}
