import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { drizzle } from 'drizzle-orm/postgres-js'
import { migrate } from 'drizzle-orm/postgres-js/migrator'
import { isLockTimeout } from './lockTimeout.ts'
import { openPostgres } from './socketUrl.ts'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../drizzle', import.meta.url))

/** drizzle's list of this version's migrations (drizzle/meta/_journal.json): each one's tag and creation time. */
export function readMigrationJournal(): Array<{ tag: string; when: number }> {
  return (JSON.parse(readFileSync(join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8')) as { entries: Array<{ tag: string; when: number }> }).entries
}

/**
 * Where the applied migrations are recorded: a table of this service's own. drizzle's default
 * (drizzle.__drizzle_migrations) is every drizzle project's: in a database shared with another one, its newer
 * migrations made ours look applied (drizzle compares creation times), so none of ours ran, and a later one of ours
 * was skipped while /readyz, counting the other's rows too, said ready.
 */
export const MIGRATIONS_SCHEMA = 'drizzle'
export const MIGRATIONS_TABLE = '__tx_broadcaster_migrations'
/** The table versions before 2026-11-28 recorded them in, shared with any other drizzle project. */
const SHARED_TABLE = '__drizzle_migrations'

/** An arbitrary constant: the advisory lock that lets one instance at a time migrate. */
const MIGRATION_LOCK_ID = 7_302_214_001

/**
 * How long a migration waits for a table's lock before it lets go and tries again. A migration waiting for a lock
 * (behind a long transaction: a pg_dump, a sign batch) makes every query on that table queue behind it: without
 * a limit, accepts and status changes stopped for as long as the other transaction ran.
 */
const LOCK_TIMEOUT_MS = 2_000
/** Pauses between tries (about 2 minutes in all, with the waits), then start-up fails saying why. */
const RETRY_DELAYS_MS = [1_000, 2_000, 3_000, 5_000, 5_000, 10_000, 10_000, 15_000, 15_000, 15_000]

/**
 * Applies drizzle/ migrations; several instances starting together take turns (the advisory lock: waited for
 * without a limit, as another instance's migration may build an index for minutes). All pending migrations are
 * one transaction: a failure leaves none applied, and the error names them.
 * Uses its own connection: drizzle replaces the date parsers of the client it wraps.
 */
export async function migrateDatabase(databaseUrl: string, opts: { onRetry?: (err: Error, delayMs: number) => void } = {}): Promise<void> {
  // One connection, so the session lock and the migration share it.
  const sql = openPostgres(databaseUrl, { max: 1, onnotice: () => {} })
  try {
    await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK_ID})`
    await adoptSharedRecord(sql)
    const pending = pendingMigrations(await recordedTimes(sql))
    if (pending.length) {
      await sql.unsafe(`SET lock_timeout = ${LOCK_TIMEOUT_MS}`)
      for (let attempt = 0; ; attempt++) {
        try {
          await migrate(drizzle(sql), { migrationsFolder: MIGRATIONS_DIR, migrationsSchema: MIGRATIONS_SCHEMA, migrationsTable: MIGRATIONS_TABLE })
          break
        } catch (err) {
          const lockBusy = isLockTimeout(err)
          const delay = RETRY_DELAYS_MS[attempt]
          if (lockBusy && delay !== undefined) {
            opts.onRetry?.(err as Error, delay)
            await new Promise((r) => setTimeout(r, delay))
            continue
          }
          const why = lockBusy ? `a table they change stayed locked by another transaction (a long query, a pg_dump) for over 2 minutes` : String((err as { cause?: Error }).cause?.message ?? (err as Error).message)
          throw new Error(`database migrations ${pending.join(', ')} failed, none applied: ${why}`, { cause: err })
        }
      }
      await sql`RESET lock_timeout`
    }
    await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK_ID})`
  } finally {
    await sql.end({ timeout: 5 })
  }
}

type Sql = ReturnType<typeof openPostgres>

/** Whether `drizzle.<table>` exists. */
async function tableExists(sql: Sql, table: string): Promise<boolean> {
  const [row] = await sql<{ exists: boolean }[]>`SELECT to_regclass(${`${MIGRATIONS_SCHEMA}.${table}`}) IS NOT NULL AS exists`
  return row!.exists
}

/** The creation times recorded in `drizzle.<table>` (none when it does not exist), those of `only` if given. */
async function recordedTimes(sql: Sql, table = MIGRATIONS_TABLE, only?: number[]): Promise<number[]> {
  if (!(await tableExists(sql, table))) return []
  const rows = only
    ? await sql.unsafe<{ at: string }[]>(`SELECT created_at::text AS at FROM ${MIGRATIONS_SCHEMA}.${table} WHERE created_at = ANY($1::int8[])`, [only])
    : await sql.unsafe<{ at: string }[]>(`SELECT created_at::text AS at FROM ${MIGRATIONS_SCHEMA}.${table}`)
  return rows.map((r) => Number(r.at))
}

/**
 * A database migrated by an earlier version has this service's migrations in drizzle's shared table: they are copied
 * to ours once (those whose creation time is one of ours: another project's rows are left there), so none runs again.
 */
async function adoptSharedRecord(sql: Sql): Promise<void> {
  if ((await tableExists(sql, MIGRATIONS_TABLE)) || !(await tableExists(sql, SHARED_TABLE))) return
  const ours = readMigrationJournal().map((e) => e.when)
  await sql.begin(async (tx) => {
    // drizzle's own definition of the table (drizzle-orm pg-core dialect.migrate), so its migrator takes it as it is.
    await tx.unsafe(`CREATE TABLE ${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`)
    await tx.unsafe(
      `INSERT INTO ${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE} (hash, created_at)
       SELECT hash, created_at FROM ${MIGRATIONS_SCHEMA}.${SHARED_TABLE} WHERE created_at = ANY($1::int8[]) ORDER BY id`,
      [ours],
    )
  })
}

/**
 * This version's migrations the database does not have yet, by tag: those after the newest recorded (drizzle
 * compares creation times, and applies only those). Refuses a database missing one older than its newest: it would
 * never run. Only an earlier version in a database shared with another drizzle project made such a hole (the other's
 * newer rows made ours look applied); started anyway, the service ran without it, and /readyz stayed 503 unsaid.
 */
function pendingMigrations(recorded: number[]): string[] {
  const last = Math.max(0, ...recorded)
  const have = new Set(recorded)
  const journal = readMigrationJournal()
  const skipped = journal.filter((e) => e.when <= last && !have.has(e.when))
  if (skipped.length) {
    const names = skipped.map((e) => e.tag).join(', ')
    throw new Error(
      `database migrations ${names} were never applied, though later ones were: an earlier version skipped them in a database shared with another drizzle project. ` +
        `Apply drizzle/${skipped[0]!.tag}.sql${skipped.length > 1 ? ' (and the others, in order)' : ''} by hand and record each in ${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE} (hash, created_at from drizzle/meta/_journal.json's "when"), or move the service to a database of its own`,
    )
  }
  return journal.filter((e) => e.when > last).map((e) => e.tag)
}

/**
 * How many of this version's migrations the database has, and how many this version knows: a database with none
 * (never started) is new, one with fewer belongs to an older version of the service.
 */
export async function migrationsApplied(databaseUrl: string): Promise<{ applied: number; known: number }> {
  const known = readMigrationJournal().length
  const sql = openPostgres(databaseUrl, { max: 1, onnotice: () => {} })
  try {
    // An earlier version's database (its record in drizzle's shared table) counts as migrated by it.
    let applied = (await recordedTimes(sql)).length
    if (applied === 0) applied = (await recordedTimes(sql, SHARED_TABLE, readMigrationJournal().map((e) => e.when))).length
    return { applied, known }
  } finally {
    await sql.end({ timeout: 5 })
  }
}
