import type { ChainClients } from '../chain/createChainClients.ts'
import { redactUrl, type Logger } from '../common/logger.ts'
import type { Sql } from '../db/connect.ts'
import { MIGRATIONS_SCHEMA, MIGRATIONS_TABLE, readMigrationJournal } from '../db/migrate.ts'
import { withTimeout } from '../common/withTimeout.ts'
import type { PipelineStatus } from '../pipeline/pipelineProcess.ts'

/** A check that takes longer than this counts as failed: /readyz must answer fast even when Postgres hangs. */
export const DB_CHECK_TIMEOUT_MS = 1_000

export type ReadinessReport = {
  ready: boolean
  checks: {
    database: { ok: boolean; error?: string; latencyMs?: number }
    migrations: { ok: boolean; applied?: number; expected: number; error?: string }
    chains: Array<{ chainId: number; name: string; ok: boolean; lastBlockNumber?: string; lastAnswerAgoMs?: number; error?: string }>
    /** With `pipeline.process: "separate"` only: the child process that signs, sends and watches. */
    pipeline?: PipelineCheck
  }
}

export type PipelineCheck = { ok: boolean; pid: number | null; restarts: number; error?: string }

/** A pipeline process down this long (one that cannot start) makes the instance not ready. */
export const PIPELINE_DOWN_NOT_READY_MS = 30_000
/** So do this many restarts within the last 2 minutes (a crash loop whose children each come up for a moment). */
export const PIPELINE_CRASH_LOOP_RESTARTS = 3

export type Readiness = { check: () => Promise<ReadinessReport>; stop: () => void }


/** Error text without provider URLs (they may carry credentials) and without viem's multi-line details. */
function safeMessage(err: unknown, urls: string[]): string {
  const e = err as { shortMessage?: string; message?: string }
  let text = String(e?.shortMessage ?? e?.message ?? err).split('\n')[0]!.slice(0, 200)
  for (const url of urls) text = text.split(url).join(redactUrl(url))
  return text
}

/**
 * /readyz: Postgres answers within a second, every migration in drizzle/ is applied (and, with a
 * separate pipeline, its process is up). Each chain's read client answering eth_blockNumber recently is
 * reported beside them, without deciding readiness. Chains are probed in the background (never on the
 * request), so a slow provider cannot slow the probe.
 */
export function createReadiness(
  sql: Sql,
  chains: ChainClients[],
  log: Logger,
  /** The pipeline process's state, when there is one (pipeline/pipelineProcess.ts). */
  pipeline?: () => PipelineStatus,
): Readiness {
  const expected = readMigrationJournal().length
  let migrationsOk = false
  const probes = chains.map((chain) => {
    const intervalMs = Math.min(5_000, Math.max(1_000, chain.config.blockTimeMs))
    const state = {
      chain,
      // Stale after a few missed probes (at least 30 s), so one slow answer does not flap readiness.
      staleMs: Math.max(30_000, 3 * intervalMs),
      lastOkAt: null as number | null,
      lastBlock: null as bigint | null,
      lastError: null as string | null,
      timer: undefined as NodeJS.Timeout | undefined,
      stopped: false,
    }
    const urls = chain.config.providers.map((p) => p.url)
    const probe = async () => {
      try {
        const head = await withTimeout(chain.read.request({ method: 'eth_blockNumber' }), 10_000, 'eth_blockNumber')
        state.lastBlock = BigInt(head)
        state.lastOkAt = Date.now()
        state.lastError = null
      } catch (err) {
        state.lastError = safeMessage(err, urls)
        log.debug({ chainId: chain.chainId, error: state.lastError }, 'readiness probe: eth_blockNumber failed')
      }
      if (!state.stopped) state.timer = setTimeout(() => void probe(), intervalMs).unref()
    }
    void probe()
    return state
  })

  return {
    async check() {
      const started = Date.now()
      // Read-only answers SELECT 1 as well: a replica, or a primary a failover demoted, left the instance ready while
      // every request it accepted failed to store (a 500 each).
      const database: ReadinessReport['checks']['database'] = await withTimeout(
        sql<{ ro: string }[]>`SELECT current_setting('transaction_read_only') AS ro`,
        DB_CHECK_TIMEOUT_MS,
        'Postgres',
      )
        .then(([row]) =>
          row?.ro === 'on'
            ? { ok: false, error: 'the database is read-only (a replica, or a primary demoted by a failover): nothing can be stored' }
            : { ok: true, latencyMs: Date.now() - started },
        )
        .catch((err: Error) => ({ ok: false, error: safeMessage(err, []) }))
      let migrations: ReadinessReport['checks']['migrations'] = { ok: migrationsOk, expected }
      if (!migrationsOk && database.ok) {
        // Once applied, migrations stay applied: checked until the first success only.
        migrations = await withTimeout(sql.unsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM ${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE}`), DB_CHECK_TIMEOUT_MS, 'Postgres')
          .then(([r]) => {
            migrationsOk = r!.n >= expected
            return migrationsOk
              ? { ok: true, applied: r!.n, expected }
              : { ok: false, applied: r!.n, expected, error: `${expected - r!.n} migration(s) not applied` }
          })
          .catch((err: Error) => ({ ok: false, expected, error: safeMessage(err, []) }))
      } else if (!database.ok) migrations = { ok: migrationsOk, expected, ...(migrationsOk ? {} : { error: 'database unreachable' }) }
      const now = Date.now()
      const chainChecks = probes.map((p) => {
        const ago = p.lastOkAt === null ? null : now - p.lastOkAt
        const ok = ago !== null && ago <= p.staleMs
        return {
          chainId: p.chain.chainId,
          name: p.chain.config.name,
          ok,
          ...(p.lastBlock !== null ? { lastBlockNumber: p.lastBlock.toString() } : {}),
          ...(ago !== null ? { lastAnswerAgoMs: ago } : {}),
          ...(ok
            ? {}
            : { error: ago === null ? `no answer to eth_blockNumber yet${p.lastError ? `: ${p.lastError}` : ''}` : `no answer to eth_blockNumber for ${Math.round(ago / 1000)} s${p.lastError ? `: ${p.lastError}` : ''}` }),
        }
      })
      let pipelineCheck: PipelineCheck | undefined
      if (pipeline) {
        // A restart takes a second or two and loses nothing (accepted rows wait in Postgres): only a
        // pipeline that stays down, or keeps dying, makes the instance not ready.
        const p = pipeline()
        const downMs = p.downSince === null ? 0 : now - p.downSince
        const looping = p.recentRestarts >= PIPELINE_CRASH_LOOP_RESTARTS
        const error = looping
          ? `pipeline process restarted ${p.recentRestarts} times in the last 2 minutes`
          : p.downSince !== null
            ? `pipeline process down for ${Math.round(downMs / 1000)} s`
            : undefined
        pipelineCheck = { ok: downMs < PIPELINE_DOWN_NOT_READY_MS && !looping, pid: p.pid, restarts: p.restarts, ...(error ? { error } : {}) }
      }
      return {
        // Chains are reported, not required: a request for a chain whose providers are down is still stored and
        // done once they answer, and every instance sees the same providers, so a probe that failed on one chain
        // would take the whole API (and the other chains) out of every load balancer at once.
        ready: database.ok && migrations.ok && (pipelineCheck?.ok ?? true),
        checks: { database, migrations, chains: chainChecks, ...(pipelineCheck ? { pipeline: pipelineCheck } : {}) },
      }
    },
    stop() {
      for (const p of probes) {
        p.stopped = true
        clearTimeout(p.timer)
      }
    },
  }
}
