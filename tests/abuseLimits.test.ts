import { createClient } from 'graphql-ws'
import postgres from 'postgres'
import WebSocket from 'ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_KEY, RECIPIENT, SIGNER, startTestEnv, type TestEnv } from './helpers/testService.ts'

const OTHER = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC'
const keys = {
  policy: 'policy-submitter-key-0123456789',
  floodA: 'flood-a-reader-key-0123456789',
  floodB: 'flood-b-reader-key-0123456789',
  floodWs: 'flood-ws-reader-key-012345678',
  inflight: 'inflight-submitter-key-012345',
  gas: 'gas-submitter-key-0123456789',
  inflightBurst: 'inflight-burst-key-0123456789',
  inflightSlow: 'inflight-slow-key-01234567890',
  watcher: 'watcher-reader-key-0123456789',
  sockets: 'sockets-reader-key-0123456789',
}

/** Per-key rate limit and in-flight cap, per-chain policies, and GraphQL query limits. */
describe('abuse limits', () => {
  let env: TestEnv
  let sql: postgres.Sql
  const call = async (path: string, key: string, body?: unknown) => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` }
    const res = await fetch(`${env.service.url}${path}`, body === undefined ? { headers } : { method: 'POST', headers, body: JSON.stringify(body) })
    const text = await res.text()
    return { status: res.status, retryAfter: res.headers.get('retry-after'), json: JSON.parse(text) as any }
  }
  const gql = (key: string, query: string, variables?: unknown) => call('/graphql', key, { query, variables })
  const rows = async () => Number((await sql`SELECT count(*)::int AS n FROM transactions`)[0]!.n)

  beforeAll(async () => {
    env = await startTestEnv({
      // No blocks: accepted transactions stay in flight.
      anvil: { noMining: true },
      config: (c) => {
        c.apiKeys.push(
          { name: 'policy', role: 'submitter', key: keys.policy },
          { name: 'flood-a', role: 'reader', key: keys.floodA },
          { name: 'flood-b', role: 'reader', key: keys.floodB },
          { name: 'flood-ws', role: 'reader', key: keys.floodWs },
          { name: 'inflight', role: 'submitter', key: keys.inflight },
          { name: 'gas', role: 'submitter', key: keys.gas },
          { name: 'inflight-burst', role: 'submitter', key: keys.inflightBurst },
          { name: 'inflight-slow', role: 'submitter', key: keys.inflightSlow },
          { name: 'watcher', role: 'reader', key: keys.watcher },
          { name: 'sockets', role: 'reader', key: keys.sockets },
        )
        c.limits = { requestsPerSecond: 5, burst: 20, maxInFlightPerKey: 3, maxSubscriptionsPerKey: 3, maxWebSocketsPerKey: 3 }
        // Any case in the config: compared checksummed.
        c.chains[0].policy = { allowedTo: [RECIPIENT.toLowerCase(), OTHER], maxValue: '1000', maxGasLimit: '100000' }
      },
    })
    sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
  })
  afterAll(async () => {
    await sql?.end()
    await env?.stop()
  })

  it('a burst over the rate gets 429 RATE_LIMITED with Retry-After (REST and GraphQL); another key is unaffected', async () => {
    const missing = '/transactions/00000000-0000-4000-8000-000000000000'
    const started = performance.now()
    const burst = await Promise.all(Array.from({ length: 60 }, () => call(missing, keys.floodA)))
    const elapsedSeconds = (performance.now() - started) / 1000
    const limited = burst.filter((r) => r.status === 429)
    // The burst of 20, plus what refilled at 5/s while the requests were in flight.
    const served = burst.filter((r) => r.status === 404).length
    expect(served).toBeGreaterThanOrEqual(20)
    expect(served).toBeLessThanOrEqual(20 + Math.ceil(5 * elapsedSeconds))
    expect(limited.length).toBe(60 - served)
    expect(burst.every((r) => r.status === 404 || r.status === 429)).toBe(true)
    for (const r of limited) {
      expect(r.json.error.code).toBe('RATE_LIMITED')
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1)
    }
    // GraphQL shares the key's bucket. Several at once: on a busy machine tokens may have refilled since the
    // burst (one per 200 ms; a few after a stall), so a few requests could pass.
    const gs = await Promise.all(Array.from({ length: 25 }, () => gql(keys.floodA, '{ transactions { edges { node { id } } } }')))
    expect(gs.every((r) => r.status === 200 || r.status === 429)).toBe(true)
    const g = gs.find((r) => r.status === 429)!
    expect(g).toBeDefined()
    expect(Number(g.retryAfter)).toBeGreaterThanOrEqual(1)
    expect(g.json.errors[0].extensions.code).toBe('RATE_LIMITED')
    // The other key has its own bucket.
    const other = await Promise.all(Array.from({ length: 15 }, () => call(missing, keys.floodB)))
    expect(other.map((r) => r.status)).toEqual(Array(15).fill(404))
    expect((await gql(keys.floodB, '{ transactions { edges { node { id } } } }')).status).toBe(200)
    // The bucket refills at 5/s.
    await new Promise((r) => setTimeout(r, 1_100))
    expect((await call(missing, keys.floodA)).status).toBe(404)
  })

  it('over WebSocket the same key limit counts the connection and each operation: a burst gets RATE_LIMITED', async () => {
    const client = createClient({
      url: `${env.service.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${keys.floodWs}` },
      lazy: false,
    })
    const run = () =>
      new Promise<any>((resolve, reject) => {
        let result: any
        client.subscribe({ query: '{ transactions(first: 1) { edges { node { id } } } }' }, { next: (r) => (result = r), error: (e) => resolve({ errors: e }), complete: () => resolve(result) })
        setTimeout(() => reject(new Error('no answer over the socket')), 10_000)
      })
    try {
      const started = performance.now()
      const results = await Promise.all(Array.from({ length: 40 }, run))
      const elapsedSeconds = (performance.now() - started) / 1000
      const served = results.filter((r) => r?.data?.transactions).length
      const limited = results.filter((r) => (Array.isArray(r?.errors) ? r.errors : []).some((e: any) => e.extensions?.code === 'RATE_LIMITED'))
      // The connection took one token of the burst of 20; the rest refilled at 5/s meanwhile.
      expect(served).toBeGreaterThanOrEqual(15)
      expect(served).toBeLessThanOrEqual(19 + Math.ceil(5 * elapsedSeconds))
      expect(limited.length).toBe(40 - served)
      expect(limited[0].errors[0].extensions.retryAfterSeconds).toBeGreaterThanOrEqual(1)
      // A new connection while the bucket is empty is closed with 1013 (try again later), not 4403 as for a wrong key. On a slow
      // machine a token may refill (one per 200 ms) before the connection arrives: then it is accepted, so empty
      // the bucket again and retry (it used to wait for a close that never came).
      const connect = () =>
        new Promise<{ code: number; reason: string }>((resolve, reject) => {
          const socket = new WebSocket(`${env.service.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws')
          socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${keys.floodWs}` } })))
          socket.on('message', (m) => {
            if (JSON.parse(m.toString()).type === 'connection_ack') {
              socket.close()
              resolve({ code: 0, reason: 'accepted' })
            }
          })
          socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))
          socket.on('error', reject)
        })
      let closed = await connect()
      for (let attempt = 0; closed.code === 0 && attempt < 5; attempt++) {
        await Promise.all(Array.from({ length: 10 }, run))
        closed = await connect()
      }
      expect(closed.code).toBe(1013)
      expect(closed.reason).toMatch(/^RATE_LIMITED/)
    } finally {
      await client.dispose()
    }
  })

  const restPolicy: Array<[string, Record<string, unknown>, string, string]> = [
    ['recipient not listed', { to: '0x90F79bf6EB2c4f870365E785982E1f101E93b906' }, 'TO_NOT_ALLOWED', 'to'],
    ['contract creation', { data: '0x6000' }, 'TO_NOT_ALLOWED', 'to'],
    ['value over maxValue', { to: RECIPIENT, value: '1001' }, 'VALUE_TOO_HIGH', 'value'],
    ['gasLimit over maxGasLimit', { to: OTHER, gasLimit: '100001' }, 'GAS_LIMIT_TOO_HIGH', 'gasLimit'],
  ]
  it.each(restPolicy)('policy, REST: %s → 400 %s on %s', async (_, body, code, field) => {
    const res = await call('/broadcast_transaction', keys.policy, body)
    expect(res.status).toBe(400)
    expect(res.json.error).toMatchObject({ code, field })
    expect(await rows()).toBe(0)
  })

  it('policy, GraphQL: the same codes and fields; allowed requests pass', async () => {
    const m = `mutation($i: BroadcastTransactionInput!) { broadcastTransaction(input: $i) { id } }`
    for (const [, input, code, field] of restPolicy) {
      const res = await gql(keys.policy, m, { i: input })
      expect(res.json.errors[0].extensions).toMatchObject({ code, field })
    }
    expect(await rows()).toBe(0)
    const ok = await call('/broadcast_transaction', keys.policy, { to: OTHER, value: '1000', gasLimit: '100000' })
    expect(ok.status).toBe(200)
    expect(await rows()).toBe(1)
  })

  it('policy maxGasLimit also caps estimates: over it → FAILED GAS_LIMIT_TOO_HIGH; a margin over it is cut back', async () => {
    // Calldata floor (EIP-7623, anvil's default hardfork): 40 gas per non-zero byte. 5,000 bytes estimate at 221,000;
    // 1,800 bytes at 93,000, +20 % margin = 111,600, over the cap of 100,000.
    const over = await call('/broadcast_transaction', keys.gas, { to: RECIPIENT, data: `0x${'ff'.repeat(5_000)}` })
    const near = await call('/broadcast_transaction', keys.gas, { to: RECIPIENT, data: `0x${'ff'.repeat(1_800)}` })
    expect([over.status, near.status]).toEqual([200, 200])
    const q = `query($id: ID!) { transaction(id: $id) { status error { code message } attempts { gasLimit } } }`
    const read = async (id: string) => (await gql(keys.gas, q, { id })).json.data?.transaction
    let a: any, b: any
    for (let i = 0; i < 60; i++) {
      ;[a, b] = [await read(over.json.transactionId), await read(near.json.transactionId)]
      if (a?.status === 'FAILED' && b?.attempts?.length) break
      await new Promise((r) => setTimeout(r, 500))
    }
    expect(a.status).toBe('FAILED')
    expect(a.error.code).toBe('GAS_LIMIT_TOO_HIGH')
    expect(a.error.message).toMatch(/maxGasLimit 100000/)
    expect(b, JSON.stringify(b)).toMatchObject({ status: 'PENDING' })
    expect(b.attempts[0].gasLimit).toBe('100000')
  })

  it('a key at maxInFlightPerKey unfinished transactions gets 429 TOO_MANY_IN_FLIGHT; other keys still submit', async () => {
    for (let i = 0; i < 2; i++) expect((await call('/broadcast_transaction', keys.inflight, { to: RECIPIENT, value: String(i + 1) })).status).toBe(200)
    const third = await call('/broadcast_transaction', keys.inflight, { to: RECIPIENT, value: '3', idempotencyKey: 'retried-1' })
    expect(third.status).toBe(200)
    const over = await call('/broadcast_transaction', keys.inflight, { to: RECIPIENT, value: '9' })
    expect(over.status).toBe(429)
    // A client retrying a request it already made gets that transaction, not 429 (it adds nothing in flight);
    // a new idempotency key is over the cap like any new request.
    const retried = await call('/broadcast_transaction', keys.inflight, { to: RECIPIENT, value: '3', idempotencyKey: 'retried-1' })
    expect(retried.status).toBe(200)
    expect(retried.json.transactionId).toBe(third.json.transactionId)
    expect((await call('/broadcast_transaction', keys.inflight, { to: RECIPIENT, value: '3', idempotencyKey: 'retried-2' })).status).toBe(429)
    expect(over.json.error.code).toBe('TOO_MANY_IN_FLIGHT')
    expect(Number(over.retryAfter)).toBeGreaterThanOrEqual(1)
    // Still over after the cached count is reloaded from Postgres.
    await new Promise((r) => setTimeout(r, 1_100))
    const g = await gql(keys.inflight, `mutation($i: BroadcastTransactionInput!) { broadcastTransaction(input: $i) { id } }`, { i: { to: RECIPIENT } })
    expect(g.json.errors[0].extensions.code).toBe('TOO_MANY_IN_FLIGHT')
    const n = await sql`SELECT count(*)::int AS n FROM transactions WHERE api_key_name = 'inflight'`
    expect(n[0]!.n).toBe(3)
    expect((await call('/broadcast_transaction', keys.policy, { to: RECIPIENT, value: '5' })).status).toBe(200)
  })

  it('requests of a key sent at once cannot pass maxInFlightPerKey together', async () => {
    // All 15 saw the same cached count (0) and all were let in: the cap held only for requests sent one by one.
    const burst = await Promise.all(Array.from({ length: 15 }, (_, i) => call('/broadcast_transaction', keys.inflightBurst, { to: RECIPIENT, value: String(100 + i) })))
    expect(burst.filter((r) => r.status === 200)).toHaveLength(3)
    expect(new Set(burst.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.json.error.code}`))).toEqual(new Set(['429 TOO_MANY_IN_FLIGHT']))
    const n = await sql`SELECT count(*)::int AS n FROM transactions WHERE api_key_name = 'inflight-burst'`
    expect(n[0]!.n).toBe(3)
  })

  it('places taken by requests not committed yet still count after the cached count is read again', async () => {
    // Commits of this key take 1.5 s a row: the count is read again (after 1 s) while the first three are not in
    // the table. Before: it read 0 and let a fourth in.
    await sql.unsafe(`
      CREATE FUNCTION test_slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$;
      CREATE TRIGGER test_slow_insert BEFORE INSERT ON transactions FOR EACH ROW WHEN (NEW.api_key_name = 'inflight-slow') EXECUTE FUNCTION test_slow_insert();`)
    try {
      const first = Array.from({ length: 3 }, (_, i) => call('/broadcast_transaction', keys.inflightSlow, { to: RECIPIENT, value: String(200 + i) }))
      await new Promise((r) => setTimeout(r, 1_200))
      const fourth = await call('/broadcast_transaction', keys.inflightSlow, { to: RECIPIENT, value: '209' })
      expect([fourth.status, fourth.json.error?.code]).toEqual([429, 'TOO_MANY_IN_FLIGHT'])
      expect((await Promise.all(first)).map((r) => r.status)).toEqual([200, 200, 200])
      const n = await sql`SELECT count(*)::int AS n FROM transactions WHERE api_key_name = 'inflight-slow'`
      expect(n[0]!.n).toBe(3)
    } finally {
      await sql.unsafe(`DROP TRIGGER test_slow_insert ON transactions; DROP FUNCTION test_slow_insert();`)
    }
  })

  it('a key holds at most maxSubscriptionsPerKey open subscriptions (WebSocket and SSE together); one closed frees its place', async () => {
    const client = createClient({ url: `${env.service.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${keys.watcher}` }, retryAttempts: 0 })
    const subscribe = () =>
      new Promise<{ error?: any; unsubscribe: () => void }>((resolve) => {
        let settled = false
        const unsubscribe = client.subscribe(
          { query: `subscription { transactionUpdated { id } }` },
          {
            next: (msg: any) => msg.errors && !settled && ((settled = true), resolve({ error: msg.errors, unsubscribe })),
            error: (e: any) => !settled && ((settled = true), resolve({ error: e, unsubscribe })),
            complete: () => {},
          },
        )
        // No error within a moment: it is open.
        setTimeout(() => !settled && ((settled = true), resolve({ unsubscribe })), 400)
      })
    const open = [await subscribe(), await subscribe()]
    expect(open.map((o) => o.error)).toEqual([undefined, undefined])
    // The third over SSE.
    const controller = new AbortController()
    const sse = await fetch(`${env.service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${keys.watcher}` },
      body: JSON.stringify({ query: `subscription { transactionUpdated { id } }` }),
      signal: controller.signal,
    })
    expect(sse.status).toBe(200)
    await new Promise((r) => setTimeout(r, 300))
    // Before: no limit; each open subscription costs an execution per change for as long as it stays.
    const over = await subscribe()
    expect(over.error?.[0]?.extensions?.code ?? over.error).toBe('TOO_MANY_SUBSCRIPTIONS')
    open[0]!.unsubscribe()
    await new Promise((r) => setTimeout(r, 300))
    expect((await subscribe()).error).toBeUndefined()
    controller.abort()
    await client.dispose()
  })

  it('a key holds at most maxWebSocketsPerKey WebSockets open: the next is closed with 1013 TOO_MANY_CONNECTIONS; one closed frees its place', async () => {
    const open = (key: string) =>
      new Promise<{ code: number; reason: string; socket: WebSocket }>((resolve, reject) => {
        const socket = new WebSocket(`${env.service.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws')
        socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${key}` } })))
        socket.on('message', (m) => JSON.parse(m.toString()).type === 'connection_ack' && resolve({ code: 0, reason: 'open', socket }))
        socket.on('close', (code, reason) => resolve({ code, reason: reason.toString(), socket }))
        socket.on('error', reject)
      })
    // Before: no limit (one reader key could hold thousands of idle sockets, each a file descriptor).
    const held = [await open(keys.sockets), await open(keys.sockets), await open(keys.sockets)]
    expect(held.map((h) => h.code)).toEqual([0, 0, 0])
    const over = await open(keys.sockets)
    expect(over.code).toBe(1013)
    expect(over.reason).toMatch(/^TOO_MANY_CONNECTIONS/)
    // Another key is not affected.
    const other = await open(keys.watcher)
    expect(other.code).toBe(0)
    other.socket.close()
    await new Promise<void>((resolve) => {
      held[0]!.socket.once('close', () => resolve())
      held[0]!.socket.close()
    })
    // The server counts the socket out when its own side has closed too: asked again for a moment if not yet.
    let again = await open(keys.sockets)
    for (let i = 0; again.code !== 0 && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100))
      again = await open(keys.sockets)
    }
    expect(again.code).toBe(0)
    for (const s of [...held, again]) s.socket.close()
  })

  it('GraphQL: too deep, too many aliases → QUERY_TOO_COMPLEX; no introspection and no GraphiQL outside dev mode', async () => {
    // The deepest real query (depth 6) passes.
    const real = `{ transactions { edges { node { id events { actor } attempts { hash providers { name outcome } } } } pageInfo { hasNextPage } } }`
    const ok = await gql(ADMIN_KEY, real)
    expect(ok.status).toBe(200)
    expect(ok.json.errors).toBeUndefined()
    // Depth: fragments nested past the limit.
    const fragments = Array.from({ length: 12 }, (_, i) => `fragment F${i} on Query { transactions { edges { node { id } } } ...F${i + 1} }`)
    const recursive = `query { ...F0 } ${fragments.join(' ')} fragment F12 on Query { __typename }`
    const r1 = await gql(ADMIN_KEY, recursive)
    expect(r1.status).toBeLessThan(500)
    expect(r1.json.errors[0].extensions.code).toBe('QUERY_TOO_COMPLEX')
    const aliases = `{ ${Array.from({ length: 20 }, (_, i) => `a${i}: transaction(id: "00000000-0000-4000-8000-000000000000") { id }`).join(' ')} }`
    const r2 = await gql(ADMIN_KEY, aliases)
    expect(r2.status).toBeLessThan(500)
    expect(r2.json.errors[0].extensions.code).toBe('QUERY_TOO_COMPLEX')
    expect(r2.json.errors[0].message).toMatch(/alias/i)
    const intro = await gql(ADMIN_KEY, '{ __schema { types { name } } }')
    expect(intro.json.data ?? null).toBeNull()
    expect(intro.json.errors[0].message).toMatch(/introspection/i)
    const page = await fetch(`${env.service.url}/graphql`, { headers: { accept: 'text/html', authorization: `Bearer ${ADMIN_KEY}` } })
    expect(page.headers.get('content-type') ?? '').not.toMatch(/html/)
  })
})

describe('rate tokens for GraphQL aliases', () => {
  let env: TestEnv | undefined
  afterAll(async () => {
    await env?.stop()
  })

  it('each broadcastTransaction of a request takes a rate token, all before any is stored: aliases do not multiply a key\'s rate', async () => {
    env = await startTestEnv({ config: (c) => (c.limits = { requestsPerSecond: 0.5, burst: 4 }) })
    const mutation = (values: number[]) => `mutation { ${values.map((v) => `b${v}: broadcastTransaction(input: { to: "${RECIPIENT}", value: "${v}" }) { id }`).join(' ')} }`
    const stored = async () => {
      const sql = postgres(env!.databaseUrl, { max: 1, onnotice: () => {} })
      try {
        return (await sql<{ value: string }[]>`SELECT value::text FROM transactions ORDER BY value`).map((r) => r.value)
      } finally {
        await sql.end()
      }
    }
    // Ten submissions need ten tokens, more than a burst of four ever holds: refused whole, nothing stored (before:
    // all ten were stored for one token), and for good (a RATE_LIMITED with a Retry-After had its client try again
    // for ever). Refused after some were stored, the answer (data null: the field is non-null) would have hidden
    // their ids from a client that then submits them again.
    const over = await env.graphql(mutation([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))
    expect(over.json.errors).toHaveLength(1)
    expect(over.json.errors[0]).toMatchObject({ path: ['b1'], extensions: { code: 'QUERY_TOO_COMPLEX' } })
    expect(over.json.errors[0].message).toMatch(/10 broadcastTransaction fields.*limits\.burst is 4/)
    expect(await stored()).toEqual([])
    // Three need three of the three left: all stored, each with its id.
    const fits = await env.graphql(mutation([11, 12, 13]))
    expect(fits.json.errors).toBeUndefined()
    expect(Object.keys(fits.json.data)).toEqual(['b11', 'b12', 'b13'])
    expect(await stored()).toEqual(['11', '12', '13'])
    // Inside fragments (inline, named) they count too: before, only top-level fields did, and these were stored.
    await new Promise((r) => setTimeout(r, 4_000)) // two tokens back
    const fields = (values: number[]) => values.map((v) => `b${v}: broadcastTransaction(input: { to: "${RECIPIENT}", value: "${v}" }) { id }`).join(' ')
    const inline = await env.graphql(`mutation { ... on Mutation { ${fields([21, 22, 23, 24])} } }`)
    expect(inline.json.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED')
    const named = await env.graphql(`mutation { ...M } fragment M on Mutation { ${fields([31, 32, 33, 34])} }`)
    expect(named.json.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED')
    expect(await stored()).toEqual(['11', '12', '13'])
    // A fragment spread twice runs its fields once (graphql-js merges them): two submissions, two tokens (each
    // refused request took its own one).
    await new Promise((r) => setTimeout(r, 4_000))
    const twice = await env.graphql(`mutation { ...N ...N } fragment N on Mutation { ${fields([41, 42])} }`)
    expect(twice.json.errors).toBeUndefined()
    expect(await stored()).toEqual(['11', '12', '13', '41', '42'])
  })
})

describe('long calldata in lists', () => {
  let env: TestEnv | undefined
  let sql: postgres.Sql | undefined
  afterAll(async () => {
    await sql?.end()
    await env?.stop()
  })

  it('a list leaves long calldata out until asked for, and one request may read at most 16 MB of it: past that QUERY_TOO_COMPLEX, not a 100 MB answer', async () => {
    env = await startTestEnv({ anvil: { noMining: true } })
    sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    // 300 failed requests of 120 KiB calldata each (a reverting estimate fails them before signing, kept 30 days).
    const data = (i: number) => `0x${i.toString(16).padStart(8, '0')}${'ab'.repeat(120 * 1024)}`
    await sql`
      INSERT INTO transactions (chain_id, signer, "to", data, status, final_at, error_code, error_message)
      SELECT 31337, ${SIGNER.address}, ${RECIPIENT}, '0x' || lpad(to_hex(g), 8, '0') || repeat('ab', 120 * 1024), 'FAILED', now(), 'GAS_ESTIMATION_REVERTED', 'reverted'
      FROM generate_series(0, 299) g`
    const list = (first: number, fields: string) => env!.graphql(`{ transactions(first: ${first}, status: [FAILED]) { edges { node { ${fields} } } } }`)
    // 300 × 240 KB of hex: refused, saying what to do.
    const all = await list(300, 'id data')
    expect(all.json.errors[0].extensions.code).toBe('QUERY_TOO_COMPLEX')
    expect(all.json.errors[0].message).toMatch(/calldata.*first.*leave data out/)
    expect(JSON.stringify(all.json).length).toBeLessThan(100_000)
    // Aliases do not multiply it: the same 60 rows' calldata three times over is counted three times (the rows are
    // read once).
    const aliased = await list(60, 'id d1: data d2: data d3: data')
    expect(aliased.json.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX')
    expect(JSON.stringify(aliased.json).length).toBeLessThan(100_000)
    // A page that fits is answered in full, each row its own calldata.
    const some = await list(20, 'id data')
    expect(some.json.errors).toBeUndefined()
    const got = some.json.data.transactions.edges.map((e: any) => e.node.data as string)
    expect(got).toHaveLength(20)
    expect(new Set(got.map((d: string) => d.length))).toEqual(new Set([data(0).length]))
    expect(got.map((d: string) => Number.parseInt(d.slice(2, 10), 16)).sort((a: number, b: number) => b - a)).toEqual(Array.from({ length: 20 }, (_, i) => 299 - i))
    // Without data, the whole list is a small answer.
    const ids = await list(300, 'id status')
    expect(ids.json.errors).toBeUndefined()
    expect(ids.json.data.transactions.edges).toHaveLength(300)
    // One transaction by id carries its calldata as before.
    const one = await env.graphql(`query($id: ID!) { transaction(id: $id) { data } }`, { id: ids.json.data.transactions.edges[0].node.id })
    expect(one.json.data.transaction.data).toBe(data(299))
  }, 60_000)
})
