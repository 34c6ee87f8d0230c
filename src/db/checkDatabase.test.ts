import postgres from 'postgres'
import { describe, expect, it } from 'vitest'
import { createMigratedTestDatabase, createTestDatabase } from '../../tests/helpers/database.ts'
import { checkDatabase } from './checkDatabase.ts'

/** What start-up prints for a wrong DATABASE_URL: one line naming it and what is wrong, never the password. */
async function refusal(url: string): Promise<string> {
  const err = await checkDatabase(url).then(
    () => null,
    (e: Error) => e,
  )
  expect(err?.name).toBe('ConfigError')
  expect(err!.message).not.toContain('secretpw')
  expect(err!.message).not.toContain('\n')
  return err!.message
}

describe('checkDatabase (real Postgres at 127.0.0.1:5432)', () => {
  it('answers for a database that is there', async () => {
    await expect(checkDatabase('postgres://postgres@127.0.0.1:5432/postgres')).resolves.toBeUndefined()
  })

  it.each([
    ['a port nothing listens on', 'postgres://u:secretpw@127.0.0.1:1/x', /^DATABASE_URL: cannot use the database at 127\.0\.0\.1:1\/x \(ECONNREFUSED\)$/],
    ['a database that does not exist', 'postgres://postgres:secretpw@127.0.0.1:5432/no_such_db_here', /^DATABASE_URL: cannot use the database at 127\.0\.0\.1:5432\/no_such_db_here \(database "no_such_db_here" does not exist\)$/],
    ['not a URL', 'not-a-url', /^DATABASE_URL is not a URL/],
    ['a password with an unencoded /', 'postgres://u:secret/pw@db/x', /^DATABASE_URL is not a URL: .*percent-encoded/],
    ['another scheme', 'mysql://u:secretpw@127.0.0.1/x', /^DATABASE_URL: expected a postgres:\/\/ URL, got mysql:/],
  ])('%s: one line naming DATABASE_URL', async (_label, url, message) => {
    expect(await refusal(url)).toMatch(message)
  })

  it('dev mode (refuseOthers) refuses a database holding other tables and none of ours; an empty one or ours passes', async () => {
    const other = await createTestDatabase()
    const ours = await createMigratedTestDatabase()
    try {
      await expect(checkDatabase(other.url, { refuseOthers: true })).resolves.toBeUndefined()
      const sql = postgres(other.url, { max: 1, onnotice: () => {} })
      // Our migrations table alone (a first dev start stopped in its migration leaves it) and an extension's own
      // tables (PostGIS's spatial_ref_sys, here one added to hstore) are no other project's. Before: refused.
      await sql`CREATE SCHEMA drizzle`
      await sql`CREATE TABLE drizzle.__tx_broadcaster_migrations (id serial, hash text, created_at bigint)`
      await sql`CREATE TABLE drizzle.__drizzle_migrations (id serial, hash text, created_at bigint)`
      await sql`CREATE EXTENSION hstore`
      await sql`CREATE TABLE spatial_ref_sys (srid int)`
      await sql`ALTER EXTENSION hstore ADD TABLE spatial_ref_sys`
      await expect(checkDatabase(other.url, { refuseOthers: true })).resolves.toBeUndefined()
      // Another drizzle project's: drizzle's shared migrations table is no sign of ours; its own tables are counted.
      await sql`CREATE TABLE orders (id int)`
      await sql.end()
      // Before: dev mode added its tables and job queue to another project's database (a DATABASE_URL from its shell).
      const err = await checkDatabase(other.url, { refuseOthers: true }).then(
        () => null,
        (e: Error) => e,
      )
      expect(err?.name).toBe('ConfigError')
      expect(err?.message).toMatch(/^DATABASE_URL names a database \(127\.0\.0\.1:5432\/\w+\) that holds 1 table\(s\) and none of tx-broadcaster's; .*Unset DATABASE_URL/)
      // With a config file a DATABASE_URL is the operator's choice, as before.
      await expect(checkDatabase(other.url)).resolves.toBeUndefined()
      await expect(checkDatabase(ours.url, { refuseOthers: true })).resolves.toBeUndefined()
    } finally {
      await ours.conn.sql.end().catch(() => {})
      await ours.drop()
      await other.drop()
    }
  })
})
