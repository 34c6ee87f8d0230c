import { ConfigError } from '../config/loadConfig.ts'
import { openPostgres } from './socketUrl.ts'
import { MIGRATIONS_SCHEMA, MIGRATIONS_TABLE } from './migrate.ts'

/** How long start-up waits for the database's first answer. */
const CONNECT_TIMEOUT_S = 10

/** Where DATABASE_URL points, without the password: `host:port/db` (or the socket directory). */
export function describeDatabase(databaseUrl: string): string {
  const url = new URL(databaseUrl)
  const socket = url.searchParams.get('host')
  const db = url.pathname.replace(/^\//, '') || '(default database)'
  return `${socket?.startsWith('/') ? socket : `${url.hostname || 'localhost'}:${url.port || 5432}`}/${db}`
}

/**
 * Checks DATABASE_URL before anything else starts: a URL that is not one, another scheme, a host that refuses or
 * does not answer, a database that does not exist. Each printed a stack trace from deep inside the migration
 * (after the signers were loaded and the providers asked), none naming DATABASE_URL, and an invalid one could be
 * echoed with its password. Now one line saying what to change, the password never in it.
 */
export async function checkDatabase(databaseUrl: string, opts: { refuseOthers?: boolean } = {}): Promise<void> {
  let url: URL
  try {
    url = new URL(databaseUrl)
  } catch {
    throw new ConfigError('DATABASE_URL is not a URL: expected postgres://user:password@host:5432/database (characters such as / : @ # in the password percent-encoded)')
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    throw new ConfigError(`DATABASE_URL: expected a postgres:// URL, got ${url.protocol}//...`)
  const where = describeDatabase(databaseUrl)
  const sql = openPostgres(databaseUrl, { max: 1, connect_timeout: CONNECT_TIMEOUT_S, onnotice: () => {} })
  let found: { ours: boolean; tables: number } | undefined
  try {
    ;[found] = await sql<{ ours: boolean; tables: number }[]>`
      -- One of this service's own tables: drizzle's migrations table is every drizzle project's.
      SELECT to_regclass('signer_nonces') IS NOT NULL AND to_regclass('transaction_events') IS NOT NULL AS ours,
        -- Not counted: a migrations table, ours or drizzle's shared one of earlier versions (a first dev start stopped in
        -- its migration left it alone, and every later start was refused), nor an extension's own tables (PostGIS's
        -- spatial_ref_sys, TimescaleDB's catalog). Another project's database has tables of its own besides.
        (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
            AND NOT (n.nspname = ${MIGRATIONS_SCHEMA} AND c.relname IN (${MIGRATIONS_TABLE}, '__drizzle_migrations'))
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')) AS tables`
  } catch (err) {
    const e = err as { code?: string; message?: string }
    // postgres.js's own messages name the host and database, never the password; a network error's code says enough.
    const why = e.code && /^[A-Z_]+$/.test(e.code) && !/^\d/.test(e.code) ? e.code : (e.message ?? String(err))
    throw new ConfigError(`DATABASE_URL: cannot use the database at ${where} (${why.split(databaseUrl).join('<DATABASE_URL>')})`)
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {})
  }
  // Dev mode (no config file) with a DATABASE_URL inherited from another project's shell added this service's tables
  // and job queue to that project's database, said only in the banner afterwards.
  if (opts.refuseOthers && found && !found.ours && found.tables > 0)
    throw new ConfigError(
      `DATABASE_URL names a database (${where}) that holds ${found.tables} table(s) and none of tx-broadcaster's; dev mode (no config file) would add its own there. ` +
        `Unset DATABASE_URL to run dev mode on its embedded Postgres (it may come from another project's shell), or name an empty database`,
    )
}
