import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_KEY, RECIPIENT, startTestEnv, type TestEnv } from './helpers/testService.ts'

/** Bad input never reaches the database: each gets a 4xx (REST) or a coded GraphQL error naming the field. */
describe('bad input', () => {
  let env: TestEnv
  let sql: postgres.Sql
  beforeAll(async () => {
    env = await startTestEnv()
    sql = postgres(env.databaseUrl, { max: 1 })
  })
  afterAll(async () => {
    await sql?.end()
    await env?.stop()
  })

  const rows = async () => Number((await sql`SELECT count(*)::int AS n FROM transactions`)[0]!.n)

  const restCases: Array<[string, unknown, number, string, string | undefined]> = [
    ['wrong address', { to: '0x1234' }, 400, 'INVALID_ADDRESS', 'to'],
    ['bad checksum', { to: '0x70997970C51812dc3A010C7d01b50e0d17dc79C9' }, 400, 'INVALID_ADDRESS', 'to'],
    ['odd-length data', { to: RECIPIENT, data: '0x123' }, 400, 'INVALID_HEX', 'data'],
    ['non-hex data', { to: RECIPIENT, data: '0xzz' }, 400, 'INVALID_HEX', 'data'],
    ['negative value', { to: RECIPIENT, value: '-1' }, 400, 'VALUE_OUT_OF_RANGE', 'value'],
    ['non-numeric value', { to: RECIPIENT, value: 'ten' }, 400, 'INVALID_BIGINT', 'value'],
    ['value above uint256', { to: RECIPIENT, value: (2n ** 256n).toString() }, 400, 'VALUE_OUT_OF_RANGE', 'value'],
    ['unknown chainId', { to: RECIPIENT, chainId: 5 }, 400, 'UNKNOWN_CHAIN', 'chainId'],
    ['unknown field', { to: RECIPIENT, gas: '21000' }, 400, 'UNKNOWN_FIELD', 'gas'],
    ['validUntil in the past', { to: RECIPIENT, validUntil: '2020-01-01T00:00:00Z' }, 400, 'VALID_UNTIL_PASSED', 'validUntil'],
    // Each of these three passed validation and was refused by Postgres, failing every request committed with it.
    ['NUL in idempotencyKey', { to: RECIPIENT, idempotencyKey: 'order\u000042' }, 400, 'INVALID_INPUT', 'idempotencyKey'],
    ['lone surrogate in idempotencyKey', { to: RECIPIENT, idempotencyKey: 'order-\ud800' }, 400, 'INVALID_INPUT', 'idempotencyKey'],
    ['validUntil in year 10000 in UTC', { to: RECIPIENT, validUntil: '9999-12-31T23:00:00-14:00' }, 400, 'INVALID_DATETIME', 'validUntil'],
    ['not an object', [1, 2], 400, 'INVALID_INPUT', undefined],
    ['nothing to do', {}, 400, 'INVALID_INPUT', 'to'],
  ]

  it.each(restCases)('REST: %s → %i %s', async (_, body, status, code, field) => {
    const res = await env.post('/broadcast_transaction', body)
    expect(res.status).toBe(status)
    expect(res.json.error.code).toBe(code)
    expect(res.json.error.field).toBe(field)
    expect(typeof res.json.error.message).toBe('string')
    expect(await rows()).toBe(0)
  })

  it('REST and GraphQL: malformed JSON → 400 INVALID_JSON (GraphQL said BAD_REQUEST, with its parser error object)', async () => {
    const res = await env.post('/broadcast_transaction', '{"to": ')
    expect(res.status).toBe(400)
    expect(res.json.error.code).toBe('INVALID_JSON')
    const graphql = await env.post('/graphql', '{"query": ')
    expect(graphql.status).toBe(400)
    expect(graphql.json.errors).toEqual([{ message: expect.stringMatching(/^Body is not valid JSON: /), extensions: { code: 'INVALID_JSON' } }])
    expect(await rows()).toBe(0)
  })

  it('REST: oversized body → 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await env.post('/broadcast_transaction', { to: RECIPIENT, data: `0x${'00'.repeat(600_000)}` })
    expect(res.status).toBe(413)
    expect(res.json.error.code).toBe('PAYLOAD_TOO_LARGE')
    expect(await rows()).toBe(0)
  })

  it('GraphQL: oversized body → 413 PAYLOAD_TOO_LARGE; a chunked body without Content-Length → 411', async () => {
    const query = 'mutation($i: BroadcastTransactionInput!) { broadcastTransaction(input: $i) { id } }'
    const big = await env.graphql(query, { i: { to: RECIPIENT, data: `0x${'00'.repeat(600_000)}` } })
    expect(big.status).toBe(413)
    expect(big.json.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE')
    // A streamed body has no Content-Length (fetch sends it chunked).
    const body = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(JSON.stringify({ query, variables: { i: { to: RECIPIENT } } })))
        c.close()
      },
    })
    const chunked = await fetch(`${env.service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
      body,
      duplex: 'half',
    } as RequestInit)
    expect(chunked.status).toBe(411)
    expect((await chunked.json()).errors[0].extensions.code).toBe('LENGTH_REQUIRED')
    expect(await rows()).toBe(0)
  })

  it('REST: no API key → 401, unknown transaction id → 400/404', async () => {
    const res = await fetch(`${env.service.url}/broadcast_transaction`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: RECIPIENT }),
    })
    expect(res.status).toBe(401)
    expect((await res.json()).error.code).toBe('UNAUTHENTICATED')
    expect((await env.get('/transactions/not-a-uuid')).json.error.code).toBe('INVALID_ID')
    const missing = await env.get('/transactions/00000000-0000-4000-8000-000000000000')
    expect(missing.status).toBe(404)
    expect(missing.json.error.code).toBe('NOT_FOUND')
    // A mistyped path is a JSON 404 for an API client (it was 200 with the dashboard's HTML); a browser gets the page.
    for (const path of ['/transaction/00000000-0000-4000-8000-000000000000', '/transactions/', '/transactions/00000000-0000-4000-8000-000000000000/']) {
      const typo = await env.get(path)
      expect([typo.status, typo.json?.error?.code], path).toEqual([404, 'NOT_FOUND'])
    }
    const page = await fetch(`${env.service.url}/some/page`, { headers: { accept: 'text/html,application/xhtml+xml' } })
    expect([page.status, page.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8'])
    // The root is the dashboard for anyone (a load balancer's default health check is GET / with */*).
    const root = await fetch(`${env.service.url}/`, { headers: { accept: '*/*' } })
    expect([root.status, root.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8'])
    // The dashboard has admin buttons (retry, cancel): no other site may frame it and trick a click; nothing is
    // sniffed as another type; the explorer links do not tell the explorer the dashboard's address.
    for (const res of [page, root]) {
      expect(res.headers.get('content-security-policy')).toBe("frame-ancestors 'none'")
      expect(res.headers.get('x-frame-options')).toBe('DENY')
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
      expect(res.headers.get('referrer-policy')).toBe('no-referrer')
    }
  })

  it('GraphQL: a cursor this API did not make → INVALID_INPUT on `after` (a huge sequence number was a 500)', async () => {
    const list = `query($a: String) { transactions(first: 1, after: $a) { edges { cursor } } }`
    // '' too: it read as no cursor, the first page again (a paging loop that lost its cursor read page 1 for ever).
    for (const after of ['', 'nope', Buffer.from('seq:99999999999999999999999').toString('base64url'), Buffer.from('seq:-1').toString('base64url')]) {
      const { status, json } = await env.graphql(list, { a: after })
      expect(status, after).toBe(200)
      expect(json.errors[0].extensions, after).toEqual({ code: 'INVALID_INPUT', field: 'after' })
    }
  })

  it('GraphQL: a variable that cannot be taken answers 400 whether it is missing or its value is bad (a bad value answered 200)', async () => {
    const submitWith = `mutation($v: BigInt!) { broadcastTransaction(input: { to: "${RECIPIENT}", value: $v }) { id } }`
    const missing = await env.graphql(submitWith, {})
    const negative = await env.graphql(submitWith, { v: '-1' })
    expect([missing.status, missing.json.data ?? null]).toEqual([400, null])
    expect([negative.status, negative.json.data ?? null, negative.json.errors[0].extensions]).toEqual([400, null, { code: 'VALUE_OUT_OF_RANGE', field: 'value' }])
  })

  it('GraphQL: a bad value written inline, or a scalar variable, names the field it was given for (it named the scalar)', async () => {
    const inline = await env.graphql(`mutation { broadcastTransaction(input: { value: "1", to: "0x1234" }) { id } }`)
    expect(inline.json.errors[0].extensions).toEqual({ code: 'INVALID_ADDRESS', field: 'to' })
    expect(inline.json.errors[0].message).toMatch(/^to: "0x1234" is not a 20-byte hex address/)
    const nested = await env.graphql(`mutation { broadcastTransaction(input: { to: "${RECIPIENT}", validUntil: "2030-01-01T00:00:00" }) { id } }`)
    expect(nested.json.errors[0].extensions).toEqual({ code: 'INVALID_DATETIME', field: 'validUntil' })
    const variable = await env.graphql(`query($h: Hex!) { transactionByHash(hash: $h) { id } }`, { h: '0x1' })
    expect(variable.json.errors[0].extensions).toEqual({ code: 'INVALID_HEX', field: 'hash' })
    expect(variable.json.errors[0].message).toMatch(/^hash: /)
  })

  const mutation = `mutation($input: BroadcastTransactionInput!) { broadcastTransaction(input: $input) { id } }`
  const gqlCases: Array<[string, Record<string, unknown>, string, string]> = [
    ['wrong address', { to: '0x1234' }, 'INVALID_ADDRESS', 'to'],
    ['odd-length data', { to: RECIPIENT, data: '0x123' }, 'INVALID_HEX', 'data'],
    ['negative value', { to: RECIPIENT, value: '-5' }, 'VALUE_OUT_OF_RANGE', 'value'],
    ['non-numeric value', { to: RECIPIENT, value: '1e18' }, 'INVALID_BIGINT', 'value'],
    ['bad date', { to: RECIPIENT, validUntil: 'tomorrow' }, 'INVALID_DATETIME', 'validUntil'],
    ['unknown chainId', { to: RECIPIENT, chainId: 5 }, 'UNKNOWN_CHAIN', 'chainId'],
    ['unknown field', { to: RECIPIENT, gas: 1 }, 'UNKNOWN_FIELD', 'gas'],
    ['chainId not an Int', { to: RECIPIENT, chainId: 'one' }, 'INVALID_INPUT', 'chainId'],
    ['NUL in idempotencyKey', { to: RECIPIENT, idempotencyKey: 'a\u0000b' }, 'INVALID_INPUT', 'idempotencyKey'],
  ]

  it.each(gqlCases)('GraphQL: %s → %s on %s', async (_, input, code, field) => {
    const res = await env.graphql(mutation, { input })
    expect(res.json.data?.broadcastTransaction ?? null).toBeNull()
    const err = res.json.errors[0]
    expect(err.extensions.code).toBe(code)
    expect(err.extensions.field).toBe(field)
    expect(err.message).toMatch(new RegExp(field))
    expect(await rows()).toBe(0)
  })

  it('a request Postgres refuses fails alone: the requests committed in the same batch are accepted', async () => {
    // Validation is the first line; this is the second, for a value it lets through that Postgres cannot store
    // (stood in for by a trigger). The batch is one statement: before, every request in it got a 500.
    await sql.unsafe(`
      CREATE FUNCTION test_refuse_13() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.value = 13 THEN RAISE EXCEPTION 'value 13 cannot be stored' USING ERRCODE = '22023'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER test_refuse_13 BEFORE INSERT ON transactions FOR EACH ROW EXECUTE FUNCTION test_refuse_13();`)
    try {
      const values = Array.from({ length: 40 }, (_, i) => String(i + 1))
      const answers = await Promise.all(values.map((value) => env.post('/broadcast_transaction', { to: RECIPIENT, value })))
      const refused = answers.filter((res, i) => values[i] !== '13' && res.status !== 200).map((res) => res.status)
      expect(refused).toEqual([])
      const bad = answers[values.indexOf('13')]!
      expect(bad.status).toBe(400)
      expect(bad.json.error).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/cannot store: value 13 cannot be stored/) })
      const stored = await sql<{ value: string }[]>`SELECT value::text FROM transactions ORDER BY value`
      expect(stored.map((r) => r.value).sort()).toEqual(values.filter((v) => v !== '13').sort())
    } finally {
      await sql.unsafe(`DROP TRIGGER test_refuse_13 ON transactions; DROP FUNCTION test_refuse_13();`)
    }
  })
})
