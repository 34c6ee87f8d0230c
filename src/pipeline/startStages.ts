import type PgBoss from 'pg-boss'
import { bumpStalled } from '../bump/bumpStalled.ts'
import { checkProviders } from '../chain/checkProviders.ts'
import { createChainClients, type ChainClients } from '../chain/createChainClients.ts'
import { verifyProviders } from '../chain/verifyProviders.ts'
import type { Logger } from '../common/logger.ts'
import { createRepeatedFailureLog, failureShape, type RepeatedFailureLog } from '../common/repeatedFailureLog.ts'
import { startLoop } from '../common/startLoop.ts'
import type { FileConfig } from '../config/schema.ts'
import type { ServiceContext } from '../context.ts'
import { createDb, type Db } from '../db/connect.ts'
import { migrateDatabase } from '../db/migrate.ts'
import { buildOnlineIndexes } from '../db/onlineIndexes.ts'
import { registerWatcherGauge } from '../metrics/metrics.ts'
import { createBoss, createQueues } from '../jobs/queues.ts'
import { pruneFinalTransactions, PRUNE_INTERVAL_MS } from '../prune/pruneFinal.ts'
import { foldStatusCounts, FOLD_STATUS_COUNTS_INTERVAL_MS } from '../store/foldStatusCounts.ts'
import { createNonceReconciler } from '../reconcile/reconcileNonces.ts'
import { resendUnconfigured } from '../bump/resendUnconfigured.ts'
import { startRecoverySweep } from '../recover/recoverySweep.ts'
import { startSignWorker } from '../sign/signWorker.ts'
import { loadSigners, type SignerRegistry } from '../signers/loadSigners.ts'
import { startChainWatcher } from '../watch/watchChain.ts'
import { startWebhooks } from '../webhooks/webhooks.ts'

export type Stages = {
  /** Wakes the sign stage for a signer after new work was committed. */
  kick: (chainId: number, signer: string) => void
  stop: () => Promise<void>
}

/** The parts both processes need: signers, chain clients (each provider verified), the database and pg-boss. */
export async function openServiceParts(opts: {
  config: FileConfig
  databaseUrl: string
  log: Logger
  /** Only the process that starts first migrates (the API's); the pipeline process finds the schema ready. */
  migrate: boolean
}): Promise<{ signers: SignerRegistry; chains: Map<number, ChainClients>; db: Db }> {
  const signers = await loadSigners(opts.config.signers)
  const providerLog = opts.log.child({ module: 'providers' })
  const chains = new Map<number, ChainClients>(
    opts.config.chains.map((c) => [
      c.chainId,
      createChainClients(c, {
        onProviderChange: ({ name, change, error }) => {
          const at = { chainId: c.chainId, provider: name }
          if (change === 'down') providerLog.warn({ ...at, error }, `provider ${name} of chain ${c.chainId} is down: skipped until it answers again`)
          else if (change === 'up') providerLog.info(at, `provider ${name} of chain ${c.chainId} answers again`)
          else providerLog.error({ ...at, error }, `provider ${name} serves another chain than ${c.chainId}: not used while it does`)
        },
      }),
    ]),
  )
  // Each provider on its own: one serving another chain refuses the start, naming it.
  await Promise.all([...chains.values()].map((chain) => verifyProviders(chain, opts.log)))
  const db = createDb(opts.databaseUrl, { max: opts.config.database.maxConnections })
  if (opts.migrate)
    await migrateDatabase(opts.databaseUrl, {
      onRetry: (err, delayMs) =>
        opts.log.warn({ error: err.message, retryInMs: delayMs }, 'a database migration waited 2 s for a table another transaction holds; trying again (meanwhile that table is not held up)'),
    })
  return { signers, chains, db }
}

/** pg-boss says nothing when it works again: this long without an error is taken as that. */
const BOSS_QUIET_MS = 30_000

/** Kinds of pg-boss error remembered at once (each its own repeated-failure log); past it they start over. */
const BOSS_ERROR_KINDS = 20

/**
 * pg-boss's errors, each kind (its first line, numbers aside) in full once, then a line a minute while it repeats,
 * and a line when they stop. Kinds apart: through a database restart "ECONNREFUSED" and "Connection terminated"
 * alternate, and one log for both said each in full every time.
 */
export function bossErrorLog(log: Logger): (err: unknown) => void {
  const text = { failed: 'pg-boss error', still: 'pg-boss errors go on', again: 'pg-boss: no error for 30 s' }
  const kinds = new Map<string, RepeatedFailureLog>()
  let quiet: NodeJS.Timeout | undefined
  return (err) => {
    const kind = failureShape(err)
    if (!kinds.has(kind) && kinds.size >= BOSS_ERROR_KINDS) kinds.clear()
    let failures = kinds.get(kind)
    if (!failures) kinds.set(kind, (failures = createRepeatedFailureLog(log, {}, text)))
    failures.failed(err)
    clearTimeout(quiet)
    quiet = setTimeout(() => {
      // "Works again" once, not once per kind.
      kinds.values().next().value?.succeeded()
      kinds.clear()
    }, BOSS_QUIET_MS).unref()
  }
}

export async function startBoss(databaseUrl: string, log: Logger): Promise<PgBoss> {
  const boss = createBoss(databaseUrl)
  // Every worker's failed fetch is an error event: through a 10-minute database outage that was thousands of lines.
  boss.on('error', bossErrorLog(log))
  await boss.start()
  await createQueues(boss)
  return boss
}

/**
 * Everything that moves a transaction along once the API stored it: sign (and send), watch, the
 * recovery sweep, webhooks, retention, and per chain the bump and reconcile loops. Runs in the API's
 * process, or alone in the pipeline process (pipelineProcess.ts).
 */
export async function startStages(ctx: ServiceContext, opts: { providerChecks: boolean }): Promise<Stages> {
  const { config, log, chains, db } = ctx
  const signWorker = await startSignWorker(ctx)
  const watchers = [...chains.values()].map((chain) => startChainWatcher(ctx, chain))
  if (ctx.metrics) registerWatcherGauge(ctx.metrics, [...chains.keys()].map((chainId, i) => ({ chainId, isLeader: watchers[i]!.isLeader })))
  const sweep = startRecoverySweep(ctx, { holds: signWorker.holds })
  const webhooks = await startWebhooks(ctx)
  /** Aborted by stop: a retention run of up to 50 batches ends after the one in hand. */
  const stopping = new AbortController()
  const prune = startLoop(
    'prune',
    PRUNE_INTERVAL_MS,
    () => pruneFinalTransactions(db.sql, { retentionDays: config.retentionDays, log, signal: stopping.signal }).then(() => {}),
    log,
  )
  // Once per start, in the background: indexes too big to build inside a migration (db/onlineIndexes.ts).
  const indexes = buildOnlineIndexes(db.databaseUrl, log, stopping.signal).catch((err: unknown) => {
    if (!stopping.signal.aborted) log.error({ err }, 'building an index failed; it is tried again at the next start (the queries it serves are slower meanwhile)')
  })
  const foldCounts = startLoop('fold status counts', FOLD_STATUS_COUNTS_INTERVAL_MS, () => foldStatusCounts(db.sql).then(() => {}), log)
  const chainLoops = [...chains.values()].flatMap((chain) => {
    const reconciler = createNonceReconciler(ctx, chain)
    const fees = chain.config.fees
    return [
      startLoop(
        `bump ${chain.chainId}`,
        Math.min(1_000, Math.max(100, Math.floor(fees.bumpAfterMs / 4))),
        // The resend beside the bump, not after it: a bump pass that fails (or waits on a slow provider) does not hold it up.
        () =>
          Promise.all([
            bumpStalled(ctx, chain),
            resendUnconfigured(ctx, chain).catch((err: unknown) => log.warn({ err, chainId: chain.chainId }, 'sending a removed signer\'s transactions again failed; tried again later')),
          ]).then(() => {}),
        log,
      ),
      startLoop(`reconcile ${chain.chainId}`, Math.min(15_000, Math.max(1_000, chain.config.blockTimeMs)), () => reconciler.reconcile(), log),
      // Provider health is per process: the sends skip a provider this process saw down.
      ...(opts.providerChecks ? [startProviderChecks(chain, log)] : []),
    ]
  })
  return {
    kick: signWorker.kick,
    async stop() {
      // The sign stage first, beside the loops: its drains stop after their batch and send what they signed
      // while the loops finish their runs (nothing new is kicked once it stops).
      // All at once: one after the other, their runs in hand added up past main.ts's limit for the whole stop.
      stopping.abort()
      await Promise.all([
        signWorker.stop(),
        sweep.stop(),
        prune.stop(),
        foldCounts.stop(),
        webhooks.stop(),
        ...chainLoops.map((l) => l.stop()),
        ...watchers.map((w) => w.stop()),
        indexes,
      ])
    },
  }
}

export function startProviderChecks(chain: ChainClients, log: Logger) {
  return startLoop(`provider check ${chain.chainId}`, chain.config.rpc.checkIntervalMs, () => checkProviders(chain), log)
}
