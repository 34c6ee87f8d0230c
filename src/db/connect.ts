import postgres from 'postgres'
import { openPostgres } from './socketUrl.ts'

export type Sql = postgres.Sql
export type TxSql = postgres.TransactionSql
export type Db = ReturnType<typeof createDb>

export function createDb(databaseUrl: string, opts: { max?: number } = {}) {
  const options = {
    // Silence NOTICEs such as "relation already exists, skipping" from idempotent DDL.
    onnotice: () => {},
    // The pid tells operators (and tests) which instance holds a lock, such as a chain's watcher leadership.
    // Custom plans: the hot statements join unnest()ed arrays of unknown length to our tables, and a generic
    // plan made while the tables were small (a fresh database) kept seq-scanning attempts and transactions
    // about 40 times a second as they grew (seen in pg_stat_user_tables during the bench).
    // No JIT: every statement here is a short OLTP read or write, and Postgres compiles one with LLVM once its
    // estimated cost passes jit_above_cost, which estimates made before autovacuum analysed a fast-growing table
    // did. The dashboard's read of 50 rows' attempts then took 400 ms of compiling for 1 ms of work (bench, Failed tab).
    // Keepalives from the server's side: a backend whose instance vanished from the network (a partition, a host
    // gone) is ended within about 25 s, and the locks it held (a watcher's leadership, a signer's row) with it;
    // on Linux defaults Postgres held them for over two hours.
    connection: {
      application_name: `tx-broadcaster:${process.pid}`,
      plan_cache_mode: 'force_custom_plan',
      jit: 'off',
      tcp_keepalives_idle: 10,
      tcp_keepalives_interval: 5,
      tcp_keepalives_count: 3,
    },
    // int8 (nonces, block numbers, sequence numbers) fits a JS number; numeric (wei) stays a decimal string.
    types: {
      int8: { to: 20, from: [20], serialize: (x: number | bigint) => x.toString(), parse: (x: string) => Number(x) },
    },
  }
  // A database host that drops packets fails a request in 10 s (503 UNAVAILABLE), not postgres.js's default 30 s.
  const sql = openPostgres(databaseUrl, { ...options, max: opts.max ?? 20, connect_timeout: 10 })
  /**
   * Connections held for a session lock for as long as it is held (a chain watcher's leadership), and /readyz's
   * check (it must not wait behind busy work): a pool of their own. Taken from the main pool, each chain's watcher kept one of its 20 for good, leader or not: with 20 chains
   * nothing was left for accepts and sign batches, and every request hung. Idle ones close.
   */
  const locks = openPostgres(databaseUrl, { ...options, max: 100, idle_timeout: 60 })
  return {
    sql,
    locks,
    databaseUrl,
    // The work pool first: a watcher's tick still writing at the stop holds its leader lock until its statements
    // are done (watchChain.ts), so no other instance leads beside them.
    close: async () => {
      await sql.end({ timeout: 5 })
      await locks.end({ timeout: 1 })
    },
  }
}
