import './common/productionMode.ts'
import { createPublicClient, http } from 'viem'
import { ConfigError, loadOptions } from './config/loadConfig.ts'
import { createLogger } from './common/logger.ts'
import { checkDatabase, describeDatabase } from './db/checkDatabase.ts'
import { checkListen } from './api/checkListen.ts'
import { claimDataDir } from './dev/claimDataDir.ts'
import { checkDevChain } from './dev/checkDevChain.ts'
import { withTimeout } from './common/withTimeout.ts'
import { devApiKey, devConfig } from './dev/devConfig.ts'
import { startDevAnvil } from './dev/devAnvil.ts'
import type { Anvil } from './dev/startAnvil.ts'
import { startEmbeddedPostgres, type EmbeddedDb } from './dev/startEmbeddedPostgres.ts'
import { startService, type RunningService } from './service.ts'

/**
 * service.stop() drains the API (5 s), stops the stages (their runs in hand waited for 4 s; a separate pipeline
 * process up to 9 s) and pg-boss (4 s), then closes the database; past this, shut down the rest anyway. README:
 * "about 20 s at most in all".
 */
const SERVICE_STOP_TIMEOUT_MS = 20_000
const CHILD_STOP_TIMEOUT_MS = 15_000
const SHUTDOWN_DEADLINE_MS = 40_000
/** The same signal again within this long is the same Ctrl-C delivered twice (see shutdown), not a second one. */
const REPEAT_SIGNAL_MS = 1_000


/** `npm start`: with a config file, the service; without one, dev mode (embedded Postgres + local anvil). */
async function main(): Promise<void> {
  if (process.argv.slice(2).some((a) => a === '--help' || a === '-h')) {
    // `npm start -- --help` comes here, not to the CLI's help: it was refused as an unknown argument.
    process.stdout.write(
      'Usage: npm start [-- --config path/to/config.json]   (no config: dev mode, embedded Postgres and a local anvil)\n' +
        'Environment: BROADCASTER_CONFIG, DATABASE_URL, PORT (4000), HOST, BROADCASTER_DATA_DIR (./.data), LOG_LEVEL (info).\n' +
        'The configuration is described in README.md; API keys: tx-broadcaster keys --help.\n',
    )
    return
  }
  const options = loadOptions()
  const log = createLogger({ level: options.logLevel, pretty: options.devMode && process.stdout.isTTY })
  const cleanups: Array<{ name: string; run: () => Promise<void> }> = []
  let service: RunningService | null = null
  let embeddedDb: EmbeddedDb | null = null
  let stopping: { signal: string; at: number } | null = null
  const shutdown = async (signal: string) => {
    if (stopping) {
      // One Ctrl-C under `npm start` arrives twice at once: from the terminal (the process group) and from npm,
      // which forwards it. Only a second one the user sent counts.
      if (signal === stopping.signal && Date.now() - stopping.at < REPEAT_SIGNAL_MS) return
      log.warn(`${signal} again: exiting now`)
      process.exit(1)
    }
    stopping = { signal, at: Date.now() }
    log.info(`${signal}: shutting down (send again to exit at once)`)
    // Closing clients whose server already went away (postgres or anvil killed first) can throw from a
    // library's timer; that must not cut the shutdown short before the remaining steps ran.
    const stray = (err: unknown) => log.warn({ err }, 'error while shutting down (ignored)')
    process.on('uncaughtException', stray)
    process.on('unhandledRejection', stray)
    // Whatever happens below, do not linger: the dev children are also stopped by their 'exit' hooks.
    setTimeout(() => {
      log.error('shutdown took too long: exiting now')
      process.exit(1)
    }, SHUTDOWN_DEADLINE_MS).unref()
    let code = 0
    const step = async (name: string, run: () => Promise<void>, ms: number) => {
      try {
        await withTimeout(run(), ms, name)
      } catch (err) {
        log.error({ err }, `shutdown: ${name} failed`)
        code = 1
      }
    }
    // The service first (it still needs the database and the chain), then the dev children, newest first.
    // A Ctrl-C may have reached the children too; each stop returns at once when its process is gone.
    // Without its database the service cannot drain cleanly (and its clients keep retrying): do not wait long.
    if (service) await step('service.stop()', service.stop, embeddedDb && !embeddedDb.running() ? 3_000 : SERVICE_STOP_TIMEOUT_MS)
    for (const c of cleanups.reverse()) await step(c.name, c.run, CHILD_STOP_TIMEOUT_MS)
    log.info(code === 0 ? 'stopped' : 'stopped, with errors')
    process.exit(code)
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void shutdown(signal))

  let databaseUrl = options.databaseUrl
  // First: a port in use or a wrong DATABASE_URL is one line naming it, not a stack trace after the signers and
  // providers were checked and the stages started.
  await checkListen(options.port, options.host)
  if (databaseUrl) await checkDatabase(databaseUrl, { refuseOthers: !options.file })
  // Dev mode's children (and an embedded Postgres) live in the data dir: one service at a time there.
  if (!databaseUrl || !options.file) claimDataDir(options.dataDir)
  if (!databaseUrl) {
    log.info(`starting embedded Postgres under ${options.dataDir}`)
    embeddedDb = await startEmbeddedPostgres(options.dataDir, (m) => log.info(m))
    cleanups.push({ name: 'embedded postgres stop', run: embeddedDb.stop })
    databaseUrl = embeddedDb.databaseUrl
  }
  let config = options.file
  let anvil: Anvil | null = null
  let apiKey: string | null = null
  if (!config) {
    // 8545 or a free port; state and pid under the data dir (a leftover anvil from a killed run is stopped).
    anvil = await startDevAnvil(options.dataDir, (m) => log.info(m))
    cleanups.push({ name: 'anvil stop', run: anvil.stop })
    apiKey = devApiKey(options.dataDir)
    config = devConfig(anvil.url, apiKey)
    await checkDevChain(databaseUrl, anvil.chainId, await createPublicClient({ transport: http(anvil.url) }).getBlockNumber(), options.dataDir, { embedded: embeddedDb !== null })
  }
  service = await startService({ config, databaseUrl, port: options.port, host: options.host, log, devMode: options.devMode })
  const lines = [
    '',
    '  tx-broadcaster is running' + (options.devMode ? ' (dev mode)' : ''),
    '',
    `  GraphQL    ${service.url}/graphql`,
    `  REST       ${service.url}/broadcast_transaction`,
    `  Dashboard  ${service.url}/`,
    ...config.chains.map((c) => `  Chain      ${c.name} (${c.chainId})${anvil && c.chainId === anvil.chainId ? ` at ${anvil.url}` : ''}`),
    // Which database: dev mode with a DATABASE_URL inherited from another project's shell migrated that one, unsaid.
    `  Database   ${embeddedDb ? `embedded Postgres under ${options.dataDir}` : describeDatabase(databaseUrl)}`,
    ...(apiKey ? [`  API key    ${apiKey}   (admin; send as "Authorization: Bearer <key>")`] : []),
    '',
  ]
  process.stdout.write(lines.join('\n') + '\n')
}

main().catch((err) => {
  // A configuration the chain or the keys contradict is the operator's to fix: its message says what, a stack would bury it.
  const stated = err instanceof ConfigError || ['ProviderChainMismatchError', 'FeeModelMismatchError', 'SignerLoadError', 'NoApiKeysError'].includes((err as Error)?.name)
  if (stated) process.stderr.write(`tx-broadcaster: ${(err as Error).message}\n`)
  else process.stderr.write(`tx-broadcaster: failed to start: ${(err as Error)?.stack ?? err}\n`)
  process.exit(1)
})
