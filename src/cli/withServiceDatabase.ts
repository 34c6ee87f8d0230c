import { EMBEDDED_DATABASE } from '../config/loadConfig.ts'
import { createDb, type Db, type Sql } from '../db/connect.ts'
import { isDatabaseUnavailable } from '../db/databaseUnavailable.ts'
import { migrateDatabase, migrationsApplied } from '../db/migrate.ts'
import { embeddedDatabaseUrl } from '../dev/embeddedDatabaseUrl.ts'
import type { CliIo } from './keysCommand.ts'

/**
 * What every database subcommand does around its work: needs DATABASE_URL, or dev mode's embedded Postgres under
 * BROADCASTER_DATA_DIR when it names none (exit 2 without either), migrates a new
 * database when `migrateNew` (keys: the tables may not exist before the service's first start) and else refuses
 * it (exit 1: a mistyped DATABASE_URL got the service's tables, and "counted 0 transactions"), refuses one an
 * older version of the service runs (exit 1), runs `work` on one
 * connection and closes it. Returns the exit code: 0, or 1 with the error printed after `label`, the URL
 * never echoed (it may carry a password).
 */
export async function withServiceDatabase(
  io: CliIo,
  command: string,
  label: string,
  opts: { migrateNew: boolean },
  work: (sql: Sql, databaseUrl: string) => Promise<void>,
): Promise<number> {
  const given = io.env.DATABASE_URL
  const dataDir = io.env.BROADCASTER_DATA_DIR ?? '.data'
  // None named (dev mode), or the service's own embedded one: the one dev mode runs under the data directory.
  // Not with a config file (BROADCASTER_CONFIG): there a missing DATABASE_URL is a mistake, and an old .data left in
  // the working directory would take the command (an admin key made in a dev database, exit 0).
  const embedded = (!given || given === EMBEDDED_DATABASE) && !io.env.BROADCASTER_CONFIG ? embeddedDatabaseUrl(dataDir) : null
  const databaseUrl = embedded ?? given
  if (!databaseUrl || databaseUrl === EMBEDDED_DATABASE) {
    const why = databaseUrl ? ` (DATABASE_URL=${EMBEDDED_DATABASE} is the service's own, and none was ever started under ${dataDir})` : ` (no dev mode database under ${dataDir} either)`
    io.err(`${command}: set DATABASE_URL to the service's Postgres (e.g. postgres://user@host:5432/db)${why}\n`)
    return 2
  }
  // Said, so a command that took it unasked is seen to (it exits 0 like one that used DATABASE_URL).
  if (embedded) io.err(`${command}: DATABASE_URL is not set: using dev mode's embedded Postgres under ${dataDir}\n`)
  // Inside the try: a URL postgres.js cannot parse threw past it, and Node printed the error with the URL, password and all.
  let db: Db | undefined
  try {
    db = createDb(databaseUrl, { max: 1 })
    // A new database is migrated (keys may be made before the service's first start). One that an older version
    // of the service runs is not: this command would change its schema under the running instances, unasked.
    const { applied, known } = await migrationsApplied(databaseUrl)
    if (applied > 0 && applied < known) {
      io.err(
        `${label}: the database has ${applied} of this version's ${known} migrations: it belongs to an older version of the service. ` +
          'Start this version of the service to migrate it (the CLI does not change a running service\'s schema), or use the CLI of the version it runs.\n',
      )
      return 1
    }
    if (applied === 0 && !opts.migrateNew) {
      io.err(`${label}: the database has none of the service's tables: is DATABASE_URL the database the service runs with?\n`)
      return 1
    }
    if (applied === 0) await migrateDatabase(databaseUrl)
    await work(db.sql, databaseUrl)
    return 0
  } catch (err) {
    if (embedded !== null && isDatabaseUnavailable(err)) {
      io.err(`${label}: dev mode's embedded Postgres (under ${dataDir}) is not running: start the service (npm start), then run this again; or set DATABASE_URL\n`)
      return 1
    }
    io.err(`${label}: ${(err as Error).message.split(databaseUrl).join('<DATABASE_URL>')}\n`)
    return 1
  } finally {
    await db?.close()
  }
}
