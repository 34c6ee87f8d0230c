import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SIGNATURE_HEADER, verifyWebhook } from '../src/webhooks/signWebhook.ts'
import { submit, waitForStatus } from './helpers/chainControl.ts'
import { runCli } from './helpers/cli.ts'
import { createLogger } from '../src/common/logger.ts'
import { startService, type RunningService } from '../src/service.ts'
import { ADMIN_KEY, capturedLogger, RECIPIENT, startTestEnv, testConfig, waitFor, type TestEnv } from './helpers/testService.ts'
import { webhookName } from '../src/config/schema.ts'
import { webhookQueue } from '../src/webhooks/webhooks.ts'
import postgres from 'postgres'

const silent = createLogger({ level: 'silent', pretty: false })

const SECRET_ALL = 'whsec-all-0123456789abcdef'
const SECRET_FINAL = 'whsec-final-0123456789abcdef'

type Received = { path: string; id: string; signature: string; body: string; json: any; authorization: string | undefined }

describe('webhooks', () => {
  let env: TestEnv
  let receiver: Server
  const received: Received[] = []
  let failFirst = true

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = ''
      req.on('data', (d) => (body += d))
      req.on('end', () => {
        received.push({
          path: req.url!,
          id: String(req.headers['x-webhook-id']),
          signature: String(req.headers[SIGNATURE_HEADER]),
          body,
          json: JSON.parse(body),
          authorization: req.headers.authorization,
        })
        // The first delivery to /all fails: pg-boss must retry it.
        if (req.url === '/all' && failFirst) {
          failFirst = false
          res.writeHead(500).end('try later')
          return
        }
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()))
    const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
    // A receiver that is down (a port nothing listens on any more) must not hold anything up.
    const gone = createServer()
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', () => r()))
    const closedPort = (gone.address() as AddressInfo).port
    await new Promise((r) => gone.close(r))
    env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      config: (c) =>
        (c.webhooks = [
          { name: 'all', url: `${base}/all`, secret: SECRET_ALL },
          // Credentials in the url (fetch refuses such a url): sent as HTTP Basic.
          { name: 'final', url: base.replace('//', '//hook:s%3Acret%40@') + '/final', secret: SECRET_FINAL, events: ['CONFIRMED', 'FAILED'] },
          { name: 'down', url: `http://127.0.0.1:${closedPort}/hook`, secret: 'whsec-down-0123456789abcdef' },
        ]),
    })
  })
  afterAll(async () => {
    await env?.stop()
    await new Promise((r) => receiver?.close(r))
  })

  it('POSTs each status change, signed with HMAC-SHA256, retried after a failure; filters by status; a dead receiver blocks nothing', async () => {
    const id = await submit(env, { to: RECIPIENT, value: '77' })
    await waitForStatus(env, id, 'CONFIRMED')
    const delivered = (path: string) => {
      const ok = received.filter((r) => r.path === path)
      // By event id: the retried one arrives twice (500, then 204).
      return [...new Map(ok.map((r) => [r.id, r])).values()]
    }
    await waitFor('all four status changes at /all', async () => delivered('/all').length >= 4 && received.filter((r) => r.path === '/all').length >= 5, 30_000)
    await waitFor('CONFIRMED at /final', async () => delivered('/final').length >= 1, 30_000)
    const all = delivered('/all').sort((a, b) => Number(a.id.slice(4)) - Number(b.id.slice(4)))
    expect(all.map((r) => r.json.toStatus)).toEqual(['QUEUED', 'PENDING', 'INCLUDED', 'CONFIRMED'])
    expect(all.map((r) => r.json.fromStatus)).toEqual([null, 'QUEUED', 'PENDING', 'INCLUDED'])
    for (const r of all) {
      expect(r.json.type).toBe('transaction.status_changed')
      expect(r.json.id).toBe(r.id)
      expect(r.json.transaction.id).toBe(id)
      expect(r.json.transaction.value).toBe('77')
      expect(verifyWebhook(SECRET_ALL, r.body, r.signature)).toBe(true)
      expect(verifyWebhook(SECRET_FINAL, r.body, r.signature)).toBe(false)
      expect(verifyWebhook(SECRET_ALL, r.body.replace('77', '78'), r.signature)).toBe(false)
    }
    // Each body says how new its transaction row is: a receiver keeping the highest version ends on the final
    // status whatever order the bodies come in (not in order, as the README says); the last one got could be INCLUDED.
    for (const r of all) expect(r.json.transactionVersion).toBeGreaterThanOrEqual(Number(r.id.slice(4)))
    for (const order of [all, [...all].reverse(), [all[3]!, all[0]!, all[2]!, all[1]!]]) {
      const kept = order.reduce((best, r) => (r.json.transactionVersion > best.json.transactionVersion ? r : best))
      expect(kept.json.transaction.status).toBe('CONFIRMED')
    }
    // One of them was refused once and delivered on a retry.
    expect(received.filter((r) => r.path === '/all').length).toBe(5)
    const final = delivered('/final')
    expect(final.map((r) => r.json.toStatus)).toEqual(['CONFIRMED'])
    expect(verifyWebhook(SECRET_FINAL, final[0]!.body, final[0]!.signature)).toBe(true)
    expect(final[0]!.authorization).toBe(`Basic ${Buffer.from('hook:s:cret@').toString('base64')}`)
    expect(all[0]!.authorization).toBeUndefined()
    // Nothing secret in the payload.
    expect(received.map((r) => r.body).join('')).not.toMatch(/whsec|test-admin-key/)

    const metrics = await (await fetch(`${env.service.url}/metrics`)).text()
    expect(metrics).toMatch(/txb_webhook_deliveries_total\{webhook="all",outcome="delivered"\} 4/)
    expect(metrics).toMatch(/txb_webhook_deliveries_total\{webhook="all",outcome="http_5xx"\} 1/)
    expect(metrics).toMatch(/txb_webhook_deliveries_total\{webhook="down",outcome="error"\} \d+/)
    // The backlog: nothing left for the receivers that answer; the four status changes for the dead one wait.
    let scraped = ''
    await waitFor('the backlog gauges settle', async () => {
      scraped = await (await fetch(`${env.service.url}/metrics`)).text()
      return /txb_webhook_backlog\{webhook="all"\} 0\b/.test(scraped) && /txb_webhook_backlog\{webhook="down"\} 4\b/.test(scraped)
    })
    expect(scraped).toMatch(/txb_webhook_backlog\{webhook="final"\} 0\b/)
    expect(Number(/txb_webhook_oldest_seconds\{webhook="down"\} ([\d.e+-]+)/.exec(scraped)?.[1])).toBeGreaterThan(0)
    expect(scraped).not.toMatch(/txb_webhook_oldest_seconds\{webhook="all"\}/)
  })

  it('a second instance on the database with other webhooks (none, or one of its own) takes none away: each webhook gets every change', async () => {
    // A canary without webhooks, and a newer version with one more, side by side with the first instance (a
    // rolling deploy). Before, the last one started decided for all: the first one's webhooks got nothing more.
    const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
    const others: RunningService[] = []
    try {
      // The newer version also widens "final" to QUEUED: the union counts (the one refreshed last decided before).
      const newer = [
        { name: 'extra', url: `${base}/extra`, secret: 'whsec-extra-0123456789abcdef', events: ['QUEUED', 'CONFIRMED'] },
        { name: 'final', url: `${base}/final`, secret: SECRET_FINAL, events: ['QUEUED'] },
      ]
      for (const webhooks of [[], newer])
        others.push(await startService({ config: testConfig(env.anvil.url, (c) => (c.webhooks = webhooks)), databaseUrl: env.databaseUrl, port: 0, host: '127.0.0.1', log: silent }))
      // Submitted to the first instance, and to the canary.
      const ids = [await submit(env, { to: RECIPIENT, value: '78' })]
      const res = await fetch(`${others[0]!.url}/broadcast_transaction`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
        body: JSON.stringify({ chainId: 31337, to: RECIPIENT, value: '79' }),
      })
      ids.push(((await res.json()) as { transactionId: string }).transactionId)
      for (const id of ids) await waitForStatus(env, id, 'CONFIRMED')
      const statuses = (path: string, id: string) => [...new Map(received.filter((r) => r.path === path && r.json.transaction.id === id).map((r) => [r.id, r.json.toStatus])).values()].sort()
      for (const id of ids) {
        await waitFor(`every change of ${id} at /all, QUEUED and CONFIRMED at /final and /extra`, async () =>
          statuses('/all', id).length === 4 && statuses('/final', id).length === 2 && statuses('/extra', id).length === 2, 30_000)
        expect(statuses('/all', id)).toEqual(['CONFIRMED', 'INCLUDED', 'PENDING', 'QUEUED'])
        expect(statuses('/final', id)).toEqual(['CONFIRMED', 'QUEUED'])
        expect(statuses('/extra', id)).toEqual(['CONFIRMED', 'QUEUED'])
      }
    } finally {
      for (const s of others) await s.stop()
    }
  })

  it('tx-broadcaster webhooks replay delivers a window of status changes again, with their ids (after a receiver lost them)', async () => {
    // After the earlier tests' changes (this machine's clock is the database's).
    const since = new Date()
    const id = await submit(env, { to: RECIPIENT, value: '80' })
    await waitForStatus(env, id, 'CONFIRMED')
    const finals = () => received.filter((r) => r.path === '/final' && r.json.transaction.id === id && r.json.toStatus === 'CONFIRMED')
    await waitFor('CONFIRMED at /final', async () => finals().length === 1, 30_000)
    const first = finals()[0]!
    const res = await runCli(['webhooks', 'replay', '--name', 'final', '--since', since.toISOString()], { DATABASE_URL: env.databaseUrl })
    expect(res.stderr).toBe('')
    expect(res.code).toBe(0)
    // Only what "final" takes (CONFIRMED, FAILED, and QUEUED since the test before: the union of the configs that
    // have it), only in the window: this one's QUEUED and CONFIRMED.
    expect(res.stdout).toMatch(/^queued 2 deliveries for webhook "final"/)
    await waitFor('the CONFIRMED delivered again', async () => finals().length === 2, 30_000)
    expect(finals()[1]!.id).toBe(first.id)
    expect(verifyWebhook(SECRET_FINAL, finals()[1]!.body, finals()[1]!.signature)).toBe(true)
    const unknown = await runCli(['webhooks', 'replay', '--name', 'nope', '--since', since.toISOString()], { DATABASE_URL: env.databaseUrl })
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(/no running instance has a webhook named "nope"/)
    // One still in the registry, but no running instance has refreshed it for minutes (renamed or removed): nothing
    // would deliver a replay. It was "queued N deliveries", exit 0, and none was ever sent.
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      await sql`INSERT INTO webhook_registry (instance_id, name, events, seen_at) VALUES (gen_random_uuid(), 'renamed', NULL, now() - interval '5 minutes')`
      const stale = await runCli(['webhooks', 'replay', '--name', 'renamed', '--since', since.toISOString()], { DATABASE_URL: env.databaseUrl })
      expect(stale.code).toBe(1)
      expect(stale.stderr).toMatch(/no running instance has a webhook named "renamed" now \(it was in a config minutes ago: renamed or removed\?\)/)
      expect((await sql`SELECT count(*)::int AS n FROM pgboss.job WHERE name = ${webhookQueue('renamed')}`)[0]!.n).toBe(0)
    } finally {
      await sql.end()
    }
    const badTime = await runCli(['webhooks', 'replay', '--name', 'final', '--since', 'yesterday'], { DATABASE_URL: env.databaseUrl })
    expect(badTime.code).toBe(2)
    expect(badTime.stderr).toMatch(/--since: expected an ISO 8601 time/)
    const noZone = await runCli(['webhooks', 'replay', '--name', 'final', '--since', '2026-11-27T08:00'], { DATABASE_URL: env.databaseUrl })
    expect(noZone.stderr).toMatch(/--since: give the time zone, e.g. 2026-11-27T08:00Z/)
    const noName = await runCli(['webhooks', 'replay', '--name', '--since', since.toISOString()], { DATABASE_URL: env.databaseUrl })
    expect(noName.stderr).toMatch(/--name needs a value/)
  })
})

describe('deliveries left in the queue of a webhook no running instance has', () => {
  it('are named at start-up, with what to do (they waited, unsent, without a word)', async () => {
    const gone = createServer()
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', () => r()))
    const url = `http://127.0.0.1:${(gone.address() as AddressInfo).port}/hook`
    await new Promise((r) => gone.close(r))
    const secret = 'whsec-gone-0123456789abcdef'
    const env = await startTestEnv({ anvil: { blockTimeSec: 0.2 }, config: (c) => (c.webhooks = [{ url, secret, events: ['QUEUED'] }]) })
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      const old = webhookName({ url, events: ['QUEUED'] })
      await submit(env, { to: RECIPIENT, value: '1' })
      await waitFor('the delivery to the dead receiver waits in its queue', async () =>
        (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pgboss.job WHERE name = ${webhookQueue(old)} AND state IN ('created', 'retry', 'active')`)[0]!.n > 0)
      // The webhook is back with one more status and no name, so under another (derived) name, after a restart: the
      // run before's registration is minutes old, not refreshed since (it still counted as a live webhook before).
      await sql`UPDATE webhook_registry SET seen_at = now() - interval '3 minutes'`
      const { log, lines } = capturedLogger('warn')
      const next = await startService({
        config: testConfig(env.anvil.url, (c) => (c.webhooks = [{ url, secret, events: ['QUEUED', 'CONFIRMED'] }])),
        databaseUrl: env.databaseUrl,
        port: 0,
        host: '127.0.0.1',
        log,
      })
      await next.stop()
      const said = lines.find((l) => l.includes('no running instance has'))
      expect(said).toBeDefined()
      expect(JSON.parse(said!).queues[old]).toBeGreaterThan(0)
      expect(said).toContain('Give the webhook its old name')
    } finally {
      await sql.end()
      await env.stop()
    }
  })
})
