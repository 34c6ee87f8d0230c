import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { writeFileSync } from 'node:fs'
import { printSchema } from 'graphql'
import { createAuthenticator } from './api/auth.ts'
import { createCorsPolicy } from './api/cors.ts'
import { createApiLoadMonitor } from './api/apiLoad.ts'
import { revokedNamesAmong } from './keys/apiKeyStore.ts'
import { startDbApiKeys } from './keys/dbApiKeys.ts'
import { requireApiKeys } from './keys/requireApiKeys.ts'
import { createInFlightLimiter } from './api/inFlightLimit.ts'
import { createRateLimiter } from './api/rateLimit.ts'
import { createReadiness } from './health/readiness.ts'
import { createMetrics, registerBalanceGauge, registerDatabaseGauges, registerPipelineGauges, registerProviderGauge } from './metrics/metrics.ts'
import { createGraphQL } from './api/graphql/createYoga.ts'
import { buildSchema } from './api/graphql/schema.ts'
import { createHttpServer } from './api/server.ts'
import { attachGraphQLWs } from './api/graphqlWs.ts'
import { startTransactionUpdates } from './events/transactionUpdates.ts'
import { webhookName, type FileConfig } from './config/schema.ts'
import type { ServiceContext } from './context.ts'
import type { Logger } from './common/logger.ts'
import { explainListenError } from './api/checkListen.ts'
import { ANVIL_DEV_ACCOUNTS } from './dev/startAnvil.ts'
import { startPipelineProcess, type MetricsJson, type PipelineStatus } from './pipeline/pipelineProcess.ts'
import { openServiceParts, startBoss, startProviderChecks, startStages, type Stages } from './pipeline/startStages.ts'

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
  const separate = config.pipeline.process === 'separate'
  const { signers, chains, db } = await openServiceParts({ config, databaseUrl: opts.databaseUrl, log, migrate: true })
  // Keys made with `tx-broadcaster keys create`; with none anywhere (and auth on) outside dev mode, refuse to start.
  const dbKeys = await startDbApiKeys(db.sql, log)
  // Refused at each use (api/auth.ts); said at start too, so an upgrade that starts refusing a key is not a mystery.
  const clashes = dbKeys.names().filter((name) => config.apiKeys.some((k) => k.name === name))
  if (clashes.length && config.auth === 'enabled')
    log.warn({ keys: clashes }, 'API keys in the database share a name with a key in the config file and are refused until revoked (tx-broadcaster keys revoke --name <name>)')
  // A revoked key's name stays taken in the database, not in the config: a config key given it shares what the name
  // keys (idempotency keys: a resend of the old key's request gets its transaction; the timeline's actor; in-flight counts).
  const reused = await revokedNamesAmong(db.sql, config.apiKeys.map((k) => k.name)).catch(() => [])
  if (reused.length)
    log.warn(
      { keys: reused },
      "API keys in the config file have the names of revoked database keys: they share those keys' idempotency keys, timeline and in-flight counts; give them new names",
    )
  try {
    requireApiKeys(config, dbKeys.size(), opts.devMode ?? false)
  } catch (err) {
    await dbKeys.stop()
    await db.close()
    throw err
  }
  warnOfUnsafeSetup(opts, chains, signers)
  const boss = await startBoss(opts.databaseUrl, log)

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
    metrics: createMetrics(separate ? { process: 'api' } : {}),
    inFlight: createInFlightLimiter(db.sql, config.limits.maxInFlightPerKey),
    // The sign stage gives way to a saturated API (core/apiFirst.ts), in this process or in the pipeline process.
    apiLoad: createApiLoadMonitor(),
  }
  registerDatabaseGauges(
    ctx.metrics!,
    db.sql,
    [...chains.keys()],
    config.webhooks.map(webhookName),
    new Set([...chains.keys()].flatMap((id) => signers.forChain(id).map((s) => `${id}:${s.address}`))),
  )
  registerProviderGauge(ctx.metrics!, [...chains.values()])
  registerBalanceGauge(ctx.metrics!, [...chains.values()], (chainId) => signers.forChain(chainId).map((s) => s.address))
  let stages: Stages
  let pipelineMetrics: (() => Promise<MetricsJson>) | undefined
  let pipelineStatus: (() => PipelineStatus) | undefined
  try {
    if (separate) {
      const child = await startPipelineProcess({ config, databaseUrl: opts.databaseUrl, log, devMode: ctx.devMode, apiLoad: ctx.apiLoad! })
      pipelineMetrics = child.metrics
      pipelineStatus = child.status
      registerPipelineGauges(ctx.metrics!, child.status)
      stages = child
    } else stages = await startStages(ctx, { providerChecks: false })
  } catch (err) {
    await Promise.allSettled([boss.stop({ graceful: false }), updates.stop(), dbKeys.stop()])
    await db.close()
    throw err
  }
  kick = stages.kick
  // Provider health is the API's to show (the providers query, txb_provider_status), so its process checks them in either mode.
  const providerChecks = [...chains.values()].map((chain) => startProviderChecks(chain, log))

  const schema = buildSchema()
  const auth = createAuthenticator(config.apiKeys, config.auth, dbKeys)
  const yoga = createGraphQL(ctx, schema)
  // On the lock pool, not the work pool: with every work connection busy (a burst, sign batches waiting on a slow
  // remote signer) its check waited in line past its 1 s and said the database was down, and every instance left
  // the load balancer at once while Postgres was fine.
  const readiness = createReadiness(db.locks, [...chains.values()], log, pipelineStatus)
  const rateLimiter = createRateLimiter(config.limits)
  const cors = createCorsPolicy(config.apiKeys, ctx.devMode, { authDisabled: config.auth === 'disabled', allowedHosts: config.allowedHosts })
  const server = createHttpServer(ctx, { auth, yoga, rateLimiter, readiness, pipelineMetrics, cors })
  const graphqlWs = attachGraphQLWs(server, yoga, auth, rateLimiter, cors, config.limits.maxWebSocketsPerKey)
  let stopping: Promise<void> | null = null
  const stop = () =>
    (stopping ??= (async () => {
      // Stop taking requests first, then let the stages finish what they hold.
      // Together: the listener closes at once, and both answer what they are in the middle of for up to 5 s.
      await Promise.all([graphqlWs.close(HTTP_DRAIN_MS), closeHttpServer(server, HTTP_DRAIN_MS)])
      // Together: one after the other, each loop's wait for its run in hand added up past main.ts's limit.
      await Promise.all([stages.stop(), ...providerChecks.map((l) => l.stop())])
      readiness.stop()
      ctx.apiLoad?.stop()
      await updates.stop()
      // The sign jobs' drains have stopped with the stages: little is left to wait for. 5 s of draining, 4 s at most
      // for the loops (common/startLoop.ts; a separate pipeline process 9 s), 4 s here: within main.ts's 20 s.
      await boss.stop({ graceful: true, timeout: 4_000, wait: true })
      await dbKeys.stop()
      await db.close()
    })())
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(opts.port, opts.host, () => resolve())
    })
  } catch (err) {
    // Everything started is stopped again (the stages were signing), and the error says which setting to change.
    await stop().catch(() => {})
    throw explainListenError(err, opts.port, opts.host)
  }
  const { port } = server.address() as AddressInfo
  const host = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host
  // An IPv6 address in a URL is bracketed: the banner printed http://::1:4000, which no client takes.
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`

  return { url, ctx, server, stop }
}

/**
 * Set-ups that start fine and are almost certainly a mistake outside a laptop, said once at start: no auth on an
 * address others can reach, and a signer whose key is one of anvil's well-known dev keys on a real chain (anyone
 * can spend what is sent to it).
 */
function warnOfUnsafeSetup(opts: StartServiceOptions, chains: Map<number, unknown>, signers: { forChain: (chainId: number) => { address: string; name: string }[] }): void {
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(opts.host)
  if (opts.config.auth === 'disabled' && !loopback)
    opts.log.warn(
      { host: opts.host },
      'auth is "disabled" and the API listens beyond this machine: anyone who can reach it can submit, retry and cancel ' +
        '(it answers only at IP addresses, localhost and the names in "allowedHosts")',
    )
  const devKeys = new Set(ANVIL_DEV_ACCOUNTS.map((a) => a.address.toLowerCase()))
  for (const chainId of chains.keys()) {
    if (chainId === 31337 || chainId === 1337) continue
    const exposed = signers.forChain(chainId).filter((s) => devKeys.has(s.address.toLowerCase()))
    if (exposed.length)
      opts.log.warn(
        { chainId, signers: exposed.map((s) => s.name) },
        `signers use a well-known anvil/hardhat dev key on chain ${chainId}: its private key is public, and anything sent to it can be taken by anyone`,
      )
  }
}

/** How long a stopping service keeps answering the requests it is in the middle of. */
const HTTP_DRAIN_MS = 5_000

/**
 * Stops taking connections, and lets the requests already in progress get their answers: a request whose row
 * was committed must hear so (cutting it off made clients without an idempotency key send it again). Idle
 * keep-alive connections are closed, answers carry "Connection: close" so clients do not send more on them,
 * and what is still open at the deadline is cut.
 */
export async function closeHttpServer(server: Server, drainMs: number): Promise<void> {
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => res.setHeader('connection', 'close'))
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  const idle = setInterval(() => server.closeIdleConnections(), 50)
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)))
  server.closeIdleConnections()
  await Promise.race([closed, deadline])
  clearInterval(idle)
  clearTimeout(timer)
  server.closeAllConnections()
  await closed
}

/** schema.graphql is generated from the Pothos code and checked in; a test fails when they differ. */
export function writeSchemaFile(path: string): void {
  writeFileSync(path, `${printSchema(buildSchema())}\n`)
}
