import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { writeFileSync } from 'node:fs'
import { printSchema } from 'graphql'
import { createAuthenticator } from './api/auth.ts'
import { createApiLoadMonitor } from './api/apiLoad.ts'
import { startDbApiKeys } from './keys/dbApiKeys.ts'
import { requireApiKeys } from './keys/requireApiKeys.ts'
import { createInFlightLimiter } from './api/inFlightLimit.ts'
import { createRateLimiter } from './api/rateLimit.ts'
import { createReadiness } from './health/readiness.ts'
import { createMetrics, registerDatabaseGauges } from './metrics/metrics.ts'
import { pruneFinalTransactions, PRUNE_INTERVAL_MS } from './prune/pruneFinal.ts'
import { startWebhooks } from './webhooks/webhooks.ts'
import { createGraphQL } from './api/graphql/createYoga.ts'
import { buildSchema } from './api/graphql/schema.ts'
import { createHttpServer } from './api/server.ts'
import { attachGraphQLWs } from './api/graphqlWs.ts'
import { startTransactionUpdates } from './events/transactionUpdates.ts'
import { checkProviders } from './chain/checkProviders.ts'
import { createChainClients, type ChainClients } from './chain/createChainClients.ts'
import { verifyProviders } from './chain/verifyProviders.ts'
import type { FileConfig } from './config/schema.ts'
import type { ServiceContext } from './context.ts'
import { createDb } from './db/connect.ts'
import { migrateDatabase } from './db/migrate.ts'
import { createBoss, createQueues } from './jobs/queues.ts'
import type { Logger } from './common/logger.ts'
import { startRecoverySweep } from './recover/recoverySweep.ts'
import { bumpStalled } from './bump/bumpStalled.ts'
import { startLoop } from './common/startLoop.ts'
import { createNonceReconciler } from './reconcile/reconcileNonces.ts'
import { startSignWorker } from './sign/signWorker.ts'
import { loadSigners } from './signers/loadSigners.ts'
import { startChainWatcher } from './watch/watchChain.ts'

export type StartServiceOptions = {
  config: FileConfig
  databaseUrl: string
  port: number
  host: string
  log: Logger
  devMode?: boolean
}

export type RunningService = {
  url: string
  ctx: ServiceContext
  server: Server
  stop: () => Promise<void>
}

/** The composition root: builds every part once, starts the stages, serves HTTP. */
export async function startService(opts: StartServiceOptions): Promise<RunningService> {
  const { config, log } = opts
  const signers = await loadSigners(config.signers)
  const chains = new Map<number, ChainClients>(config.chains.map((c) => [c.chainId, createChainClients(c)]))
  // Each provider on its own: one serving another chain refuses the start, naming it.
  await Promise.all([...chains.values()].map((chain) => verifyProviders(chain, log)))

  const db = createDb(opts.databaseUrl)
  await migrateDatabase(opts.databaseUrl)
  // Keys made with `tx-broadcaster keys create`; with none anywhere (and auth on) outside dev mode, refuse to start.
  const dbKeys = await startDbApiKeys(db.sql, log)
  try {
    requireApiKeys(config, dbKeys.size(), opts.devMode ?? false)
  } catch (err) {
    await dbKeys.stop()
    await db.close()
    throw err
  }
  const boss = createBoss(opts.databaseUrl)
  boss.on('error', (err) => log.error({ error: (err as Error).message }, 'pg-boss error'))
  await boss.start()
  await createQueues(boss)

  const updates = await startTransactionUpdates(db.sql, log)
  let kick: (chainId: number, signer: string) => void = () => {}
  const ctx: ServiceContext = {
    config,
    devMode: opts.devMode ?? false,
    db,
    boss,
    log,
    chains,
    signers,
    updates,
    kickSigner: (chainId, signer) => kick(chainId, signer),
    metrics: createMetrics(),
    inFlight: createInFlightLimiter(db.sql, config.limits.maxInFlightPerKey),
    apiLoad: createApiLoadMonitor(),
  }
  registerDatabaseGauges(ctx.metrics!, db.sql, [...chains.keys()])
  const signWorker = await startSignWorker(ctx)
  kick = signWorker.kick
  const watchers = [...chains.values()].map((chain) => startChainWatcher(ctx, chain))
  const sweep = startRecoverySweep(ctx)
  const webhooks = await startWebhooks(ctx)
  const prune = startLoop('prune', PRUNE_INTERVAL_MS, () => pruneFinalTransactions(db.sql, { retentionDays: config.retentionDays, log }).then(() => {}), log)
  const chainLoops = [...chains.values()].flatMap((chain) => {
    const reconciler = createNonceReconciler(ctx, chain)
    const fees = chain.config.fees
    return [
      startLoop(`bump ${chain.chainId}`, Math.min(1_000, Math.max(100, Math.floor(fees.bumpAfterMs / 4))), () => bumpStalled(ctx, chain).then(() => {}), log),
      startLoop(`reconcile ${chain.chainId}`, Math.min(15_000, Math.max(1_000, chain.config.blockTimeMs)), () => reconciler.reconcile(), log),
      startLoop(`provider check ${chain.chainId}`, chain.config.rpc.checkIntervalMs, () => checkProviders(chain), log),
    ]
  })

  const schema = buildSchema()
  const auth = createAuthenticator(config.apiKeys, config.auth, dbKeys)
  const yoga = createGraphQL(ctx, schema)
  const readiness = createReadiness(db.sql, [...chains.values()], log)
  const rateLimiter = createRateLimiter(config.limits)
  const server = createHttpServer(ctx, { auth, yoga, rateLimiter, readiness })
  const graphqlWs = attachGraphQLWs(server, yoga, auth, rateLimiter)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  const host = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host
  const url = `http://${host}:${port}`

  let stopping: Promise<void> | null = null
  return {
    url,
    ctx,
    server,
    stop: () =>
      (stopping ??= (async () => {
        // Stop taking requests first, then let the stages finish what they hold.
        await graphqlWs.close()
        await new Promise<void>((resolve) => {
          server.close(() => resolve())
          server.closeAllConnections()
        })
        await sweep.stop()
        await prune.stop()
        await webhooks.stop()
        readiness.stop()
        ctx.apiLoad?.stop()
        await Promise.all(chainLoops.map((l) => l.stop()))
        await Promise.all(watchers.map((w) => w.stop()))
        await signWorker.stop()
        await updates.stop()
        await boss.stop({ graceful: true, timeout: 10_000, wait: true })
        await dbKeys.stop()
        await db.close()
      })()),
  }
}

/** schema.graphql is generated from the Pothos code and checked in; a test fails when they differ. */
export function writeSchemaFile(path: string): void {
  writeFileSync(path, `${printSchema(buildSchema())}\n`)
}
