import { fileURLToPath } from 'node:url'
import { migrate } from 'drizzle-orm/postgres-js/migrator'
import type { Db } from './connect.ts'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../drizzle', import.meta.url))

/** An arbitrary constant: the advisory lock that lets one instance at a time migrate. */
const MIGRATION_LOCK_ID = 7_302_214_001

/** Applies drizzle/ migrations; several instances starting together take turns. */
export async function migrateDatabase(db: Db): Promise<void> {
  await db.sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`
    await migrate(db.db, { migrationsFolder: MIGRATIONS_DIR })
  })
}
