import { join } from 'node:path'
import { ConfigError, loadOptions } from './config/loadConfig.ts'
import { createLogger } from './common/logger.ts'
import { devApiKey, devConfig } from './dev/devConfig.ts'
import { startAnvil, type Anvil } from './dev/startAnvil.ts'
import { startEmbeddedPostgres, type EmbeddedDb } from './dev/startEmbeddedPostgres.ts'
import { startService, type RunningService } from './service.ts'

/** `npm start`: with a config file, the service; without one, dev mode (embedded Postgres + local anvil). */
async function main(): Promise<void> {
  const options = loadOptions()
  const log = createLogger({ level: options.logLevel, pretty: options.devMode && process.stdout.isTTY })
  const cleanups: Array<() => Promise<void>> = []
  let service: RunningService | null = null
  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) {
      log.warn(`${signal} again: exiting now`)
      process.exit(1)
    }
    stopping = true
    log.info(`${signal}: shutting down (send again to exit at once)`)
    try {
      await service?.stop()
      for (const c of cleanups.reverse()) await c()
    } finally {
      process.exit(0)
    }
  }
  process.on('SIGINT', () => void shutdown('SIGINT'))
  process.on('SIGTERM', () => void shutdown('SIGTERM'))

  let databaseUrl = options.databaseUrl
  if (!databaseUrl) {
    log.info(`starting embedded Postgres under ${options.dataDir}`)
    const pg: EmbeddedDb = await startEmbeddedPostgres(options.dataDir, (m) => log.info(m))
    cleanups.push(pg.stop)
    databaseUrl = pg.databaseUrl
  }
  let config = options.file
  let anvil: Anvil | null = null
  let apiKey: string | null = null
  if (!config) {
    anvil = await startAnvil({
      port: 8545,
      blockTimeSec: 1,
      // Keep the dev chain's state next to the database, so a restart finds the transactions it stored.
      extraArgs: ['--state', join(options.dataDir, 'anvil-state.json'), '--state-interval', '1'],
    }).catch(() =>
      startAnvil({ blockTimeSec: 1, extraArgs: ['--state', join(options.dataDir, 'anvil-state.json'), '--state-interval', '1'] }),
    )
    cleanups.push(anvil.stop)
    apiKey = devApiKey(options.dataDir)
    config = devConfig(anvil.url, apiKey)
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
    ...(apiKey ? [`  API key    ${apiKey}   (admin; send as "Authorization: Bearer <key>")`] : []),
    '',
  ]
  process.stdout.write(lines.join('\n') + '\n')
}

main().catch((err) => {
  if (err instanceof ConfigError) process.stderr.write(`tx-broadcaster: ${err.message}\n`)
  else process.stderr.write(`tx-broadcaster: failed to start: ${(err as Error)?.stack ?? err}\n`)
  process.exit(1)
})
