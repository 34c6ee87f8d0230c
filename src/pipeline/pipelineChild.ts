import '../common/productionMode.ts'
import { createLogger } from '../common/logger.ts'
import type { ServiceContext } from '../context.ts'
import { createMetrics } from '../metrics/metrics.ts'
import { createRemoteApiLoad } from '../api/apiLoad.ts'
import { CHILD_STOP_DEADLINE_MS, HEARTBEAT_MS, type FromPipeline, type MetricsJson, type ToPipeline } from './pipelineProcess.ts'
import { openServiceParts, startBoss, startStages, type Stages } from './startStages.ts'
import { readBuildId } from './buildId.ts'

/**
 * Entry point of the pipeline process (pipelineProcess.ts forks it): runs the stages for the API's
 * process, which sends the configuration, kicks after each accept, metrics requests and the stop.
 */
/** To a parent that is gone the message is lost, which is fine: this process is stopping then (below). */
const send = (m: FromPipeline, then?: () => void) => {
  if (!process.connected || !process.send) return then?.()
  process.send(m, () => then?.())
}

let stopping: Promise<void> | null = null
let stopAll: () => Promise<void> = async () => {}
const stopAndExit = (code: number) => {
  // Within the parent's wait (it kills this process after STOP_TIMEOUT_MS), and also when no parent waits any more.
  setTimeout(() => process.exit(1), CHILD_STOP_DEADLINE_MS).unref()
  stopping ??= stopAll().then(
    () => process.exit(code),
    () => process.exit(1),
  )
}

// The API's process coordinates shutdown: a Ctrl-C, or a SIGTERM to the whole process group (systemd's
// default), reaches this process too; it stops when the parent says so, or when the parent is gone (below).
for (const signal of ['SIGINT', 'SIGHUP', 'SIGTERM'] as const) process.on(signal, () => {})
// The parent died (even by kill -9): stop too, so no pipeline runs without its API.
process.on('disconnect', () => stopAndExit(0))

process.on('message', (m: ToPipeline) => {
  if (m.type === 'start') void start(m)
  else if (m.type === 'kick') kick(m.chainId, m.signer)
  else if (m.type === 'metrics') void metrics().then((list) => send({ type: 'metrics', id: m.id, metrics: list }))
  else if (m.type === 'apiBusy') apiLoad.setBusy(m.busy)
  else if (m.type === 'stop') stopAndExit(0)
})

/** The build this process was loaded from (buildId.ts), read before anything else could replace dist/. */
const OWN_BUILD_ID = readBuildId()
let kick: Stages['kick'] = () => {}
const apiLoad = createRemoteApiLoad()
let metrics: () => Promise<MetricsJson> = async () => []

async function start(m: Extract<ToPipeline, { type: 'start' }>): Promise<void> {
  const log = createLogger({ level: m.logLevel, pretty: false }).child({ process: 'pipeline' })
  if (m.buildId !== OWN_BUILD_ID) {
    const message = `dist/ was rebuilt since the service started (${m.buildId ?? 'sources'} then, ${OWN_BUILD_ID ?? 'sources'} now): restart the service to run the new build`
    log.error(message)
    // And exits, as after any failed start: alive, it waited for the parent's end while the parent forked another.
    send({ type: 'failed', message }, () => process.exit(1))
    return
  }
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
      updates: { subscribe: () => () => {}, current: async () => null, stop: async () => {} },
      kickSigner: (chainId, signer) => kick(chainId, signer),
      metrics: createMetrics({ process: 'pipeline' }),
      apiLoad,
    }
    const stages = await startStages(ctx, { providerChecks: true })
    kick = stages.kick
    metrics = () => ctx.metrics!.registry.getMetricsAsJSON()
    stopAll = async () => {
      await stages.stop()
      // Shorter than in one process, so the whole stop fits CHILD_STOP_DEADLINE_MS.
      await boss.stop({ graceful: true, timeout: 4_000, wait: true })
      await db.close()
    }
    send({ type: 'ready' })
    // Proof of a turning event loop for the parent, which kills and restarts a child that goes silent.
    setInterval(() => send({ type: 'heartbeat' }), HEARTBEAT_MS).unref()
  } catch (err) {
    log.error({ err }, 'pipeline process failed to start')
    // Exit once the message is on its way, so the parent reports why rather than only the exit code.
    send({ type: 'failed', message: (err as Error)?.message ?? String(err) }, () => process.exit(1))
  }
}
