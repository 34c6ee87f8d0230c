import postgres from 'postgres'
import { openPostgres } from './socketUrl.ts'

export type Sql = postgres.Sql
export type TxSql = postgres.TransactionSql
export type Db = ReturnType<typeof createDb>

export function createDb(databaseUrl: string, opts: { max?: number } = {}) {
  const sql = openPostgres(databaseUrl, {
    max: opts.max ?? 20,
    // Silence NOTICEs such as "relation already exists, skipping" from idempotent DDL.
    onnotice: () => {},
    // The pid tells operators (and tests) which instance holds a lock, such as a chain's watcher leadership.
    // Custom plans: the hot statements join unnest()ed arrays of unknown length to our tables, and a generic
    // plan made while the tables were small (a fresh database) kept seq-scanning attempts and transactions
    // about 40 times a second as they grew (seen in pg_stat_user_tables during the bench).
    connection: { application_name: `tx-broadcaster:${process.pid}`, plan_cache_mode: 'force_custom_plan' },
    // int8 (nonces, block numbers, sequence numbers) fits a JS number; numeric (wei) stays a decimal string.
    types: {
      int8: { to: 20, from: [20], serialize: (x: number | bigint) => x.toString(), parse: (x: string) => Number(x) },
    },
  })
  return { sql, databaseUrl, close: () => sql.end({ timeout: 5 }) }
}
