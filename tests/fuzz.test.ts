import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_KEY, RECIPIENT, startTestEnv, type TestEnv } from './helpers/testService.ts'

/** Reproducible randomness: a failure prints its seed; FUZZ_SEED=<n> replays it. */
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)
function mulberry32(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = mulberry32(SEED)
const int = (n: number) => Math.floor(rand() * n)
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!

const UNICODE = ['é', 'ß', '漢', '字', '🙂', '\u0000', '\u202e', '\ud800', '\uffff', '\u2028', 'Ω', '\t', '\n', '"', '\\', "'", '`', '$', '{', '}', '<', '>']
function randomString(max = 80): string {
  const n = int(max)
  let s = ''
  for (let i = 0; i < n; i++) s += rand() < 0.3 ? pick(UNICODE) : String.fromCharCode(32 + int(95))
  return s
}
const hugeDigits = () => '9'.repeat(1 + int(400))

/** Any JSON value, biased towards what breaks parsers. */
function randomValue(depth = 0): unknown {
  switch (int(depth > 3 ? 12 : 15)) {
    case 0: return null
    case 1: return rand() < 0.5
    case 2: return int(2 ** 31) * (rand() < 0.5 ? -1 : 1)
    case 3: return pick([0, -0, 1.5, -1, 2 ** 53, 2 ** 64, 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER + 2])
    case 4: return randomString()
    case 5: return hugeDigits()
    case 6: return `0x${'0123456789abcdefABCDEFxg'.split('').map(() => pick('0123456789abcdefxyzABCDEF'.split(''))).join('').repeat(1 + int(4))}`
    case 7: return 'x'.repeat(int(200_000))
    case 8: return pick(['', ' ', '0x', '0X00', '-0', '+1', '1e18', '0b101', '0o7', 'NaN', 'Infinity', 'true', 'null', '__proto__', '1,000', ' 42 '])
    case 9: return new Date(rand() * 4e12 - 1e12).toISOString()
    case 10: return pick(['2099-13-40T99:99:99Z', 'tomorrow', '1970-01-01', '9999-12-31T23:59:59Z', '2020-01-01T00:00:00Z'])
    case 11: return `0x${'ab'.repeat(int(30))}`
    case 12: return Array.from({ length: int(5) }, () => randomValue(depth + 1))
    case 13: return Object.fromEntries(Array.from({ length: int(5) }, () => [pick([...FIELDS, randomString(10), '__proto__', 'constructor']), randomValue(depth + 1)]))
    default: return deepNest(1 + int(3000))
  }
}
function deepNest(n: number): unknown {
  let v: unknown = 1
  for (let i = 0; i < n; i++) v = rand() < 0.5 ? [v] : { a: v }
  return v
}

const FIELDS = ['chainId', 'to', 'data', 'value', 'gasLimit', 'idempotencyKey', 'validUntil'] as const

/** Values each field's parser must refuse: one of these in a request guarantees it is not stored. */
const POISON: Record<string, () => unknown> = {
  chainId: () => pick([0, -1, 1.5, 5, 2 ** 60, 'one', '31337', true, [], {}, hugeDigits()]),
  to: () => pick(['0x1234', '0x70997970C51812dc3A010C7d01b50e0d17dc79C9', RECIPIENT.slice(0, 41), 42, true, [RECIPIENT], { a: 1 }, randomString(), `${RECIPIENT}00`]),
  data: () => pick(['0x123', '0xzz', 'abcd', 12, false, ['0x'], `0x${'0'.repeat(3)}`, randomString(20) + 'g']),
  value: () => pick(['-1', 'ten', (2n ** 256n).toString(), hugeDigits() + '9'.repeat(80), 1.5, -5, '1e18', '0x10', true, {}, [], '']),
  gasLimit: () => pick(['20999', '0', '-1', '1000000001', hugeDigits() + '0'.repeat(10), 'lots', 21000.5, false, [] as unknown]),
  idempotencyKey: () => pick(['', 'k'.repeat(201 + int(1000)), 42, true, {}, ['a']]),
  validUntil: () => pick(['2020-01-01T00:00:00Z', 'tomorrow', '2099-13-40T99:99:99Z', 0, -1, true, {}, '1970-01-01T00:00:00Z']),
  unknownField: () => randomValue(),
}

/** A broadcast body with random fields and at least one that can never be valid. */
function malformedInput(): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  for (const f of FIELDS) if (rand() < 0.5) body[f] = rand() < 0.5 ? randomValue() : pick([RECIPIENT, '0x', '1', '21000', 'key', '2099-01-01T00:00:00Z', 31337])
  return poisoned(body)
}

/** Sets one field to a value no request may have. */
function poisoned(body: Record<string, unknown>): Record<string, unknown> {
  const poison = pick(Object.keys(POISON))
  // '__proto__' as a plain assignment would set the prototype, not a key: define it.
  // Names a client might guess but the API does not have ('from' is a real field: it picks the signer, and null is valid).
  const key = poison === 'unknownField' ? pick(['gas', 'nonce', 'signer', 'Value', 'TO', randomString(12) || 'x', '__proto__']) : poison
  Object.defineProperty(body, key, { value: POISON[poison]!(), enumerable: true, configurable: true, writable: true })
  return body
}

/** Any value for the whole input; an object always carries a poisoned field. */
function malformedWhole(): unknown {
  const v = randomValue()
  return v && typeof v === 'object' && !Array.isArray(v) ? poisoned({ ...(v as Record<string, unknown>) }) : v
}

function malformedRestBody(): { body: string | Blob; contentType: string } {
  const r = rand()
  if (r < 0.7) return { body: JSON.stringify(malformedInput()), contentType: 'application/json' }
  if (r < 0.8) return { body: JSON.stringify(malformedWhole()) ?? 'undefined', contentType: 'application/json' }
  if (r < 0.88) {
    const good = JSON.stringify({ to: RECIPIENT, value: '1' })
    return { body: good.slice(0, int(45)) + randomString(5), contentType: 'application/json' }
  }
  if (r < 0.94) return { body: new Blob([Uint8Array.from(Array.from({ length: int(300) }, () => int(256)))]), contentType: pick(['application/json', 'application/json; charset=latin1']) }
  return { body: JSON.stringify({ to: RECIPIENT }), contentType: pick(['text/plain', '', 'application/x-www-form-urlencoded', 'application/jsonx', 'multipart/form-data']) }
}

const MUTATION = `mutation($i: BroadcastTransactionInput!) { broadcastTransaction(input: $i) { id status } }`
function malformedGraphQL(): unknown {
  const r = rand()
  if (r < 0.6) return { query: MUTATION, variables: { i: malformedInput() } }
  if (r < 0.7) return { query: MUTATION, variables: pick([{ i: malformedWhole() }, {}, null, randomValue(), { i: null }, { j: { to: RECIPIENT } }]) }
  if (r < 0.78) {
    // Deep and wide queries.
    const depth = 1 + int(40)
    const frags = Array.from({ length: depth }, (_, i) => `fragment F${i} on Query { transactions(first: ${int(1000)}) { edges { node { id } } } ...F${i + 1} }`)
    return { query: `query { ...F0 } ${frags.join(' ')} fragment F${depth} on Query { __typename }` }
  }
  if (r < 0.84) {
    const n = 1 + int(200)
    return { query: `{ ${Array.from({ length: n }, (_, i) => `a${i}: transactions(first: 500) { edges { node { id attempts { hash providers { name } } events { actor } } } }`).join(' ')} }` }
  }
  if (r < 0.9)
    return {
      query: `query($id: ID!, $h: Hex!, $f: Int, $a: String, $s: [TransactionStatus!], $from: Address) { transaction(id: $id) { id } transactionByHash(hash: $h) { id } transactions(first: $f, after: $a, status: $s, from: $from) { edges { cursor } } }`,
      variables: { id: randomValue(), h: randomValue(), f: randomValue(), a: randomValue(), s: randomValue(), from: randomValue() },
    }
  if (r < 0.95) return { query: randomString(300) + pick(['{', '}', '(', '$', '...', '@include', '"""']).repeat(int(50)), variables: randomValue() }
  return pick([{ query: 123 }, { query: null }, { variables: {} }, [], [{ query: '{ __typename }' }], randomValue(), { query: MUTATION, operationName: randomString(20) }])
}

describe('fuzz: malformed input never breaks the service', () => {
  let env: TestEnv
  let sql: postgres.Sql
  beforeAll(async () => {
    // Limits out of the way: this is about parsing, not rate limiting.
    env = await startTestEnv({ config: (c) => (c.limits = { requestsPerSecond: 1e6, burst: 1e6 }) })
    sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
  })
  afterAll(async () => {
    await sql?.end()
    await env?.stop()
  })

  it(`5,000+ random malformed REST bodies and GraphQL requests: no 5xx, no row, still serving (seed ${SEED})`, async () => {
    const failures: string[] = []
    const statuses = new Map<number, number>()
    const jobs: Array<() => Promise<void>> = []
    const auth = { authorization: `Bearer ${ADMIN_KEY}` }
    const record = (what: string, status: number, text: string, sent: unknown) => {
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
      if (status >= 500 || status === 200 && what === 'rest')
        failures.push(`${what} ${status}: ${text.slice(0, 300)} <- ${String(typeof sent === 'string' ? sent : JSON.stringify(sent)).slice(0, 300)}`)
    }
    for (let i = 0; i < 2_800; i++) {
      const { body, contentType } = malformedRestBody()
      jobs.push(async () => {
        const res = await fetch(`${env.service.url}/broadcast_transaction`, { method: 'POST', headers: { 'content-type': contentType, ...auth }, body })
        record('rest', res.status, await res.text(), typeof body === 'string' ? body : '<random bytes>')
      })
    }
    for (let i = 0; i < 2_400; i++) {
      const payload = malformedGraphQL()
      jobs.push(async () => {
        const res = await fetch(`${env.service.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(payload) })
        const text = await res.text()
        record('graphql', res.status, text, payload)
        // A GraphQL answer may be 200, but never with a created transaction.
        if (res.status === 200 && /"broadcastTransaction":\{/.test(text)) failures.push(`graphql created a transaction: ${JSON.stringify(payload).slice(0, 300)}`)
      })
    }
    for (let i = 0; i < 200; i++) {
      // Some raw, malformed percent-encodings too.
      const id =
        rand() < 0.2
          ? pick(['%', '%zz', '%E0%A4%A', '%C0%AF', '%ED%A0%80', '..%2F..%2Fetc%2Fpasswd', '%00'])
          : encodeURIComponent(String(randomValue()).slice(0, 2000).replace(/[\ud800-\udfff]/g, '?'))
      jobs.push(async () => {
        const res = await fetch(`${env.service.url}/transactions/${id}`, { headers: auth })
        record('get', res.status, await res.text(), id)
      })
    }
    // Shuffle, then run 16 at a time.
    for (let i = jobs.length - 1; i > 0; i--) {
      const j = int(i + 1)
      ;[jobs[i], jobs[j]] = [jobs[j]!, jobs[i]!]
    }
    let next = 0
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < jobs.length) await jobs[next++]!()
      }),
    )
    expect(jobs.length).toBeGreaterThanOrEqual(5_000)
    expect(failures, `seed ${SEED}; statuses ${JSON.stringify([...statuses])}`).toEqual([])
    expect((await sql`SELECT count(*)::int AS n FROM transactions`)[0]!.n).toBe(0)
    // Still serving: a good request is stored.
    const ok = await env.post('/broadcast_transaction', { to: RECIPIENT, value: '1' })
    expect(ok.status).toBe(200)
    expect((await env.graphql('{ transactions { edges { node { id } } } }')).json.data.transactions.edges).toHaveLength(1)
    expect((await fetch(`${env.service.url}/healthz`)).status).toBe(200)
  }, 120_000)
})
