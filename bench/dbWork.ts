import type { Sql } from './phases.ts'
import { round, sleep } from './stats.ts'

/**
 * What Postgres did during a phase, from its cumulative statistics: commits, WAL written and rows
 * written per table (with the share of updates that were HOT, i.e. touched no index). Divided by the
 * transactions the phase moved, it says where the database's share of the CPU goes without a profiler.
 * Statistics reach the views up to a second after a backend's transaction ends, hence the short wait.
 */
export type DbWorkSnapshot = {
  commits: number
  walRecords: number
  walBytes: number
  tables: Record<string, { ins: number; upd: number; hot: number; del: number }>
}

export type DbWork = {
  perTx: {
    commits: number
    walRecords: number
    walKb: number
    rowsInserted: number
    rowsUpdated: number
    hotUpdatePct: number | null
  }
  byTable: Record<string, { ins: number; upd: number; hotPct: number | null; del: number }>
}

export async function snapshotDbWork(sql: Sql): Promise<DbWorkSnapshot> {
  await sleep(1_200)
  const [db] = await sql<{ commits: string }[]>`SELECT xact_commit::text AS commits FROM pg_stat_database WHERE datname = current_database()`
  const [wal] = await sql<{ records: string; bytes: string }[]>`SELECT wal_records::text AS records, wal_bytes::text AS bytes FROM pg_stat_wal`
  const tables = await sql<{ relname: string; ins: string; upd: string; hot: string; del: string }[]>`
    SELECT relname, n_tup_ins::text AS ins, n_tup_upd::text AS upd, n_tup_hot_upd::text AS hot, n_tup_del::text AS del FROM pg_stat_user_tables`
  return {
    commits: Number(db!.commits),
    walRecords: Number(wal?.records ?? 0),
    walBytes: Number(wal?.bytes ?? 0),
    tables: Object.fromEntries(tables.map((t) => [t.relname, { ins: Number(t.ins), upd: Number(t.upd), hot: Number(t.hot), del: Number(t.del) }])),
  }
}

export function diffDbWork(before: DbWorkSnapshot, after: DbWorkSnapshot, transactions: number): DbWork {
  const n = Math.max(1, transactions)
  const byTable: DbWork['byTable'] = {}
  let ins = 0
  let upd = 0
  let hot = 0
  for (const [name, a] of Object.entries(after.tables)) {
    const b = before.tables[name] ?? { ins: 0, upd: 0, hot: 0, del: 0 }
    const d = { ins: a.ins - b.ins, upd: a.upd - b.upd, hot: a.hot - b.hot, del: a.del - b.del }
    if (!d.ins && !d.upd && !d.del) continue
    ins += d.ins
    upd += d.upd
    hot += d.hot
    byTable[name] = { ins: round(d.ins / n, 2), upd: round(d.upd / n, 2), hotPct: d.upd ? round((100 * d.hot) / d.upd) : null, del: round(d.del / n, 2) }
  }
  return {
    perTx: {
      commits: round((after.commits - before.commits) / n, 2),
      walRecords: round((after.walRecords - before.walRecords) / n, 1),
      walKb: round((after.walBytes - before.walBytes) / n / 1024, 2),
      rowsInserted: round(ins / n, 2),
      rowsUpdated: round(upd / n, 2),
      hotUpdatePct: upd ? round((100 * hot) / upd) : null,
    },
    byTable,
  }
}

export function renderDbWork(work: DbWork, label: string): string {
  const p = work.perTx
  const lines = [
    `postgres work per ${label} transaction: ${p.commits} commits, ${p.walRecords} WAL records (${p.walKb} KB), ${p.rowsInserted} rows inserted, ${p.rowsUpdated} updated (${p.hotUpdatePct ?? '-'} % HOT)`,
  ]
  for (const [name, t] of Object.entries(work.byTable).sort((a, b) => b[1].ins + b[1].upd - (a[1].ins + a[1].upd)))
    lines.push(`  ${name.padEnd(22)} ins ${String(t.ins).padStart(5)}  upd ${String(t.upd).padStart(5)} (${t.hotPct ?? '-'} % HOT)  del ${t.del}`)
  return lines.join('\n')
}
