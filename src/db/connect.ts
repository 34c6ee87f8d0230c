import postgres from 'postgres'

export type Sql = postgres.Sql
export type TxSql = postgres.TransactionSql
export type Db = ReturnType<typeof createDb>

export function createDb(databaseUrl: string, opts: { max?: number } = {}) {
  const sql = postgres(databaseUrl, {
    max: opts.max ?? 20,
    // Silence NOTICEs such as "relation already exists, skipping" from idempotent DDL.
    onnotice: () => {},
    // The pid tells operators (and tests) which instance holds a lock, such as a chain's watcher leadership.
    connection: { application_name: `tx-broadcaster:${process.pid}` },
    // int8 (nonces, block numbers, sequence numbers) fits a JS number; numeric (wei) stays a decimal string.
    types: {
      int8: { to: 20, from: [20], serialize: (x: number | bigint) => x.toString(), parse: (x: string) => Number(x) },
    },
  })
  return { sql, databaseUrl, close: () => sql.end({ timeout: 5 }) }
}
