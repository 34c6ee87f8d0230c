import { request, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../src/common/logger.ts'
import { startService, type RunningService } from '../src/service.ts'
import { ADMIN_KEY, RECIPIENT, startTestEnv, testConfig, waitFor, type TestEnv } from './helpers/testService.ts'

const SUBSCRIPTION = `subscription($id: ID, $status: [TransactionStatus!]) { transactionUpdated(id: $id, status: $status) { id status nonce hash } }`

describe('transactionUpdated subscription across two instances on one Postgres', () => {
  let env: TestEnv
  let other: RunningService
  beforeAll(async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.3 }, config: (c) => (c.chains[0].confirmations = 2) })
    other = await startService({
      config: testConfig(env.anvil.url, (c) => (c.chains[0].confirmations = 2)),
      databaseUrl: env.databaseUrl,
      port: 0,
      host: '127.0.0.1',
      log: createLogger({ level: 'silent', pretty: false }),
    })
  })
  afterAll(async () => {
    await other?.stop()
    await env?.stop()
  })

  it('over WebSocket (graphql-ws) on instance A: every status change of a transaction submitted to instance B, in order', async () => {
    const client = createClient({
      url: `${env.service.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${ADMIN_KEY}` },
    })
    const seen: string[] = []
    let id: string | null = null
    const received: any[] = []
    const done = new Promise<void>((resolve, reject) => {
      client.subscribe(
        { query: SUBSCRIPTION, variables: {} },
        {
          next: (msg: any) => {
            if (msg.errors) return reject(new Error(JSON.stringify(msg.errors)))
            received.push(msg.data.transactionUpdated)
            if (id && msg.data.transactionUpdated.id === id) {
              seen.push(msg.data.transactionUpdated.status)
              if (msg.data.transactionUpdated.status === 'CONFIRMED') resolve()
            }
          },
          error: reject,
          complete: () => {},
        },
      )
    })
    // Registered once it delivers a change: a warm-up request's (a fixed pause before was too short on a slow machine,
    // and the first change went by before the subscription was there).
    const warm = await fetch(`${other.url}/broadcast_transaction`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
      body: JSON.stringify({ to: RECIPIENT, value: '76' }),
    })
    const warmId = ((await warm.json()) as { transactionId: string }).transactionId
    await waitFor('the subscription delivering', async () => received.some((t) => t.id === warmId))
    const res = await fetch(`${other.url}/broadcast_transaction`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
      body: JSON.stringify({ to: RECIPIENT, value: '77' }),
    })
    id = ((await res.json()) as { transactionId: string }).transactionId
    await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout; saw ${seen}`)), 30_000))])
    // Events that arrived before we knew the id belong to it too.
    const all = received.filter((t) => t.id === id).map((t) => t.status)
    expect(all).toEqual(['QUEUED', 'PENDING', 'INCLUDED', 'CONFIRMED'])
    await client.dispose()
  })

  it('a subscription to one transaction starts with it as it is now: one already final sends its final status, once', async () => {
    const submitted = await env.post('/broadcast_transaction', { to: RECIPIENT, value: '79' })
    const id = submitted.json.transactionId
    await waitFor('confirmed', async () => (await env.graphql(`query($id: ID!) { transaction(id: $id) { status } }`, { id })).json.data.transaction.status === 'CONFIRMED')
    const client = createClient({ url: `${env.service.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${ADMIN_KEY}` } })
    const statuses: string[] = []
    const filtered: string[] = []
    const listen = (variables: Record<string, unknown>, into: string[]) =>
      client.subscribe({ query: SUBSCRIPTION, variables }, { next: (msg: any) => into.push(msg.errors ? 'error' : msg.data.transactionUpdated.status), error: () => into.push('error'), complete: () => {} })
    listen({ id }, statuses)
    // Its status is not among those asked for: nothing.
    listen({ id, status: ['FAILED'] }, filtered)
    // Before: nothing at all, and a client that subscribed, then read it while it was still QUEUED, and missed the
    // change to its final status between the two, waited for good.
    await waitFor('the current status', async () => statuses.length > 0, 10_000)
    await new Promise((r) => setTimeout(r, 500))
    expect(statuses).toEqual(['CONFIRMED'])
    expect(filtered).toEqual([])
    await client.dispose()
  })

  it('a burst of more changes than a Repeater queues (1,024) reaches a subscriber whole, in order', async () => {
    const res = await fetch(`${env.service.url}/broadcast_transaction`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
      body: JSON.stringify({ to: RECIPIENT, value: '78' }),
    })
    const id = ((await res.json()) as { transactionId: string }).transactionId
    await waitFor('confirmed', async () => {
      const r = await env.graphql(`query($id: ID!) { transaction(id: $id) { status } }`, { id })
      return r.json.data.transaction.status === 'CONFIRMED'
    })
    const client = createClient({ url: `${env.service.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${ADMIN_KEY}` } })
    const received: string[] = []
    let failure: unknown = null
    client.subscribe(
      { query: SUBSCRIPTION, variables: { id } },
      { next: (msg: any) => (msg.errors ? (failure = msg.errors) : received.push(msg.data.transactionUpdated.nonce)), error: (e) => (failure = e), complete: () => {} },
    )
    const { default: postgres } = await import('postgres')
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    // Registered once it delivers a change (one more event of the transaction); then, once nothing more comes, what
    // the change feed delivered before the burst (its CONFIRMED event, when the feed ran behind the read above under
    // load: a CI run got 1,501) is set aside: it is not the burst's.
    await sql`INSERT INTO transaction_events (transaction_id, from_status, to_status) VALUES (${id}, 'CONFIRMED', 'CONFIRMED')`
    await waitFor('the subscription delivering', async () => received.length > 0)
    for (let before = -1; before !== received.length; ) {
      before = received.length
      await new Promise((r) => setTimeout(r, 500))
    }
    received.length = 0
    // 1,500 events in one statement: one batch of notifications, loaded and pushed to subscribers at once (a block
    // of thousands settled, or the backlog after a stall, looks the same).
    await sql`INSERT INTO transaction_events (transaction_id, from_status, to_status) SELECT ${id}, 'CONFIRMED', 'CONFIRMED' FROM generate_series(1, 1500)`
    await sql.end()
    // Before: the first 1,024 arrived and the rest were dropped (an error logged for each), the client none the wiser.
    await waitFor('all 1,500', async () => received.length >= 1500, 30_000)
    expect(failure).toBeNull()
    expect(received).toHaveLength(1500)
    await client.dispose()
  })

  it('over SSE, filtered by status, and refused without a key', async () => {
    const controller = new AbortController()
    const res = await fetch(`${other.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${ADMIN_KEY}` },
      body: JSON.stringify({ query: SUBSCRIPTION, variables: { status: ['CONFIRMED'] } }),
      signal: controller.signal,
    })
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/)
    const reader = res.body!.getReader()
    await new Promise((r) => setTimeout(r, 300))
    const submitted = await env.post('/broadcast_transaction', { to: RECIPIENT, value: '78' })
    const id = submitted.json.transactionId
    let text = ''
    const deadline = Date.now() + 30_000
    while (!text.includes(id) && Date.now() < deadline) {
      const { value, done } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    controller.abort()
    const events = text
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)))
      .map((p) => p.data?.transactionUpdated)
      .filter(Boolean)
    expect(events.filter((e: any) => e.id === id).map((e: any) => e.status)).toEqual(['CONFIRMED'])
    expect(events.every((e: any) => e.status === 'CONFIRMED')).toBe(true)

    const denied = await fetch(`${other.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: SUBSCRIPTION }),
    })
    expect(denied.status).toBe(401)
  })

  it('an SSE subscriber that stops reading is disconnected once it falls too far behind (its buffered changes were held for as long as it stayed)', async () => {
    const submitted = await env.post('/broadcast_transaction', { to: RECIPIENT, value: '80', data: '0x' + 'ab'.repeat(2_000) })
    const id = submitted.json.transactionId
    const sockets = new Map<number, Socket>()
    const track = (s: Socket) => sockets.set(s.remotePort!, s)
    env.service.server.on('connection', track)
    const { default: postgres } = await import('postgres')
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    const req = request(`${env.service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${ADMIN_KEY}` },
    })
    try {
      req.end(JSON.stringify({ query: `subscription($id: ID) { transactionUpdated(id: $id) { id status data to value nonce hash } }`, variables: { id } }))
      const res = await new Promise<IncomingMessage>((resolve) => req.once('response', resolve))
      expect(res.statusCode).toBe(200)
      // Alive, and reading nothing: its TCP window closes, the server's writes wait, and the stream's buffer fills.
      res.pause()
      const served = sockets.get(req.socket!.localPort!)!
      expect(served.destroyed).toBe(false)
      // 15,000 changes of about 4 KB each (its calldata is in every one), 500 per statement (one notification each).
      for (let i = 0; i < 30; i++)
        await sql`INSERT INTO transaction_events (transaction_id, from_status, to_status) SELECT ${id}, 'PENDING', 'PENDING' FROM generate_series(1, 500)`
      // Before: the subscription was stopped, but what it had buffered stayed until the client read it, which this
      // one never does: the connection and the memory stayed for good.
      await waitFor('the stalled stream to be ended by the server', async () => served.destroyed, 30_000)
    } finally {
      env.service.server.off('connection', track)
      req.destroy()
      await sql.end()
    }
  })

  it('a bad operation on a socket gets a coded error; the socket and its other subscriptions go on', async () => {
    const client = createClient({
      url: `${env.service.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${ADMIN_KEY}` },
      retryAttempts: 0,
    })
    let closed: unknown = null
    client.on('closed', (e: any) => (closed = e?.code ?? 'closed'))
    const updates: string[] = []
    client.subscribe({ query: SUBSCRIPTION, variables: {} }, { next: (msg: any) => updates.push(msg.data?.transactionUpdated?.id), error: () => {}, complete: () => {} })
    const errorsOf = (query: string, variables?: Record<string, unknown>) =>
      new Promise<any[]>((resolve) => {
        client.subscribe({ query, variables }, { next: (msg: any) => resolve(msg.errors ?? []), error: (e: any) => resolve(Array.isArray(e) ? e : [e]), complete: () => {} })
      })
    // Before: a syntax error closed the socket with 4500 (graphql-ws clients do not reconnect after it), and
    // validation errors had no code.
    const syntax = await errorsOf('subscription { transactionUpdated(')
    expect(syntax[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED')
    const unknown = await errorsOf('subscription { transactionUpdated { id nope } }')
    expect(unknown[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED')
    const badVariable = await errorsOf('subscription($id: ID, $s: [TransactionStatus!]) { transactionUpdated(id: $id, status: $s) { id } }', { s: ['SOON'] })
    expect(badVariable[0]?.extensions).toMatchObject({ code: 'INVALID_INPUT', field: 's' })
    // An empty id (an unset variable in a client) is refused: it streamed every transaction's changes.
    const emptyId = await errorsOf(SUBSCRIPTION, { id: '' })
    expect(emptyId[0]?.extensions?.code).toBe('INVALID_ID')
    expect(closed).toBeNull()
    // The first subscription still streams.
    const res = await env.post('/broadcast_transaction', { to: RECIPIENT, value: '78' })
    await waitFor('an update on the first subscription', async () => updates.includes(res.json.transactionId), 15_000)
    await client.dispose()
  })

  it('a WebSocket message over the HTTP body limit (512 KiB) closes the socket, before any key is checked', async () => {
    const ws = new WebSocket(`${env.service.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws')
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)))
    const code = new Promise<number>((resolve) => ws.once('close', (c: number) => resolve(c)))
    ws.send(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(600 * 1024) } }))
    expect(await code).toBe(1009)
  })

})

describe('graphql-ws authentication', () => {
  it('closes the socket when the key is wrong', async () => {
    const env = await startTestEnv()
    try {
      const client = createClient({
        url: `${env.service.url.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: 'Bearer wrong-key-0123456789' },
        retryAttempts: 0,
      })
      const outcome = await new Promise<string>((resolve) => {
        client.subscribe({ query: SUBSCRIPTION }, { next: () => resolve('data'), error: (e: any) => resolve(`closed ${e?.code ?? e}`), complete: () => resolve('complete') })
      })
      expect(outcome).toBe('closed 4403')
      await client.dispose()
    } finally {
      await env.stop()
    }
  })
})
