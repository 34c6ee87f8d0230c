import '../common/productionMode.ts'
import { createLogger } from '../common/logger.ts'
import type { ServiceContext } from '../context.ts'
import { createMetrics } from '../metrics/metrics.ts'
import { createRemoteApiLoad } from '../api/apiLoad.ts'
import type { FromPipeline, ToPipeline } from './pipelineProcess.ts'
import { openServiceParts, startBoss, startStages, type Stages } from './startStages.ts'

/**
 * Entry point of the pipeline process (pipelineProcess.ts forks it): runs the stages for the API's
 * process, which sends the configuration, kicks after each accept, metrics requests and the stop.
 */
const send = (m: FromPipeline) => process.send?.(m)

let stopping: Promise<void> | null = null
let stopAll: () => Promise<void> = async () => {}
const stopAndExit = (code: number) => {
  stopping ??= stopAll().then(
    () => process.exit(code),
    () => process.exit(1),
  )
}

// The API's process coordinates shutdown: a Ctrl-C reaches the whole process group, and this process
// stops when the parent tells it to (or when the parent is gone, below).
for (const signal of ['SIGINT', 'SIGHUP'] as const) process.on(signal, () => {})
process.on('SIGTERM', () => stopAndExit(0))
// The parent died (even by kill -9): stop too, so no pipeline runs without its API.
process.on('disconnect', () => stopAndExit(0))

process.on('message', (m: ToPipeline) => {
  if (m.type === 'start') void start(m)
  else if (m.type === 'kick') kick(m.chainId, m.signer)
  else if (m.type === 'metrics') void metrics().then((list) => send({ type: 'metrics', id: m.id, metrics: list }))
  else if (m.type === 'apiBusy') apiLoad.setBusy(m.busy)
  else if (m.type === 'stop') stopAndExit(0)
})

let kick: Stages['kick'] = () => {}
const apiLoad = createRemoteApiLoad()
let metrics: () => Promise<unknown[]> = async () => []

async function start(m: Extract<ToPipeline, { type: 'start' }>): Promise<void> {
  const log = createLogger({ level: m.logLevel, pretty: false }).child({ process: 'pipeline' })
  try {
    const { signers, chains, db } = await openServiceParts({ config: m.config, databaseUrl: m.databaseUrl, log, migrate: false })
    const boss = await startBoss(m.databaseUrl, log)
    const ctx: ServiceContext = {
      config: m.config,
      devMode: m.devMode,
      db,
      boss,
      log,
      chains,
      signers,
      // Subscriptions are served by the API's process; no stage reads the change feed.
      updates: { subscribe: () => () => {}, stop: async () => {} },
      kickSigner: (chainId, signer) => kick(chainId, signer),
      metrics: createMetrics(),
      apiLoad,
    }
    const stages = await startStages(ctx, { providerChecks: true })
    kick = stages.kick
    metrics = () => ctx.metrics!.registry.getMetricsAsJSON()
    stopAll = async () => {
      await stages.stop()
      await boss.stop({ graceful: true, timeout: 10_000, wait: true })
      await db.close()
    }
    send({ type: 'ready' })
  } catch (err) {
    log.error({ err }, 'pipeline process failed to start')
    // Exit once the message is on its way, so the parent reports why rather than only the exit code.
    const failed: FromPipeline = { type: 'failed', message: (err as Error)?.message ?? String(err) }
    if (process.send) process.send(failed, () => process.exit(1))
    else process.exit(1)
  }
}
