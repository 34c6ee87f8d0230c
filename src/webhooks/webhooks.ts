import { randomUUID } from 'node:crypto'
import type PgBoss from 'pg-boss'
import { loadTransactionsJson } from '../api/rest/transactionJson.ts'
import { redactUrl } from '../common/logger.ts'
import { startLoop, type Loop } from '../common/startLoop.ts'
import { webhookName, type WebhookConfig } from '../config/schema.ts'
import type { ServiceContext } from '../context.ts'
import type { Sql, TxSql } from '../db/connect.ts'
import { bossDb, createQueue } from '../jobs/queues.ts'
import { TX_STATUSES } from '../core/txStatus.ts'
import { pgArray } from '../db/pgArray.ts'
import type { EventRow, TransactionRow } from '../store/transactionRow.ts'
import { SIGNATURE_HEADER, signWebhook } from './signWebhook.ts'

/** The queue of earlier versions (every webhook in one); still drained, so an upgrade loses no delivery. */
export const WEBHOOK_QUEUE = 'webhook-deliver'
/** Each webhook has its own queue: a slow or dead receiver holds up only its own deliveries. */
export const webhookQueue = (name: string) => `webhook-deliver.${name}`
export type WebhookJob = { webhook: string; eventId: number }
/** The delivery job of one event for one webhook, with its retries. */
export const webhookJob = (webhook: string, eventId: number): PgBoss.JobInsert<WebhookJob> => ({ name: webhookQueue(webhook), data: { webhook, eventId }, ...RETRY })

/** Outbox rows turned into jobs per transaction: short, so the outbox lock is brief. */
const DISPATCH_BATCH = 500
const DISPATCH_INTERVAL_MS = 250
const DELIVERY_TIMEOUT_MS = 10_000
/**
 * Per webhook and instance: workers, each taking up to DELIVERY_BATCH jobs at a time and POSTing them side by
 * side (so at most DELIVERY_WORKERS × DELIVERY_BATCH requests in flight to one receiver). pg-boss 10 workers
 * sleep their polling interval (0.5 s) after each fetch, unless woken: a worker that delivered a full batch
 * wakes itself.
 */
const DELIVERY_WORKERS = 2
const DELIVERY_BATCH = 50
/** 1 s, doubling: about an hour of retries before a delivery is given up (pg-boss keeps the failed job). */
const RETRY = { retryLimit: 12, retryDelay: 1, retryBackoff: true, expireInSeconds: 60 } as const

/**
 * bossDb for `boss.insert`: pg-boss hands the job list to json_to_recordset as a
 * JSON string, which postgres.js would encode a second time (as a JSON string
 * scalar); pass it as the array it is instead.
 */
export function insertDb(tx: TxSql): PgBoss.Db {
  const db = bossDb(tx)
  return {
    executeSql: (text, values) =>
      db.executeSql(text, /json_to_recordset/.test(text) ? values.map((v) => (typeof v === 'string' ? JSON.parse(v) : v)) : values),
  }
}

/** Advisory lock key serializing recordWantedStatuses across instances. */
const WEBHOOK_STATUSES_LOCK = 73_031
/**
 * How often a running instance says its webhooks are still wanted, and how long after that they stay wanted. Not
 * taken back at a stop: changes made while it stops (or while its pipeline process restarts, or between two
 * deploys) are still recorded for it. A webhook taken out of every config (or renamed) is still queued for this
 * long, for no one: its queue's jobs wait, unworked, and are named in the log (warnOfStrandedDeliveries).
 */
const REGISTRY_REFRESH_MS = 60_000
const REGISTRY_TTL = '10 minutes'
/** A webhook whose rows were all refreshed longer ago than this has no running instance: its deliveries wait for one. */
const REGISTRY_LIVE = '150 seconds'

type Registered = { name: string; events: string[] | null }

/**
 * Every webhook some instance has in its config (refreshed within the TTL), by name. Where instances' configs
 * disagree on one name's events (a rolling deploy that widens them), the union: all statuses if any takes all.
 * (The one refreshed last decided before, and changes only the other config wanted were not recorded in the
 * minutes the other one had refreshed last.) `live`: some instance with it refreshed it lately.
 */
export function readRegistry(sql: TxSql | ServiceContext['db']['sql'] | Sql): Promise<(Registered & { live: boolean })[]> {
  return sql<(Registered & { live: boolean })[]>`
    SELECT r.name, max(r.seen_at) > now() - ${REGISTRY_LIVE}::interval AS live,
      CASE WHEN bool_or(r.events IS NULL) THEN NULL
           ELSE (SELECT array_agg(DISTINCT e ORDER BY e) FROM webhook_registry r2, unnest(r2.events) AS e
                 WHERE r2.name = r.name AND r2.seen_at > now() - ${REGISTRY_TTL}::interval) END AS events
    FROM webhook_registry r WHERE r.seen_at > now() - ${REGISTRY_TTL}::interval GROUP BY r.name ORDER BY r.name`
}

/**
 * Records this instance's webhooks and tells the outbox trigger which status
 * changes to keep: those some webhook of any running instance wants. Before, each instance set them from its own
 * config at start-up, the last one started deciding for all: one started without webhooks (a canary, a debug run)
 * turned every other instance's deliveries off, and during a rolling deploy that added a webhook the old
 * instances' restarts took its statuses away again.
 */
async function recordWantedStatuses(ctx: ServiceContext, instanceId: string, hooks: Hook[]): Promise<Awaited<ReturnType<typeof readRegistry>>> {
  return ctx.db.sql.begin(async (tx) => {
    // One instance at a time: two starting together both deleted, then both inserted the same statuses, and the
    // second insert's duplicate key stopped that instance's start-up.
    await tx`SELECT pg_advisory_xact_lock(${WEBHOOK_STATUSES_LOCK})`
    await tx`DELETE FROM webhook_registry WHERE instance_id = ${instanceId} OR seen_at <= now() - ${REGISTRY_TTL}::interval`
    if (hooks.length)
      await tx`
        INSERT INTO webhook_registry (instance_id, name, events)
        SELECT ${instanceId}::uuid, h.name, CASE WHEN h.events = '' THEN NULL ELSE string_to_array(h.events, ',') END
        FROM unnest(${pgArray(hooks.map((h) => h.name))}::text[], ${pgArray(hooks.map((h) => h.events?.join(',') ?? ''))}::text[]) AS h(name, events)`
    const registered = await readRegistry(tx)
    const wanted = [...new Set(registered.flatMap((h) => h.events ?? TX_STATUSES))]
    await tx`DELETE FROM webhook_statuses`
    if (wanted.length) await tx`INSERT INTO webhook_statuses (to_status) SELECT unnest(${pgArray(wanted)}::text[]) ON CONFLICT DO NOTHING`
    // The registry as this transaction left it: what the caller checks next, without reading it again.
    return registered
  })
}

/**
 * Deliveries waiting in the queue of a webhook no running instance has: renamed, or its url or events changed
 * while it had no `name` (the default name is derived from them). Nothing sends them; said at start-up and
 * whenever the set changes (checked with each refresh), with what to do, instead of their silently waiting until
 * pg-boss's retention drops them.
 */
function strandedDeliveries(ctx: ServiceContext, log: ServiceContext['log']): (live: Set<string>) => Promise<void> {
  const prefix = webhookQueue('')
  /** What was last said, so a minute's check repeats nothing. */
  let said = ''
  return async (live) => {
    const rows = await ctx.db.sql
      .begin(async (tx) => {
        await tx`SET LOCAL statement_timeout = 5000`
        return tx<{ name: string; waiting: number }[]>`
          SELECT name, count(*)::int AS waiting FROM pgboss.job
          WHERE name LIKE ${`${prefix}%`} AND state IN ('created', 'retry', 'active') GROUP BY name`
      })
      .catch((err: unknown) => {
        log.warn({ err }, 'could not look for webhook deliveries left in queues no webhook has')
        return []
      })
    const stranded = rows.map((r) => ({ webhook: r.name.slice(prefix.length), waiting: r.waiting })).filter((r) => !live.has(r.webhook))
    const text = stranded.map((r) => r.webhook).join(',')
    if (text === said) return
    said = text
    if (stranded.length)
      log.error(
        { queues: Object.fromEntries(stranded.map((r) => [r.webhook, r.waiting])) },
        'webhook deliveries are waiting for webhooks no running instance has (renamed, or an unnamed one whose url or events changed): they are not sent. Give the webhook its old name (`name` in its config) to send them',
      )
  }
}

/** Thrown inside the dispatch transaction when a webhook registered meanwhile has no queue here yet. */
class QueueMissing extends Error {}

export type Webhooks = { dispatchNow: () => Promise<void>; stop: () => Promise<void> }

type Hook = WebhookConfig & { name: string }

/**
 * Where a webhook's POST goes, and its HTTP Basic credentials when its url carries them
 * (`https://user:pass@host/path`). fetch refuses a url with credentials in it: every delivery to one failed
 * ("request failed (TypeError)"), was retried for hours and given up, though the config was accepted.
 */
export function deliveryTarget(url: string): { url: string; authorization: string | null } {
  const u = new URL(url)
  if (!u.username && !u.password) return { url, authorization: null }
  // Percent-decoded as curl does; a raw "%" that is no escape (a password "50%off") is taken as it is, not thrown
  // (that stopped the start).
  const decoded = (s: string) => {
    try {
      return decodeURIComponent(s)
    } catch {
      return s
    }
  }
  const credentials = `${decoded(u.username)}:${decoded(u.password)}`
  u.username = ''
  u.password = ''
  return { url: u.toString(), authorization: `Basic ${Buffer.from(credentials).toString('base64')}` }
}

export function webhookNames(config: WebhookConfig[]): Hook[] {
  return config.map((w) => ({ ...w, name: webhookName(w) }))
}

/**
 * Webhooks: a trigger on transaction_events puts every status change in
 * `webhook_outbox` inside the pipeline's own transaction (so none is lost and the
 * pipeline never waits on a receiver); the dispatcher here moves outbox rows into
 * pg-boss delivery jobs, one per matching webhook, in one transaction; workers POST
 * each with an HMAC-SHA256 signature and pg-boss retries failures with backoff.
 * With no webhooks configured the dispatcher only empties the outbox.
 */
export async function startWebhooks(ctx: ServiceContext): Promise<Webhooks> {
  const hooks = webhookNames(ctx.config.webhooks)
  const byName = new Map(hooks.map((h) => [h.name, h]))
  const targets = new Map(hooks.map((h) => [h.name, deliveryTarget(h.url)]))
  const log = ctx.log.child({ module: 'webhooks' })
  await createQueue(ctx.boss, WEBHOOK_QUEUE, { name: WEBHOOK_QUEUE, ...RETRY })
  for (const h of hooks) await createQueue(ctx.boss, webhookQueue(h.name), { name: webhookQueue(h.name), ...RETRY })
  const instanceId = randomUUID()
  const registered = await recordWantedStatuses(ctx, instanceId, hooks)
  const elsewhere = registered.filter((r) => !byName.has(r.name) && r.live).map((r) => r.name)
  if (elsewhere.length)
    log.warn({ webhooks: elsewhere }, 'webhooks configured on other instances only: their deliveries are queued for the instances that have them')
  /** The webhooks someone delivers: this instance's, and those another instance refreshed lately. */
  const liveNames = (all: typeof registered) => new Set([...byName.keys(), ...all.filter((r) => r.live).map((r) => r.name)])
  const checkStranded = strandedDeliveries(ctx, log)
  await checkStranded(liveNames(registered))
  /** Queues this instance has made sure of: a job for a webhook only other instances have goes to its queue too. */
  const queuesMade = new Set(hooks.map((h) => webhookQueue(h.name)))
  const ensureQueues = async (registered: Registered[]) => {
    for (const r of registered) {
      const queue = webhookQueue(r.name)
      if (queuesMade.has(queue)) continue
      await createQueue(ctx.boss, queue, { name: queue, ...RETRY })
      queuesMade.add(queue)
    }
  }

  async function dispatchBatch(): Promise<number> {
    return ctx.db.sql.begin(async (tx) => {
      // SKIP LOCKED: instances dispatch side by side without taking the same rows.
      const rows = await tx<{ id: number; to_status: string }[]>`
        WITH taken AS (
          DELETE FROM webhook_outbox WHERE event_id IN (
            SELECT event_id FROM webhook_outbox ORDER BY event_id LIMIT ${DISPATCH_BATCH} FOR UPDATE SKIP LOCKED)
          RETURNING event_id
        )
        SELECT e.id, e.to_status FROM taken JOIN transaction_events e ON e.id = taken.event_id ORDER BY e.id`
      if (rows.length === 0) return 0
      // Read after the rows were taken: a webhook whose statuses put a row in the outbox was registered before.
      const registered = await readRegistry(tx)
      if (registered.some((h) => !queuesMade.has(webhookQueue(h.name)))) throw new QueueMissing()
      const jobs: PgBoss.JobInsert<WebhookJob>[] = []
      for (const r of rows)
        for (const h of registered)
          if (!h.events || h.events.includes(r.to_status))
            jobs.push(webhookJob(h.name, r.id))
      if (jobs.length) await ctx.boss.insert(jobs, { db: insertDb(tx) })
      return rows.length
    })
  }

  async function dispatch(): Promise<void> {
    for (let i = 0; i < 20; i++) {
      const taken = await dispatchBatch().catch(async (err: unknown) => {
        if (!(err instanceof QueueMissing)) throw err
        // A webhook another instance registered: its queue is made here (outside the batch's transaction), then again.
        await ensureQueues(await readRegistry(ctx.db.sql))
        return DISPATCH_BATCH
      })
      if (taken < DISPATCH_BATCH) break
    }
  }
  const refresh = setInterval(() => {
    recordWantedStatuses(ctx, instanceId, hooks)
      // Again each minute, not only at start: a webhook renamed in a restart is still "registered" by the run before
      // for a while, and its deliveries were never named.
      .then((all) => checkStranded(liveNames(all)))
      .catch((err: unknown) => log.warn({ err }, 'refreshing the webhooks this instance delivers failed; tried again later'))
  }, REGISTRY_REFRESH_MS)
  refresh.unref()

  type Transaction = Awaited<ReturnType<typeof loadTransactionsJson>>[number]
  /**
   * What a fetched batch of jobs delivers: its events and their transactions as they are now, read with one query
   * per kind for the whole batch (five, where one delivery at a time took four or five each).
   */
  async function loadBatch(
    jobs: PgBoss.Job<WebhookJob>[],
  ): Promise<{ events: Map<number, EventRow>; transactions: Map<string, { json: Transaction; version: number }> }> {
    const events = await ctx.db.sql<EventRow[]>`SELECT * FROM transaction_events WHERE id = ANY(${pgArray(jobs.map((j) => j.data.eventId))}::bigint[])`
    const txIds = [...new Set(events.map((e) => e.transaction_id))]
    // The version in the statement that reads the row (one snapshot): read apart, it could name a change the row
    // read does not show yet, and a receiver would then keep that stale row over the next delivery.
    const rows = txIds.length
      ? await ctx.db.sql<(TransactionRow & { version: number })[]>`
          SELECT t.*, (SELECT max(e.id) FROM transaction_events e WHERE e.transaction_id = t.id) AS version
          FROM transactions t WHERE t.id = ANY(${pgArray(txIds)}::uuid[])`
      : []
    const json = await loadTransactionsJson(ctx, rows)
    return {
      events: new Map(events.map((e) => [Number(e.id), e])),
      transactions: new Map(rows.map((r, i) => [r.id, { json: json[i]!, version: Number(r.version) }])),
    }
  }

  async function deliver(job: PgBoss.Job<WebhookJob>, batch: Awaited<ReturnType<typeof loadBatch>>): Promise<void> {
    const hook = byName.get(job.data.webhook)
    // The config changed since the job was made: nothing to deliver to.
    if (!hook) return log.warn({ webhook: job.data.webhook, eventId: job.data.eventId }, 'webhook no longer configured; dropping delivery')
    const event = batch.events.get(Number(job.data.eventId))
    if (!event) return // pruned with its transaction
    const current = batch.transactions.get(event.transaction_id)
    if (!current) return
    const body = JSON.stringify({
      id: `evt_${event.id}`,
      type: 'transaction.status_changed',
      at: event.at.toISOString(),
      fromStatus: event.from_status,
      toStatus: event.to_status,
      // The transaction now: it may have moved on since this change. Deliveries are not in order, and two of one
      // transaction carry rows read at different times: the one with the higher version is the newer row. (A
      // receiver keeping the last one it got could end on INCLUDED after CONFIRMED, for good.)
      transaction: current.json,
      transactionVersion: current.version,
    })
    const now = Math.floor(Date.now() / 1000)
    let status: number
    const target = targets.get(hook.name)!
    try {
      const res = await fetch(target.url, {
        method: 'POST',
        headers: {
          ...(target.authorization ? { authorization: target.authorization } : {}),
          'content-type': 'application/json',
          'user-agent': 'tx-broadcaster-webhooks',
          'x-webhook-id': `evt_${event.id}`,
          [SIGNATURE_HEADER]: signWebhook(hook.secret, body, now),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      })
      status = res.status
      await res.body?.cancel().catch(() => {})
    } catch (err) {
      // Only the error's kind: fetch's message or cause could quote the URL, which may carry credentials.
      let cause = (err as Error).name
      for (let e = err as { cause?: unknown; code?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++)
        if (typeof e.code === 'string') cause = e.code
      if ((err as Error).name === 'TimeoutError') cause = `timed out after ${DELIVERY_TIMEOUT_MS} ms`
      ctx.metrics?.webhookDeliveries?.inc({ webhook: hook.name, outcome: 'error' })
      throw new Error(`webhook ${hook.name}: request failed (${cause})`)
    }
    if (status < 200 || status >= 300) {
      ctx.metrics?.webhookDeliveries?.inc({ webhook: hook.name, outcome: `http_${Math.floor(status / 100)}xx` })
      // A redirect is not followed (the signature is for this url, and a POST may not be repeated elsewhere): it is
      // retried like a 5xx for hours unless someone reads why.
      if (status >= 300 && status < 400) throw new Error(`webhook ${hook.name}: HTTP ${status}, a redirect (not followed): set the webhook's url to where it points`)
      throw new Error(`webhook ${hook.name}: HTTP ${status}`)
    }
    ctx.metrics?.webhookDeliveries?.inc({ webhook: hook.name, outcome: 'delivered' })
  }

  /**
   * A fetched batch is delivered side by side. Once every delivery has settled, the delivered jobs are
   * completed here, and if any failed the handler throws: pg-boss then fails the batch's jobs, which touches
   * only those not completed (failJobsById matches state < completed), so each failed one is retried with
   * backoff. (Failing them one by one while others still ran let a retry start, and pg-boss's completion of
   * the first batch then marked that running retry completed: the delivery was lost.)
   */
  const deliverBatch = (queue: string) => async (jobs: PgBoss.JobWithMetadata<WebhookJob>[]) => {
    const failed: string[] = []
    const delivered: string[] = []
    const batch = await loadBatch(jobs).catch((err: Error) => {
      // Nothing was sent: pg-boss retries the whole batch. Those on their last try are given up here, said so.
      for (const job of jobs)
        if (job.retryCount >= job.retryLimit) {
          ctx.metrics?.webhookDeliveries?.inc({ webhook: job.data.webhook, outcome: 'given_up' })
          log.error({ webhook: job.data.webhook, eventId: job.data.eventId, attempts: job.retryCount + 1, error: err.message }, 'webhook delivery given up')
        }
      throw new Error(`loading ${jobs.length} deliveries failed: ${err.message}`)
    })
    await Promise.all(
      jobs.map(async (job) => {
        try {
          await deliver(job, batch)
          delivered.push(job.id)
        } catch (err) {
          failed.push(`${job.data.webhook} event ${job.data.eventId}: ${(err as Error).message}`)
          if (job.retryCount >= job.retryLimit) {
            ctx.metrics?.webhookDeliveries?.inc({ webhook: job.data.webhook, outcome: 'given_up' })
            log.error({ webhook: job.data.webhook, eventId: job.data.eventId, attempts: job.retryCount + 1, error: (err as Error).message }, 'webhook delivery given up')
          } else log.warn({ webhook: job.data.webhook, eventId: job.data.eventId, attempt: job.retryCount + 1, error: (err as Error).message }, 'webhook delivery failed; retried later')
        }
      }),
    )
    if (!failed.length) return
    if (delivered.length) await ctx.boss.complete(queue, delivered)
    throw new Error(`${failed.length} of ${jobs.length} deliveries failed: ${failed.slice(0, 3).join('; ')}`)
  }

  const loop: Loop = startLoop('webhook dispatch', DISPATCH_INTERVAL_MS, dispatch, log)
  const queues = hooks.length ? [WEBHOOK_QUEUE, ...hooks.map((h) => webhookQueue(h.name))] : []
  if (hooks.length) log.info({ webhooks: hooks.map((h) => `${h.name} ${redactUrl(h.url)}`) }, 'webhooks on')
  for (const queue of queues)
    for (let i = 0; i < DELIVERY_WORKERS; i++) {
      const deliverAll = deliverBatch(queue)
      let workerId = ''
      workerId = await ctx.boss.work<WebhookJob>(queue, { batchSize: DELIVERY_BATCH, pollingIntervalSeconds: 0.5, includeMetadata: true }, async (jobs) => {
        await deliverAll(jobs)
        // A full batch, all delivered: more are likely waiting, so fetch again at once instead of sleeping the
        // polling interval (which capped a webhook at 2 workers × 50 jobs per 0.5 s: 200 deliveries a second, less
        // than the four status changes of 100 transactions a second). A failing receiver still waits between batches.
        if (jobs.length >= DELIVERY_BATCH) ctx.boss.notifyWorker(workerId)
      })
    }
  return {
    dispatchNow: () => loop.runNow(),
    async stop() {
      clearInterval(refresh)
      await loop.stop()
      for (const queue of queues) await ctx.boss.offWork(queue).catch(() => {})
    },
  }
}
