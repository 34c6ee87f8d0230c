import type postgres from 'postgres'
import { runBurst, runOpenLoop, type Api, type HttpPool, type InputFactory, type LoadResult } from './loadGenerator.ts'
import { round, sleep } from './stats.ts'

export type Sql = postgres.Sql

/** The highest seq so far: rows of a phase are the ones above the mark taken before it (phases never overlap). */
export async function seqMark(sql: Sql): Promise<number> {
  const [row] = await sql<{ seq: string }[]>`SELECT coalesce(max(seq), 0)::text AS seq FROM transactions`
  return Number(row!.seq)
}

export type Settle = { settled: boolean; waitedMs: number; open: number }

/** Waits (bounded) until no transaction is QUEUED, PENDING or INCLUDED, so a measurement starts on a quiet service. */
export async function waitForQuiet(sql: Sql, timeoutMs: number): Promise<Settle> {
  const t0 = Date.now()
  let open = 0
  do {
    const [row] = await sql<{ open: number }[]>`SELECT count(*)::int AS open FROM transactions WHERE status IN ('QUEUED','PENDING','INCLUDED')`
    open = row!.open
    if (open === 0) return { settled: true, waitedMs: Date.now() - t0, open }
    await sleep(250)
  } while (Date.now() - t0 < timeoutMs)
  return { settled: false, waitedMs: Date.now() - t0, open }
}

export type StatusCounts = { total: number; queued: number; pending: number; included: number; confirmed: number; failed: number }

async function countsAbove(sql: Sql, seq: number, upTo: number | null = null): Promise<StatusCounts> {
  const [row] = await sql<StatusCounts[]>`
    SELECT count(*)::int AS total,
      count(*) FILTER (WHERE status = 'QUEUED')::int AS queued,
      count(*) FILTER (WHERE status = 'PENDING')::int AS pending,
      count(*) FILTER (WHERE status = 'INCLUDED')::int AS included,
      count(*) FILTER (WHERE status = 'CONFIRMED')::int AS confirmed,
      count(*) FILTER (WHERE status IN ('FAILED','REVERTED','CANCELLED'))::int AS failed
    FROM transactions WHERE seq > ${seq} ${upTo === null ? sql`` : sql`AND seq <= ${upTo}`}`
  return row!
}

/** Rows above `seq` (from the sequence, no scan), and how many of them are QUEUED or still open. */
async function openAbove(sql: Sql, seq: number): Promise<{ total: number; queued: number; open: number }> {
  const [row] = await sql<{ total: number; queued: number; open: number }[]>`
    SELECT (SELECT coalesce(max(seq), ${seq}) - ${seq} FROM transactions)::int AS total,
      count(*) FILTER (WHERE status = 'QUEUED')::int AS queued, count(*)::int AS open
    FROM transactions WHERE status IN ('QUEUED', 'PENDING', 'INCLUDED') AND seq > ${seq}`
  return row!
}

export type DrainResult = {
  submitted: LoadResult
  accepted: number
  counts: StatusCounts
  complete: boolean
  /** From the first submit until the last of them was CONFIRMED. */
  durationMs: number
  /** confirmed / durationMs: the figure compared with the baseline. */
  txPerSec: number
  /** From the 10th to the 90th percentile of final_at: the steady drain rate, without start-up and tail. */
  steadyTxPerSec: number | null
  /** ms after the first submit at which the last row was accepted, first sent, included, confirmed. */
  lastCreatedMs: number | null
  lastSentMs: number | null
  lastIncludedMs: number | null
  lastConfirmedMs: number | null
  /** About twice a second: [seconds since the first submit, rows accepted, rows signed, rows final]. */
  progress: [number, number, number, number][]
  /**
   * Per 250 ms after the first submit, read from the rows afterwards: [seconds, accepted, signed,
   * first sent, included, confirmed] in that slice. Shows which stage the drain waits on.
   */
  timeline: [number, number, number, number, number, number][]
  /** The blocks that carried the burst: [block number, transactions of the burst, seconds after the first submit it was seen included]. */
  blocks: [number, number, number][]
  ratioToBaseline: number | null
}

/** A burst submitted as fast as the API answers, followed to CONFIRMED by polling the transactions table. */
export async function runDrain(opts: {
  sql: Sql
  pool: HttpPool
  api: Api
  count: number
  concurrency: number
  input: InputFactory
  timeoutSec: number
  baselineTxPerSec: number | null
}): Promise<DrainResult> {
  const { sql } = opts
  const seq0 = await seqMark(sql)
  const t0 = Date.now()
  const deadline = t0 + opts.timeoutSec * 1000
  // The table is polled while the burst is still being submitted, so the progress shows when signing starts.
  let submitted: LoadResult | null = null
  const burst = runBurst({ pool: opts.pool, api: opts.api, count: opts.count, concurrency: opts.concurrency, input: opts.input, timeoutSec: opts.timeoutSec }).then(
    (r) => (submitted = r),
  )
  const progress: DrainResult['progress'] = []
  // Polled once a second with a query that reads only open rows (the partial indexes), so the bench's own
  // polling stays off the service's CPU: counting every row of the burst five times a second took a fifth
  // of a core. The figures do not depend on the interval: the end time is read from final_at afterwards.
  while (Date.now() < deadline) {
    await (submitted ? sleep(1_000) : Promise.race([sleep(1_000), burst]))
    const open = await openAbove(sql, seq0)
    progress.push([round((Date.now() - t0) / 1000, 1), open.total, open.total - open.queued, open.total - open.open])
    if (submitted && open.open === 0) break
  }
  const counts = await countsAbove(sql, seq0)
  const result: LoadResult = submitted ?? (await burst)
  const accepted = result.ok
  const [times] = await sql<
    { created: number | null; sent: number | null; included: number | null; final: number | null; p10: number | null; p90: number | null }[]
  >`
    SELECT extract(epoch FROM max(created_at))::float8 * 1000 AS created,
      extract(epoch FROM max(first_sent_at))::float8 * 1000 AS sent,
      extract(epoch FROM max(included_at))::float8 * 1000 AS included,
      extract(epoch FROM max(final_at) FILTER (WHERE status = 'CONFIRMED'))::float8 * 1000 AS final,
      extract(epoch FROM percentile_disc(0.1) WITHIN GROUP (ORDER BY final_at) FILTER (WHERE status = 'CONFIRMED'))::float8 * 1000 AS p10,
      extract(epoch FROM percentile_disc(0.9) WITHIN GROUP (ORDER BY final_at) FILTER (WHERE status = 'CONFIRMED'))::float8 * 1000 AS p90
    FROM transactions WHERE seq > ${seq0}`
  const rel = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : round(ms - t0))
  // Stage times of every row of the burst, bucketed here (one query, no per-slice scans).
  const stageRows = await sql<{ c: number | null; g: number | null; f: number | null; i: number | null; d: number | null }[]>`
    SELECT extract(epoch FROM t.created_at)::float8 * 1000 AS c, extract(epoch FROM a.signed_at)::float8 * 1000 AS g,
      extract(epoch FROM t.first_sent_at)::float8 * 1000 AS f, extract(epoch FROM t.included_at)::float8 * 1000 AS i,
      CASE WHEN t.status = 'CONFIRMED' THEN extract(epoch FROM t.final_at)::float8 * 1000 END AS d
    FROM transactions t
    LEFT JOIN LATERAL (SELECT min(created_at) AS signed_at FROM attempts WHERE transaction_id = t.id) a ON true
    WHERE t.seq > ${seq0}`
  const timeline: DrainResult['timeline'] = []
  for (const row of stageRows)
    (['c', 'g', 'f', 'i', 'd'] as const).forEach((k, stage) => {
      const at = row[k]
      if (at === null) return
      const slot = Math.max(0, Math.floor((at - t0) / 250))
      while (timeline.length <= slot) timeline.push([timeline.length / 4, 0, 0, 0, 0, 0])
      timeline[slot]![stage + 1]!++
    })
  const blockRows = await sql<{ n: number; txs: number; seen: number }[]>`
    SELECT block_number::int AS n, count(*)::int AS txs, extract(epoch FROM min(included_at))::float8 * 1000 AS seen
    FROM transactions WHERE seq > ${seq0} AND block_number IS NOT NULL GROUP BY 1 ORDER BY 1`
  const complete = counts.confirmed + counts.failed >= accepted && accepted > 0
  const durationMs = complete && times?.final ? times.final - t0 : Date.now() - t0
  const txPerSec = round(counts.confirmed / (Math.max(1, durationMs) / 1000))
  const steady =
    times?.p10 && times.p90 && times.p90 > times.p10 && counts.confirmed >= 20 ? round((0.8 * counts.confirmed) / ((times.p90 - times.p10) / 1000)) : null
  return {
    submitted: result,
    accepted,
    counts,
    complete,
    durationMs: round(durationMs),
    txPerSec,
    steadyTxPerSec: steady,
    lastCreatedMs: rel(times?.created),
    lastSentMs: rel(times?.sent),
    lastIncludedMs: rel(times?.included),
    lastConfirmedMs: rel(times?.final),
    progress,
    timeline,
    blocks: blockRows.map((b) => [b.n, b.txs, round((b.seen - t0) / 1000, 2)]),
    ratioToBaseline: opts.baselineTxPerSec ? round(txPerSec / opts.baselineTxPerSec, 3) : null,
  }
}

export type StageLatency = { count: number; p50: number | null; p95: number | null; p99: number | null; max: number | null }

export type LatencyResult = {
  load: LoadResult
  counts: StatusCounts
  /** Every row of the run reached INCLUDED (or a final status) before the bench stopped waiting. */
  complete: boolean
  /** first_sent_at - created_at, ms */
  acceptToFirstSend: StageLatency
  /** included_at - created_at, ms */
  acceptToIncluded: StageLatency
}

/** A steady open-loop rate; then, from the table, how long rows waited from accept to first broadcast and to inclusion. */
export async function runLatency(opts: {
  sql: Sql
  pool: HttpPool
  api: Api
  rate: number
  seconds: number
  input: InputFactory
  waitTimeoutSec: number
}): Promise<LatencyResult> {
  const { sql } = opts
  const seq0 = await seqMark(sql)
  const load = await runOpenLoop({ pool: opts.pool, api: opts.api, rate: opts.rate, seconds: opts.seconds, input: opts.input })
  const seq1 = await seqMark(sql)
  const deadline = Date.now() + opts.waitTimeoutSec * 1000
  let counts = await countsAbove(sql, seq0, seq1)
  while (counts.queued + counts.pending > 0 && Date.now() < deadline) {
    await sleep(200)
    counts = await countsAbove(sql, seq0, seq1)
  }
  const [row] = await sql<
    { sent: number; s50: number | null; s95: number | null; s99: number | null; smax: number | null; included: number; i50: number | null; i95: number | null; i99: number | null; imax: number | null }[]
  >`
    WITH t AS (
      SELECT extract(epoch FROM first_sent_at - created_at)::float8 * 1000 AS s, extract(epoch FROM included_at - created_at)::float8 * 1000 AS i
      FROM transactions WHERE seq > ${seq0} AND seq <= ${seq1}
    )
    SELECT count(s)::int AS sent,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS s50, percentile_cont(0.95) WITHIN GROUP (ORDER BY s) AS s95,
      percentile_cont(0.99) WITHIN GROUP (ORDER BY s) AS s99, max(s) AS smax,
      count(i)::int AS included,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY i) AS i50, percentile_cont(0.95) WITHIN GROUP (ORDER BY i) AS i95,
      percentile_cont(0.99) WITHIN GROUP (ORDER BY i) AS i99, max(i) AS imax
    FROM t`
  const r = (n: number | null | undefined) => (n === null || n === undefined ? null : round(n, 1))
  return {
    load,
    counts,
    complete: counts.queued + counts.pending === 0,
    acceptToFirstSend: { count: row!.sent, p50: r(row!.s50), p95: r(row!.s95), p99: r(row!.s99), max: r(row!.smax) },
    acceptToIncluded: { count: row!.included, p50: r(row!.i50), p95: r(row!.i95), p99: r(row!.i99), max: r(row!.imax) },
  }
}

export type AcceptRun = {
  label: 'steady' | 'high'
  settle: Settle
  load: LoadResult
  /** Rows the service committed during the run: more than load.ok when answers came after the client gave up. */
  stored: number
}

/** Open-loop accept runs: each rate on each API, each started on a quiet service. */
export async function runAccept(opts: {
  sql: Sql
  pool: HttpPool
  runs: { label: 'steady' | 'high'; rate: number; seconds: number }[]
  input: (api: Api, label: string) => InputFactory
  settleTimeoutSec: number
  onRun?: (label: string, api: Api) => void
  onSettle?: () => void
}): Promise<AcceptRun[]> {
  const out: AcceptRun[] = []
  for (const run of opts.runs)
    for (const api of ['graphql', 'rest'] as const) {
      opts.onSettle?.()
      const settle = await waitForQuiet(opts.sql, opts.settleTimeoutSec * 1000)
      opts.onRun?.(run.label, api)
      const seq0 = await seqMark(opts.sql)
      const load = await runOpenLoop({ pool: opts.pool, api, rate: run.rate, seconds: run.seconds, input: opts.input(api, run.label) })
      // Requests the client gave up on may still be committing on the service.
      await sleep(500)
      const stored = (await countsAbove(opts.sql, seq0)).total
      out.push({ label: run.label, settle, load, stored })
    }
  return out
}

export type DbSummary = {
  byStatus: Record<string, number>
  byError: Record<string, number>
  /** Transactions that needed more than one attempt (replacements). */
  multiAttempt: number
  /** Each provider answer recorded on attempts, by outcome (a rebroadcast adds answers). */
  providerOutcomes: Record<string, number>
  /** Open transactions whose last change is more than 30 s old. */
  stale: number
  oldestOpenSec: number | null
}

export async function summarizeDb(sql: Sql): Promise<DbSummary> {
  const status = await sql<{ status: string; n: number }[]>`SELECT status, count(*)::int AS n FROM transactions GROUP BY status ORDER BY status`
  const errors = await sql<{ code: string; n: number }[]>`
    SELECT error_code AS code, count(*)::int AS n FROM transactions WHERE error_code IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 20`
  const [multi] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM (SELECT transaction_id FROM attempts GROUP BY 1 HAVING count(*) > 1) m`
  const outcomes = await sql<{ outcome: string; n: number }[]>`
    SELECT p->>'outcome' AS outcome, count(*)::int AS n FROM attempts, jsonb_array_elements(providers) p GROUP BY 1 ORDER BY 2 DESC`
  const [open] = await sql<{ stale: number; oldest: number | null }[]>`
    SELECT count(*) FILTER (WHERE updated_at < now() - interval '30 seconds')::int AS stale,
      extract(epoch FROM now() - min(created_at))::float8 AS oldest
    FROM transactions WHERE status IN ('QUEUED','PENDING','INCLUDED')`
  return {
    byStatus: Object.fromEntries(status.map((r) => [r.status, r.n])),
    byError: Object.fromEntries(errors.map((r) => [r.code, r.n])),
    multiAttempt: multi!.n,
    providerOutcomes: Object.fromEntries(outcomes.map((r) => [r.outcome ?? 'none', r.n])),
    stale: open!.stale,
    oldestOpenSec: open!.oldest === null ? null : round(open!.oldest, 1),
  }
}
