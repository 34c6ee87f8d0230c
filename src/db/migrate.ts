import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { drizzle } from 'drizzle-orm/postgres-js'
import { migrate } from 'drizzle-orm/postgres-js/migrator'
import { openPostgres } from './socketUrl.ts'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../drizzle', import.meta.url))

/** An arbitrary constant: the advisory lock that lets one instance at a time migrate. */
const MIGRATION_LOCK_ID = 7_302_214_001

/**
 * Applies drizzle/ migrations; several instances starting together take turns.
 * Uses its own connection: drizzle replaces the date parsers of the client it wraps.
 */
export async function migrateDatabase(databaseUrl: string): Promise<void> {
  // One connection, so the session lock and the migration share it.
  const sql = openPostgres(databaseUrl, { max: 1, onnotice: () => {} })
  try {
    await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK_ID})`
    await migrate(drizzle(sql), { migrationsFolder: MIGRATIONS_DIR })
    await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK_ID})`
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/**
 * How many of this version's migrations the database has, and how many this version knows: a database with none
 * (never started) is new, one with fewer belongs to an older version of the service.
 */
export async function migrationsApplied(databaseUrl: string): Promise<{ applied: number; known: number }> {
  const journal = JSON.parse(readFileSync(join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }
  const sql = openPostgres(databaseUrl, { max: 1, onnotice: () => {} })
  try {
    const [table] = await sql<{ exists: boolean }[]>`SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AS exists`
    const applied = table?.exists ? Number((await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`)[0]!.n) : 0
    return { applied, known: journal.entries.length }
  } finally {
    await sql.end({ timeout: 5 })
  }
}
