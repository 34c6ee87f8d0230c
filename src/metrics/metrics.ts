import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { withTimeout } from '../common/withTimeout.ts'
import type { Sql } from '../db/connect.ts'
import { pgArray } from '../db/pgArray.ts'
import { countEnteredByStatus, countTransactionsByStatus } from '../store/countTransactions.ts'
import { webhookQueue } from '../webhooks/webhooks.ts'

/** Stage names of txb_stage_duration_seconds. */
export type Stage = 'accept' | 'sign' | 'first_broadcast' | 'inclusion' | 'confirmation'

/**
 * Every metric the service exports, in one registry (not prom-client's global one,
 * so several services in one process, as in tests, do not collide). Built by the
 * composition root and passed through ServiceContext.metrics; stages record with
 * `ctx.metrics?.…` so a context without metrics (a test's) needs nothing.
 */
export type Metrics = {
  registry: Registry
  /** Requests refused at the API, by the error code they got. */
  rejected: Counter<'api' | 'reason'>
  /** Broadcast requests stored (created) or answered from an earlier request with the same idempotency key (duplicate). */
  accepted: Counter<'chain_id' | 'outcome'>
  /** Signed attempts stored, by kind: first (a nonce's first attempt: a request's, or a filler's) or bump (a replacement: a raise, or a cancel). */
  attempts: Counter<'chain_id' | 'kind'>
  /** Each provider's answer to each send. */
  providerSends: Counter<'chain_id' | 'provider' | 'outcome'>
  stageSeconds: Histogram<'chain_id' | 'stage'>
  /** Webhook POSTs by webhook name and outcome (delivered, http_4xx, http_5xx, error). */
  webhookDeliveries: Counter<'webhook' | 'outcome'>
  /** Blocks a watcher far behind went past without reading them (watch/watchChain.ts, JUMP_AFTER_BLOCKS). */
  blocksSkipped: Counter<'chain_id'>
  /** Observes `to - from` in seconds for a stage; skips missing or negative spans. */
  observeStage: (chainId: number, stage: Stage, from: Date | null | undefined, to: Date | null | undefined) => void
}

export function createMetrics(opts: { defaultMetrics?: boolean; process?: 'api' | 'pipeline' } = {}): Metrics {
  const registry = new Registry()
  // With a separate pipeline process, every series says which process it is from: its CPU, memory and
  // event-loop lag stay apart from the API's instead of being summed or averaged with them.
  if (opts.process) registry.setDefaultLabels({ process: opts.process })
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'txb_' })
  const registers = [registry]
  const stageSeconds = new Histogram({
    name: 'txb_stage_duration_seconds',
    help:
      'Time spent per stage: accept = the request path (validate, insert, enqueue); sign = accept to signed; ' +
      'first_broadcast = accept to the first send a provider took; inclusion = first send to the block; confirmation = block to final',
    labelNames: ['chain_id', 'stage'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600],
    registers,
  })
  return {
    registry,
    rejected: new Counter({ name: 'txb_requests_rejected_total', help: 'API requests refused, by error code', labelNames: ['api', 'reason'], registers }),
    accepted: new Counter({
      name: 'txb_transactions_accepted_total',
      help: 'Broadcast requests stored (outcome=created) or answered with the transaction an idempotency key already named (outcome=duplicate)',
      labelNames: ['chain_id', 'outcome'],
      registers,
    }),
    attempts: new Counter({
      name: 'txb_attempts_total',
      help: "Signed attempts stored: kind=first (a nonce's first: a request's or a nonce-hole filler's) or kind=bump (a replacement at the same nonce: a fee raise, or an admin's cancel)",
      labelNames: ['chain_id', 'kind'],
      registers,
    }),
    providerSends: new Counter({
      name: 'txb_provider_sends_total',
      help: "Each provider's answer to each eth_sendRawTransaction, classified (sent, nonce_too_low, fee_too_low, provider_error, ...); skipped_down: not sent, the provider being down",
      labelNames: ['chain_id', 'provider', 'outcome'],
      registers,
    }),
    stageSeconds,
    blocksSkipped: new Counter({
      name: 'txb_watch_blocks_skipped_total',
      help:
        "Blocks the chain's watcher went past without reading them, found far behind the head at start-up or on taking the lead: " +
        'what of ours they hold is looked up by hash (the receipt sweep), but a final transaction a reorg moved in them is not seen',
      labelNames: ['chain_id'],
      registers,
    }),
    webhookDeliveries: new Counter({
      name: 'txb_webhook_deliveries_total',
      help: 'Webhook POSTs by webhook and outcome (delivered, http_4xx, http_5xx, error; failures are retried with backoff), and deliveries given up after the last retry (given_up)',
      labelNames: ['webhook', 'outcome'],
      registers,
    }),
    observeStage(chainId, stage, from, to) {
      if (!from || !to) return
      const s = (to.getTime() - from.getTime()) / 1000
      if (s >= 0) stageSeconds.observe({ chain_id: String(chainId), stage }, s)
    },
  }
}

/**
 * `load` at most once per `ms` (counted from its answer), its answer shared by the scrapes meanwhile, each of which
 * waits for it at most `waitMs` (null past that: the series is left out of that scrape). One load at a time: one
 * that outlives the wait (a busy pool, a slow provider) is shared by later scrapes until it settles, not started
 * again beside it, and its answer serves the scrapes after it. A failed load (Postgres down) answers null, and is
 * not reused.
 */
function reusedFor<T>(ms: number, load: () => Promise<T>, waitMs = 2_500): () => Promise<T | null> {
  let cached: { settledAt: number | null; value: Promise<T | null> } | null = null
  return () => {
    if (!cached || (cached.settledAt !== null && Date.now() - cached.settledAt >= ms)) {
      const entry: { settledAt: number | null; value: Promise<T | null> } = { settledAt: null, value: Promise.resolve(null) }
      entry.value = load().then(
        (value) => {
          entry.settledAt = Date.now()
          return value
        },
        () => {
          if (cached === entry) cached = null
          return null
        },
      )
      cached = entry
    }
    return withTimeout(cached.value, waitMs, 'a metrics read').catch(() => null)
  }
}

/**
 * Each provider's state as this process sees it (the same as the `providers` query): 1 in its status, 0 in the
 * others. /readyz does not turn on a chain's providers, so this is what to alert on (e.g. every provider of a
 * chain `down`).
 */
export function registerProviderGauge(
  metrics: Metrics,
  chains: Array<{ chainId: number; health: { view: () => Array<{ name: string; status: string; headBlock: bigint | null }>; latestHead: () => bigint | null } }>,
): void {
  // A halted chain (or every provider serving the same stale head) fails nothing and lags no provider behind
  // another: only a head that stops rising shows it (alert on changes(txb_chain_head_block[5m]) == 0).
  new Gauge({
    name: 'txb_chain_head_block',
    help: "The chain's head, by chain: the highest block its providers reported at the last check, or a later head read (the watcher's)",
    labelNames: ['chain_id'],
    registers: [metrics.registry],
    collect() {
      this.reset()
      for (const chain of chains) {
        const head = chain.health.latestHead()
        if (head !== null) this.set({ chain_id: String(chain.chainId) }, Number(head))
      }
    },
  })
  new Gauge({
    name: 'txb_provider_status',
    help: 'Provider status by chain and provider: 1 for its current status (healthy, degraded, down), 0 for the others',
    labelNames: ['chain_id', 'provider', 'status'],
    registers: [metrics.registry],
    collect() {
      this.reset()
      for (const chain of chains)
        for (const v of chain.health.view())
          for (const status of ['healthy', 'degraded', 'down']) this.set({ chain_id: String(chain.chainId), provider: v.name, status }, v.status === status ? 1 : 0)
    },
  })
}

/** How long a balance read serves scrapes: one read of every signer per chain per 30 s, however often scraped. */
const BALANCE_CACHE_MS = 30_000

/**
 * Each configured signer's balance, so an alert can fire before a signer runs dry (txb_signer_short_of_funds says
 * so only once a request could not be paid for). Read from the chain on scrape (JSON-RPC batches of 200), at most
 * every 30 s and one read at a time; a chain whose read fails, or is not done within 2.5 s, is left out of that
 * scrape (thousands of signers: the read goes on, and serves the next scrapes).
 */
export function registerBalanceGauge(
  metrics: Metrics,
  chains: Array<{ chainId: number; read: { getBalance: (args: { address: `0x${string}` }) => Promise<bigint> } }>,
  signersOf: (chainId: number) => Array<`0x${string}`>,
): void {
  const reads = new Map(
    chains.map((chain) => [
      chain.chainId,
      reusedFor(BALANCE_CACHE_MS, () => Promise.all(signersOf(chain.chainId).map(async (address) => [address, await chain.read.getBalance({ address })] as const))),
    ]),
  )
  new Gauge({
    name: 'txb_signer_balance_wei',
    help: "Each configured signer's balance in wei, by chain and signer (read from the chain, at most every 30 s); as a float, exact to about 16 digits",
    labelNames: ['chain_id', 'signer'],
    registers: [metrics.registry],
    async collect() {
      this.reset()
      const all = await Promise.all([...reads].map(async ([chainId, read]) => [chainId, await read()] as const))
      for (const [chainId, balances] of all) for (const [signer, wei] of balances ?? []) this.set({ chain_id: String(chainId), signer }, Number(wei))
    },
  })
}

/**
 * With `pipeline.process: "separate"`, the API's process reports its child: while the child is down its own series
 * (the watcher's, the sign stage's) are missing from /metrics, which an alert on them cannot tell from "fine", and
 * its restarts showed only in the log.
 */
export function registerPipelineGauges(metrics: Metrics, status: () => { pid: number | null; restarts: number }): void {
  new Gauge({
    name: 'txb_pipeline_up',
    help: 'With pipeline.process "separate": 1 while the pipeline process is running, 0 while it is down or restarting',
    registers: [metrics.registry],
    collect() {
      this.set(status().pid === null ? 0 : 1)
    },
  })
  new Counter({
    name: 'txb_pipeline_restarts_total',
    help: 'With pipeline.process "separate": times the pipeline process was restarted after it died or hung (alert on increase(...[10m]) > 0)',
    registers: [metrics.registry],
    collect() {
      // Kept by pipelineProcess.ts; set by starting from zero.
      this.reset()
      this.inc(status().restarts)
    },
  })
}

/**
 * Which chains this process watches (leads, by the watcher's advisory lock): summed over the instances, 1 per
 * chain. 0 is no watcher (nothing is confirmed), 2 would be two (the lock failed).
 */
export function registerWatcherGauge(metrics: Metrics, watchers: Array<{ chainId: number; isLeader: () => boolean }>): void {
  new Gauge({
    name: 'txb_watcher_leader',
    help: "1 where this process leads the chain's watcher, else 0, by chain: sum across instances should be 1 per chain",
    labelNames: ['chain_id'],
    registers: [metrics.registry],
    collect() {
      for (const w of watchers) this.set({ chain_id: String(w.chainId) }, w.isLeader() ? 1 : 0)
    },
  })
}

/** Scrapes should not hammer Postgres: the counts are reused for this long. */
const STATUS_CACHE_MS = 2_000
const NON_FINAL = ['QUEUED', 'PENDING', 'INCLUDED'] as const
/** Said in the help of each gauge read from the database: with several instances, each reports the same figure. */
const FROM_DATABASE = ' (read from the database: the same on every instance, so take max, not sum)'

/**
 * Gauges read from Postgres on scrape: unfinished transactions by chain and status, and
 * the age of the oldest one (a stuck pipeline shows here first), from the partial index on
 * unfinished rows; and every status, final ones included, from the trigger-kept counters
 * (never a scan of the retention window). Bounded by a statement timeout.
 */
export function registerDatabaseGauges(
  metrics: Metrics,
  sql: Sql,
  chainIds: number[],
  webhookNames: string[] = [],
  /** `chainId:address` of the configured signers: a signer since removed from the config is not reported. */
  signerKeys?: ReadonlySet<string>,
): void {
  // Postgres down: these gauges are left out of the scrape; the rest of /metrics still answers.
  /**
   * Every read here within 2 s: one that waited on a lock (a table locked by a migration or by hand) held the
   * scrape for as long (7 s seen), past Prometheus's scrape timeout, and the whole scrape was lost.
   */
  // The wait for a connection is bounded by reusedFor's: statement_timeout starts only once one is had, and with the
  // pool busy (a burst, a slow remote signer holding sign batches' connections) or Postgres unreachable without
  // refusing (a failover, a partition: connect_timeout is 10 s) the scrape waited as long, and was lost whole.
  const bounded = <T>(fn: (tx: Sql) => Promise<T>): Promise<T> =>
    sql.begin(async (tx) => {
      await tx`SET LOCAL statement_timeout = 2000`
      return fn(tx as unknown as Sql)
    }) as Promise<T>
  const read = reusedFor(STATUS_CACHE_MS, () =>
    bounded(
      (tx) => tx<Array<{ chain_id: number; status: string; n: number; at_cap: number; waiting: number; oldest_seconds: number | null }>>`
        SELECT chain_id, status, count(*)::int AS n, (count(*) FILTER (WHERE at_fee_cap IS NOT NULL))::int AS at_cap,
          (count(*) FILTER (WHERE error_code IS NOT NULL))::int AS waiting,
          extract(epoch FROM now() - min(COALESCE(status_at, created_at)))::float8 AS oldest_seconds
        FROM transactions WHERE status IN ('QUEUED', 'PENDING', 'INCLUDED') GROUP BY chain_id, status`,
    ),
  )
  const readStored = reusedFor(STATUS_CACHE_MS, () => bounded((tx) => Promise.all(chainIds.map((chainId) => countTransactionsByStatus(tx, { chainId })))))
  const registers = [metrics.registry]
  new Gauge({
    name: 'txb_transactions',
    help: 'Unfinished transactions by chain and status (QUEUED, PENDING, INCLUDED), counted on scrape' + FROM_DATABASE,
    labelNames: ['chain_id', 'status'],
    registers,
    async collect() {
      this.reset()
      const rows = await read()
      if (!rows) return
      // Zeros too, so an emptied status reads 0 rather than vanishing.
      for (const chainId of chainIds) for (const status of NON_FINAL) this.set({ chain_id: String(chainId), status }, 0)
      for (const r of rows) this.set({ chain_id: String(r.chain_id), status: r.status }, r.n)
    },
  })
  new Gauge({
    name: 'txb_transactions_stored',
    help: 'Transactions in the database by chain and status, final ones included until retention deletes them; a gauge (retention and retries lower it): alert on txb_transactions_entered_total instead' + FROM_DATABASE,
    labelNames: ['chain_id', 'status'],
    registers,
    async collect() {
      this.reset()
      const perChain = await readStored()
      if (!perChain) return
      perChain.forEach((rows, i) => {
        for (const r of rows) this.set({ chain_id: String(chainIds[i]), status: r.status }, r.count)
      })
    },
  })
  const readEntered = reusedFor(STATUS_CACHE_MS, () => bounded((tx) => Promise.all(chainIds.map((chainId) => countEnteredByStatus(tx, chainId)))))
  new Counter({
    name: 'txb_transactions_entered_total',
    help: 'Times transactions entered each status, by chain, from the database (every instance reports the same figure); only rises: alert on increase(...{status="FAILED"}[10m]) > 0',
    labelNames: ['chain_id', 'status'],
    registers,
    async collect() {
      const perChain = await readEntered()
      if (!perChain) return
      // The figure is the database's, read on each scrape: set, by starting from zero.
      this.reset()
      perChain.forEach((rows, i) => {
        for (const r of rows) this.inc({ chain_id: String(chainIds[i]), status: r.status }, r.entered)
      })
    },
  })
  // Deliveries waiting per webhook (pg-boss's jobs, one queue each): a receiver that is down or slow shows here
  // long before its deliveries are given up.
  const readWebhooks = reusedFor(STATUS_CACHE_MS, () =>
    bounded(
      (tx) => tx<Array<{ name: string; waiting: number; oldest_seconds: number | null }>>`
        SELECT name, count(*)::int AS waiting, extract(epoch FROM now() - min(created_on))::float8 AS oldest_seconds
        FROM pgboss.job WHERE name = ANY(${webhookNames.map(webhookQueue)}::text[]) AND state IN ('created', 'retry', 'active')
        GROUP BY name`,
    ),
  )
  if (webhookNames.length) {
    type Queued = { waiting: number; oldest_seconds: number | null }
    /** One gauge per figure, read from the same cached query; a webhook with nothing waiting gets `empty`. */
    const perWebhook = (name: string, help: string, figure: (q: Queued) => number | null, empty: number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ['webhook'],
        registers,
        async collect() {
          this.reset()
          const rows = await readWebhooks()
          if (!rows) return
          const queued = new Map(rows.map((r) => [r.name, r]))
          for (const hook of webhookNames) {
            const q = queued.get(webhookQueue(hook))
            const value = q ? figure(q) : empty
            if (value !== null) this.set({ webhook: hook }, value)
          }
        },
      })
    perWebhook('txb_webhook_backlog', 'Webhook deliveries not done yet (waiting, retrying or in progress), by webhook', (q) => q.waiting, 0)
    perWebhook('txb_webhook_oldest_seconds', 'Age of the oldest webhook delivery not done yet, by webhook', (q) => q.oldest_seconds, null)
  }
  new Gauge({
    name: 'txb_transactions_at_fee_cap',
    help: 'Unfinished transactions whose fees reached their fee cap (chains[].fees.maxFeePerGasCap, or maxTxFeeWei over the gas limit; rebroadcast as they are, not bumped), by chain' + FROM_DATABASE,
    labelNames: ['chain_id'],
    registers,
    async collect() {
      this.reset()
      const rows = await read()
      if (!rows) return
      for (const chainId of chainIds) this.set({ chain_id: String(chainId) }, 0)
      for (const r of rows) this.inc({ chain_id: String(r.chain_id) }, r.at_cap)
    },
  })
  // Requests that name no signer leave a signer that cannot pay (sign/moveToFundedSigner.ts), so its queue no
  // longer shows the problem: this does. Cleared once it signs a batch in full again.
  const readShort = reusedFor(STATUS_CACHE_MS, () =>
    bounded(
      (tx) => tx<Array<{ chain_id: number; signer: string; short: boolean }>>`
        SELECT chain_id, signer, short_of_funds_at IS NOT NULL AS short FROM signer_nonces WHERE chain_id = ANY(${pgArray(chainIds)}::int[])`,
    ),
  )
  new Gauge({
    name: 'txb_signer_short_of_funds',
    help: 'By chain and signer: 1 while the sign stage last found the signer unable to pay for a request (fund it), else 0' + FROM_DATABASE,
    labelNames: ['chain_id', 'signer'],
    registers,
    async collect() {
      this.reset()
      for (const r of (await readShort()) ?? [])
        if (!signerKeys || signerKeys.has(`${r.chain_id}:${r.signer}`)) this.set({ chain_id: String(r.chain_id), signer: r.signer }, r.short ? 1 : 0)
    },
  })
  // The watcher (whichever instance leads) records how far it has read: a watcher stopped, or stuck on a block,
  // shows as this falling behind txb_chain_head_block while nothing else may say so.
  const readCursors = reusedFor(STATUS_CACHE_MS, () =>
    bounded((tx) => tx<Array<{ chain_id: number; block_number: number }>>`SELECT chain_id, block_number FROM chain_cursors WHERE chain_id = ANY(${pgArray(chainIds)}::int[])`),
  )
  new Gauge({
    name: 'txb_watch_cursor_block',
    help: "The last block the chain's watcher has read (from the database: the same on every instance), by chain",
    labelNames: ['chain_id'],
    registers,
    async collect() {
      this.reset()
      for (const r of (await readCursors()) ?? []) this.set({ chain_id: String(r.chain_id) }, Number(r.block_number))
    },
  })
  // Why unfinished ones wait, by the code they carry meanwhile: a request pinned to a signer that cannot pay waits
  // INSUFFICIENT_FUNDS for up to an hour, and a remote signer that is down holds its requests SIGNER_UNAVAILABLE,
  // and neither showed in a metric (the short-of-funds gauge covers only what the sign stage flags on the signer).
  // Read only when the first query found some.
  const readWaiting = reusedFor(STATUS_CACHE_MS, () =>
    bounded((tx) =>
      tx<Array<{ chain_id: number; status: string; reason: string; n: number }>>`
        SELECT chain_id, status, error_code AS reason, count(*)::int AS n FROM transactions
        WHERE status IN ('QUEUED', 'PENDING') AND error_code IS NOT NULL GROUP BY chain_id, status, error_code`,
    ),
  )
  new Gauge({
    name: 'txb_transactions_waiting',
    help: 'Unfinished transactions (QUEUED, PENDING) that carry the reason they wait, by chain, status and reason (INSUFFICIENT_FUNDS, SIGNER_UNAVAILABLE, ...)' + FROM_DATABASE,
    labelNames: ['chain_id', 'status', 'reason'],
    registers,
    async collect() {
      this.reset()
      const rows = await read()
      if (!rows?.some((r) => r.waiting > 0)) return
      for (const r of (await readWaiting()) ?? []) this.set({ chain_id: String(r.chain_id), status: r.status, reason: r.reason }, r.n)
    },
  })
  new Gauge({
    name: 'txb_oldest_unfinished_seconds',
    // From when it entered the status (status_at): counted from its creation, a FAILED row retried weeks later read
    // weeks QUEUED at once, and one that waited an hour for funds an hour PENDING, each a false "stuck" alert.
    help: 'How long the transaction longest in each unfinished status has been in it (since it entered it), by chain' + FROM_DATABASE,
    labelNames: ['chain_id', 'status'],
    registers,
    async collect() {
      this.reset()
      for (const r of (await read()) ?? []) if (r.oldest_seconds !== null) this.set({ chain_id: String(r.chain_id), status: r.status }, r.oldest_seconds)
    },
  })
}
