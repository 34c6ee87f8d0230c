import '../common/productionMode.ts'
import { countsCommand, COUNTS_HELP } from './countsCommand.ts'
import { keysCommand, KEYS_HELP } from './keysCommand.ts'
import { webhooksCommand, WEBHOOKS_HELP } from './webhooksCommand.ts'

const HELP = `tx-broadcaster: accepts EVM transaction requests and makes sure they end up in a block.

Usage:
  tx-broadcaster [--config path/to/config.json]   start the service (no config: dev mode)
  tx-broadcaster keys <create|revoke|list> ...     manage API keys stored in Postgres (DATABASE_URL; dev mode's own without it)
  tx-broadcaster counts rebuild                    recount the dashboard's per-status counters (DATABASE_URL; dev mode's own without it)
  tx-broadcaster webhooks replay ...               deliver a webhook's status changes again (DATABASE_URL; dev mode's own without it)

Environment: BROADCASTER_CONFIG, DATABASE_URL, PORT (4000), HOST, BROADCASTER_DATA_DIR (./.data), LOG_LEVEL.

${KEYS_HELP}
${COUNTS_HELP}
${WEBHOOKS_HELP}`

/** The `tx-broadcaster` command (bin/tx-broadcaster.js): subcommands here, otherwise the service. */
async function cli(argv: string[]): Promise<void> {
  const [first, ...rest] = argv
  if (first === 'keys') {
    const code = await keysCommand(rest, { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), env: process.env })
    process.exitCode = code
    return
  }
  if (first === 'counts') {
    process.exitCode = await countsCommand(rest, { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), env: process.env })
    return
  }
  if (first === 'webhooks') {
    process.exitCode = await webhooksCommand(rest, { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), env: process.env })
    return
  }
  if (first === 'help' || first === '--help' || first === '-h') {
    process.stdout.write(HELP)
    return
  }
  // The service reads its own arguments from process.argv (see config/loadConfig.ts).
  await import('../main.ts')
}

await cli(process.argv.slice(2))
