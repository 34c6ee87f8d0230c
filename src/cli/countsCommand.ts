import { estimatedTransactions, REBUILD_CONFIRM_ROWS, rebuildStatusCounts } from '../store/rebuildStatusCounts.ts'
import type { CliIo } from './keysCommand.ts'
import { withServiceDatabase } from './withServiceDatabase.ts'

export const COUNTS_HELP = `Usage:
  tx-broadcaster counts rebuild [--yes]
      Recounts the per-status counters behind the dashboard's counts (transactionCounts) from the
      transactions table. Needed only if the counting triggers were bypassed (disabled triggers,
      session_replication_role = replica, a data-only restore). Writes to transactions (new requests
      too) wait while it counts: about a second per million rows; over a million, it asks for --yes.
      It gives up, changing nothing, if another write holds the table for 2 s. Needs DATABASE_URL.
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
  const yes = rest.length === 1 && rest[0] === '--yes'
  if (sub !== 'rebuild' || (rest.length > 0 && !yes)) {
    io.err(`tx-broadcaster counts: unknown command "${[sub, ...rest].join(' ')}"\n\n${COUNTS_HELP}`)
    return 2
  }
  return withServiceDatabase(io, 'tx-broadcaster counts', 'tx-broadcaster counts rebuild', { migrateNew: false }, async (sql) => {
    const estimate = await estimatedTransactions(sql)
    if (estimate > REBUILD_CONFIRM_ROWS && !yes)
      throw new Error(
        `about ${estimate.toLocaleString('en-US')} transactions to count; writes to them, new requests too, wait about ` +
          `${Math.ceil(estimate / 1_000_000)} s meanwhile. Nothing was changed: run it again with --yes to go ahead`,
      )
    const n = await rebuildStatusCounts(sql)
    io.out(`counted ${n} transactions; the dashboard's counts are rebuilt\n`)
  })
}
