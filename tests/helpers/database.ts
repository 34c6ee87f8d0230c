import postgres from 'postgres'
import { randomBytes } from 'node:crypto'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { drizzle } from 'drizzle-orm/postgres-js'
import { migrate } from 'drizzle-orm/postgres-js/migrator'
import { createDb, type Db } from '../../src/db/connect.ts'
import { MIGRATIONS_DIR, migrateDatabase } from '../../src/db/migrate.ts'

/** The Postgres the tests may create databases in (.ci/run makes sure one is running). */
export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** A fresh, empty database per test file: tests never see each other's rows. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `txb_test_${randomBytes(5).toString('hex')}`
  const admin = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(ADMIN_DATABASE_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const a = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} })
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await a.end()
    },
  }
}

/** A fresh database with the service's migrations applied, and a connection to it (closed by `drop`). */
export async function createMigratedTestDatabase(max = 2): Promise<{ url: string; conn: Db; drop: () => Promise<void> }> {
  const db = await createTestDatabase()
  await migrateDatabase(db.url)
  const conn = createDb(db.url, { max })
  return {
    url: db.url,
    conn,
    drop: async () => {
      await conn.close()
      await db.drop()
    },
  }
}

/**
 * Applies the service's migrations up to, not including, the one whose tag ends with `beforeTag`: the database
 * of a deployment that predates it, to test what that migration does to the rows already there.
 */
export async function migrateUpTo(databaseUrl: string, beforeTag: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'txb-migrations-'))
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  try {
    cpSync(MIGRATIONS_DIR, dir, { recursive: true })
    const journalPath = join(dir, 'meta', '_journal.json')
    const journal = JSON.parse(readFileSync(journalPath, 'utf8'))
    const at = journal.entries.findIndex((e: { tag: string }) => e.tag.endsWith(beforeTag))
    if (at <= 0) throw new Error(`no migration after the first ends with ${beforeTag}`)
    journal.entries = journal.entries.slice(0, at)
    writeFileSync(journalPath, JSON.stringify(journal))
    await migrate(drizzle(sql), { migrationsFolder: dir })
  } finally {
    await sql.end()
    rmSync(dir, { recursive: true, force: true })
  }
}
