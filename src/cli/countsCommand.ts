import { createDb } from '../db/connect.ts'
import { migrateDatabase } from '../db/migrate.ts'
import { rebuildStatusCounts } from '../store/rebuildStatusCounts.ts'
import type { CliIo } from './keysCommand.ts'

export const COUNTS_HELP = `Usage:
  tx-broadcaster counts rebuild
      Recounts the per-status counters behind the dashboard's counts (transactionCounts) from the
      transactions table. Needed only if the counting triggers were bypassed (disabled triggers,
      session_replication_role = replica, a data-only restore). Writes to transactions wait while it
      counts: about a second per million rows. Needs DATABASE_URL.
`

/** `tx-broadcaster counts ...`; returns the exit code. */
export async function countsCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args
  if (!sub || sub === 'help' || sub === '--help' || sub === '-h') {
    io.out(COUNTS_HELP)
    return sub ? 0 : 2
  }
  if (sub !== 'rebuild' || rest.length > 0) {
    io.err(`tx-broadcaster counts: unknown command "${[sub, ...rest].join(' ')}"\n\n${COUNTS_HELP}`)
    return 2
  }
  const databaseUrl = io.env.DATABASE_URL
  if (!databaseUrl) {
    io.err("tx-broadcaster counts: set DATABASE_URL to the service's Postgres (e.g. postgres://user@host:5432/db)\n")
    return 2
  }
  const db = createDb(databaseUrl, { max: 1 })
  try {
    await migrateDatabase(databaseUrl)
    const n = await rebuildStatusCounts(db.sql)
    io.out(`counted ${n} transactions; the dashboard's counts are rebuilt\n`)
    return 0
  } catch (err) {
    io.err(`tx-broadcaster counts rebuild: ${(err as Error).message}\n`)
    return 1
  } finally {
    await db.close()
  }
}
