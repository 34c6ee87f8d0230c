import { afterAll, describe, expect, it } from 'vitest'
import { createLogger } from '../src/common/logger.ts'
import { startAnvil, type Anvil } from '../src/dev/startAnvil.ts'
import { startService, type RunningService } from '../src/service.ts'
import { createTestDatabase } from './helpers/database.ts'
import { startTcpProxy, type TcpProxy } from './helpers/tcpProxy.ts'
import { ADMIN_KEY, RECIPIENT, testConfig, waitFor } from './helpers/testService.ts'

describe('Postgres goes away and comes back', () => {
  let anvil: Anvil
  let db: { url: string; drop: () => Promise<void> }
  let proxy: TcpProxy
  let service: RunningService
  afterAll(async () => {
    proxy?.restore()
    await service?.stop()
    await proxy?.close()
    await anvil?.stop()
    await db?.drop()
  })

  it('/readyz turns 503 while the database is unreachable and 200 after; nothing accepted is lost, nothing is accepted while down', async () => {
    anvil = await startAnvil({ blockTimeSec: 0.3 })
    db = await createTestDatabase()
    const direct = new URL(db.url)
    proxy = await startTcpProxy(Number(direct.port || 5432), direct.hostname)
    const viaProxy = new URL(db.url)
    viaProxy.port = String(proxy.port)
    service = await startService({
      config: testConfig(anvil.url),
      databaseUrl: viaProxy.toString(),
      port: 0,
      host: '127.0.0.1',
      log: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false }),
    })
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` }
    const submit = async (value: number) => {
      try {
        const res = await fetch(`${service.url}/broadcast_transaction`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ to: RECIPIENT, value: String(value) }),
          signal: AbortSignal.timeout(10_000),
        })
        return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { transactionId?: string; error?: { code: string } } }
      } catch {
        return { status: 0, retryAfter: null, body: {} }
      }
    }
    const readyz = async () => (await fetch(`${service.url}/readyz`, { signal: AbortSignal.timeout(5_000) }).catch(() => null))?.status ?? 0
    const statusOf = async (id: string) => {
      const res = await fetch(`${service.url}/transactions/${id}`, { headers, signal: AbortSignal.timeout(5_000) }).catch(() => null)
      return res && res.status === 200 ? ((await res.json()) as { status: string }).status : null
    }

    const accepted: string[] = []
    for (let i = 1; i <= 5; i++) {
      const r = await submit(i)
      expect(r.status).toBe(200)
      accepted.push(r.body.transactionId!)
    }
    await waitFor('ready', async () => (await readyz()) === 200)

    proxy.cut()
    await waitFor('not ready', async () => (await readyz()) === 503, 20_000, 250)
    // While the database is away, nothing may be reported accepted.
    const during = await Promise.all([6, 7, 8].map(submit))
    // And each hears so: 503 UNAVAILABLE with a Retry-After, within its 10 s (before: 500 INTERNAL, or nothing).
    for (const r of during) expect(r).toMatchObject({ status: 503, retryAfter: '5', body: { error: { code: 'UNAVAILABLE' } } })
    const graphql = await fetch(`${service.url}/graphql`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query: `mutation { broadcastTransaction(input: { chainId: 31337, to: "${RECIPIENT}", value: "12" }) { id } }` }),
      signal: AbortSignal.timeout(10_000),
    }).then(async (res) => (await res.json()) as { errors?: { extensions: { code: string; retryAfterSeconds: number } }[] })
    expect(graphql.errors?.[0]?.extensions).toMatchObject({ code: 'UNAVAILABLE', retryAfterSeconds: 5 })

    proxy.restore()
    await waitFor('ready again', async () => (await readyz()) === 200, 30_000, 250)
    for (let i = 9; i <= 11; i++) {
      const r = await waitFor(`accepted ${i}`, async () => {
        const res = await submit(i)
        return res.status === 200 && res
      }, 20_000, 250)
      accepted.push(r.body.transactionId!)
    }
    let last: (string | null)[] = []
    await waitFor('all accepted CONFIRMED', async () => (last = await Promise.all(accepted.map(statusOf))).every((s) => s === 'CONFIRMED'), 60_000, 500).catch((err) => {
      throw new Error(`${(err as Error).message}; statuses: ${last.join(', ')}`)
    })
  }, 180_000)
})
