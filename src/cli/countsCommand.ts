import { rebuildStatusCounts } from '../store/rebuildStatusCounts.ts'
import type { CliIo } from './keysCommand.ts'
import { withServiceDatabase } from './withServiceDatabase.ts'

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
  if (sub === 'rebuild' && rest.length === 1 && (rest[0] === '--help' || rest[0] === '-h')) {
    io.out(COUNTS_HELP)
    return 0
  }
  if (sub !== 'rebuild' || rest.length > 0) {
    io.err(`tx-broadcaster counts: unknown command "${[sub, ...rest].join(' ')}"\n\n${COUNTS_HELP}`)
    return 2
  }
  return withServiceDatabase(io, 'tx-broadcaster counts', 'tx-broadcaster counts rebuild', { migrateNew: false }, async (sql) => {
    const n = await rebuildStatusCounts(sql)
    io.out(`counted ${n} transactions; the dashboard's counts are rebuilt\n`)
  })
}
