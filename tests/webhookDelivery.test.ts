import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { submit, waitForStatus } from './helpers/chainControl.ts'
import { RECIPIENT, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

/**
 * A receiver that never answers (each POST waits out the 10 s timeout, then is retried) must not hold up the
 * others: before, all webhooks shared one queue and four one-job workers, so a fast receiver got 6 of its 40
 * deliveries in 40 s behind a hanging one.
 */
describe('webhook delivery beside a hanging receiver', () => {
  let env: TestEnv
  let receiver: Server
  const fast: string[] = []
  let slowHits = 0

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      if (req.url === '/slow') {
        slowHits++
        return // never answers
      }
      let body = ''
      req.on('data', (d) => (body += d))
      req.on('end', () => {
        fast.push(JSON.parse(body).id)
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()))
    const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
    env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      config: (c) =>
        (c.webhooks = [
          { url: `${base}/slow`, secret: 'whsec-slow-0123456789abcdef' },
          { url: `${base}/fast`, secret: 'whsec-fast-0123456789abcdef' },
        ]),
    })
  })
  afterAll(async () => {
    await env?.stop()
    receiver?.closeAllConnections()
    await new Promise((r) => receiver?.close(r))
  })

  it('the fast receiver gets every status change of 10 transactions while the hanging one is still timing out', async () => {
    const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => submit(env, { to: RECIPIENT, value: String(i + 1) })))
    for (const id of ids) await waitForStatus(env, id, 'CONFIRMED')
    await waitFor('40 deliveries at /fast', async () => new Set(fast).size >= 40, 20_000)
    expect(new Set(fast).size).toBe(40)
    expect(slowHits).toBeGreaterThan(0)
  })
})

/**
 * Failures inside a batch whose other deliveries still run: each failed one must be retried until delivered.
 * Before, a failed job was failed at once, its retry could start on the other worker, and the first batch's
 * completion then marked that running retry completed: 6 of 24 deliveries were never made.
 */
describe('webhook retries while the rest of the batch still runs', () => {
  let env: TestEnv
  let receiver: Server
  const tries = new Map<string, number>()
  const delivered = new Set<string>()

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      const id = String(req.headers['x-webhook-id'])
      const n = (tries.get(id) ?? 0) + 1
      tries.set(id, n)
      req.resume()
      // Odd events: the first try hangs (10 s timeout). Even ones: 503, then a hang, then delivered.
      if (Number(id.slice(4)) % 2 === 1) {
        if (n === 1) return
      } else if (n === 1) return void res.writeHead(503).end()
      else if (n === 2) return
      delivered.add(id)
      res.writeHead(204).end()
    })
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()))
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`
    env = await startTestEnv({ anvil: { blockTimeSec: 0.2 }, config: (c) => (c.webhooks = [{ name: 'h', url, secret: 'whsec-0123456789abcdef' }]) })
  })
  afterAll(async () => {
    await env?.stop()
    receiver?.closeAllConnections()
    await new Promise((r) => receiver?.close(r))
  })

  it('every status change of 6 transactions is delivered in the end', async () => {
    const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => submit(env, { to: RECIPIENT, value: String(i + 1) })))
    for (const id of ids) await waitForStatus(env, id, 'CONFIRMED')
    await waitFor('24 deliveries', async () => delivered.size >= 24, 60_000, 200)
    expect(delivered.size).toBe(24)
  }, 90_000)
})
