import type { AddressInfo } from 'node:net'
import { createServer, type Server } from 'node:http'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthenticator } from '../src/api/auth.ts'
import { createGraphQL } from '../src/api/graphql/createYoga.ts'
import { buildSchema } from '../src/api/graphql/schema.ts'
import { createHttpServer } from '../src/api/server.ts'
import { readBody } from '../src/api/readBody.ts'
import { canServeDirectly, serveGraphQLPost } from '../src/api/graphql/serveGraphQLPost.ts'
import { ADMIN_KEY, RECIPIENT, startTestEnv, type TestEnv } from './helpers/testService.ts'

const READER_KEY = 'reader-key-0123456789abcdef'

type Answer = { status: number; headers: Record<string, string>; body: string }

async function send(base: string, init: { body: string; headers?: Record<string, string> }): Promise<Answer> {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}`, ...init.headers },
    body: init.body,
  })
  const headers: Record<string, string> = {}
  // date and the connection headers differ between any two answers.
  res.headers.forEach((v, k) => !['date', 'connection', 'keep-alive'].includes(k) && (headers[k] = v))
  return { status: res.status, headers, body: await res.text() }
}

const MUTATION = 'mutation($i: BroadcastTransactionInput!) { broadcastTransaction(input: $i) { id status to value } }'
const gql = (query: string, variables?: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({ query, variables, ...extra })

/**
 * The direct GraphQL POST path (serveGraphQLPost.ts) must answer exactly as yoga's own HTTP layer does:
 * the same requests go to the service and to a second server on the same service that sends every
 * GraphQL request through yoga, and the status, headers and body must be identical.
 */
describe('GraphQL direct path', () => {
  let env: TestEnv
  let yogaOnly: Server
  let yogaUrl: string
  let sql: postgres.Sql

  beforeAll(async () => {
    env = await startTestEnv({
      config: (c) => c.apiKeys.push({ name: 'reader', role: 'reader', key: READER_KEY }),
    })
    const ctx = env.service.ctx
    yogaOnly = createHttpServer(ctx, {
      auth: createAuthenticator(ctx.config.apiKeys, ctx.config.auth),
      yoga: createGraphQL(ctx, buildSchema()),
      graphqlDirect: false,
    })
    await new Promise<void>((resolve) => yogaOnly.listen(0, '127.0.0.1', resolve))
    yogaUrl = `http://127.0.0.1:${(yogaOnly.address() as AddressInfo).port}`
    sql = postgres(env.databaseUrl, { max: 2, onnotice: () => {} })
  }, 60_000)

  afterAll(async () => {
    await sql?.end()
    await new Promise<void>((resolve) => (yogaOnly ? yogaOnly.close(() => resolve()) : resolve()))
    await env?.stop()
  })

  const cases: [string, { body: string; headers?: Record<string, string> }][] = [
    ['a query', { body: gql('{ __typename }') }],
    ['a list query with variables', { body: gql('query($n: Int) { transactions(first: $n) { totalCount edges { node { id } } } }', { n: 5 }) }],
    ['a syntax error', { body: gql('{ transactions( }') }],
    ['an unknown field', { body: gql('{ nope }') }],
    ['a missing variable', { body: gql(MUTATION) }],
    ['a variable of the wrong type', { body: gql(MUTATION, { i: { to: 'not-an-address', chainId: 31337 } }) }],
    ['a resolver refusing the input', { body: gql(MUTATION, { i: { chainId: 999, to: RECIPIENT } }) }],
    ['a reader key sending a mutation', { body: gql(MUTATION, { i: { chainId: 31337, to: RECIPIENT } }), headers: { authorization: `Bearer ${READER_KEY}` } }],
    ['several operations without operationName', { body: gql('query A { __typename } query B { __typename }') }],
    ['several operations with operationName', { body: gql('query A { __typename } query B { __typename }', undefined, { operationName: 'B' }) }],
    ['an unknown operationName', { body: gql('query A { __typename }', undefined, { operationName: 'Z' }) }],
    ['a query too deep', { body: gql(`{ ${'transactions { edges { node { attempts { '.repeat(3)} id ${'} } } }'.repeat(3)} }`) }],
    ['no query', { body: JSON.stringify({ variables: {} }) }],
    ['an unexpected parameter', { body: JSON.stringify({ query: '{ __typename }', nope: 1 }) }],
    ['query not a string', { body: JSON.stringify({ query: 42 }) }],
    ['variables not an object', { body: JSON.stringify({ query: '{ __typename }', variables: 'x' }) }],
    ['a body that is not JSON', { body: '{"query": ' }],
    ['a JSON array (batching is off)', { body: JSON.stringify([{ query: '{ __typename }' }]) }],
    ['a JSON string', { body: '"{ __typename }"' }],
    ['JSON null', { body: 'null' }],
    ['an empty body', { body: '' }],
    ['asking for application/graphql-response+json', { body: gql('{ nope }'), headers: { accept: 'application/graphql-response+json' } }],
    ['asking for JSON among others', { body: gql('{ __typename }'), headers: { accept: 'text/html, application/json;q=0.9, */*;q=0.8' } }],
    ['asking for HTML only', { body: gql('{ __typename }'), headers: { accept: 'text/html' } }],
    // (With the default Accept, yoga streams it as multipart until the client leaves.)
    ['a subscription over POST asking for JSON', { body: gql('subscription { transactionUpdated { id } }'), headers: { accept: 'application/json' } }],
  ]

  it.each(cases)('answers %s as yoga does', async (_name, init) => {
    const [direct, viaYoga] = await Promise.all([send(env.service.url, init), send(yogaUrl, init)])
    expect(direct).toEqual(viaYoga)
  })

  it('answers 400 random malformed requests as yoga does (variables of every JSON shape, broken queries, odd bodies)', async () => {
    let seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)
    const startSeed = seed
    const rand = () => {
      seed = (seed + 0x6d2b79f5) >>> 0
      let t = seed
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
    const value = (depth = 0): unknown =>
      pick<() => unknown>([
        () => null,
        () => rand() < 0.5,
        () => Math.floor(rand() * 2 ** 40) * (rand() < 0.5 ? -1 : 1),
        () => pick([1.5, 2 ** 64, -0, 1e308]),
        () => pick(['', 'x', '0x', '0xzz', RECIPIENT, RECIPIENT.slice(0, 41), '2099-01-01T00:00:00Z', 'tomorrow', '31337', '-1', '1e18', '\u0000', '🙂']),
        () => (depth > 2 ? 1 : Array.from({ length: Math.floor(rand() * 3) }, () => value(depth + 1))),
        () =>
          depth > 2
            ? {}
            : Object.fromEntries(
                Array.from({ length: Math.floor(rand() * 4) }, () => [pick(['chainId', 'to', 'data', 'value', 'gasLimit', 'from', 'idempotencyKey', 'validUntil', 'nope']), value(depth + 1)]),
              ),
      ])()
    const READS = 'query($id: ID!, $h: Hex!, $f: Int, $a: String, $s: [TransactionStatus!], $from: Address) { transaction(id: $id) { id } transactionByHash(hash: $h) { id } transactions(first: $f, after: $a, status: $s, from: $from) { edges { cursor } } }'
    const bodies = Array.from({ length: 400 }, (): string =>
      pick<() => string>([
        // Poisoned: chainId is never valid here, so no submission is stored on either path.
        () => gql(MUTATION, { i: { ...(value() as object), chainId: pick([0, -1, 'x', 2 ** 60, 5]) } }),
        () => gql(MUTATION, pick([{ i: value() }, {}, { j: 1 }])),
        () => gql(READS, { id: value(), h: value(), f: value(), a: value(), s: value(), from: value() }),
        () => gql(pick(['{', '{ transactions(first: ) }', 'query { ...F }', '{ __typename @skip }', 'mutation { broadcastTransaction }', '{ transaction(id: "x") { id } }'])),
        () => JSON.stringify({ query: '{ __typename }', variables: value(), operationName: pick([undefined, null, 'X', 7]) }),
        () => JSON.stringify(value()),
      ])(),
    )
    const differences: string[] = []
    for (const body of bodies) {
      const [direct, viaYoga] = await Promise.all([send(env.service.url, { body }), send(yogaUrl, { body })])
      if (JSON.stringify(direct) !== JSON.stringify(viaYoga)) differences.push(`${body.slice(0, 200)}\n  direct: ${JSON.stringify(direct).slice(0, 300)}\n  yoga:   ${JSON.stringify(viaYoga).slice(0, 300)}`)
    }
    expect(differences, `seed ${startSeed}`).toEqual([])
    expect((await sql`SELECT count(*)::int AS n FROM transactions WHERE idempotency_key IS DISTINCT FROM 'direct-path-1'`)[0]!.n, `seed ${startSeed}`).toBe(0)
  })

  it('really serves the common requests itself, and steps aside for the rest', async () => {
    // A server with only the direct path: 599 when it declines.
    const ctx = env.service.ctx
    const yoga = createGraphQL(ctx, buildSchema())
    const principal = createAuthenticator(ctx.config.apiKeys, ctx.config.auth).authenticate(`Bearer ${ADMIN_KEY}`)
    const directOnly = createServer(async (req, res) => {
      const served = canServeDirectly(req) && (await serveGraphQLPost(yoga, req, res, await readBody(req), { principal }, ctx.log))
      if (!served) res.writeHead(599).end()
    })
    await new Promise<void>((resolve) => directOnly.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(directOnly.address() as AddressInfo).port}`
    try {
      const served = async (init: { body: string; headers?: Record<string, string> }) => (await send(url, init)).status !== 599
      expect(await served({ body: gql('{ __typename }') })).toBe(true)
      expect(await served({ body: gql('{ nope }') })).toBe(true)
      expect(await served({ body: gql(MUTATION, { i: { chainId: 999, to: RECIPIENT } }) })).toBe(true)
      expect(await served({ body: '{"query": ' })).toBe(false)
      expect(await served({ body: JSON.stringify({ query: '{ __typename }', nope: 1 }) })).toBe(false)
      expect(await served({ body: gql('{ __typename }'), headers: { origin: 'http://example.com' } })).toBe(false)
      expect(await served({ body: gql('subscription { transactionUpdated { id } }') })).toBe(false)
    } finally {
      await new Promise<void>((resolve) => directOnly.close(() => resolve()))
    }
  })

  it('takes a submission once and answers it as yoga does (same idempotency key on both paths)', async () => {
    // Fields that do not change as the transaction moves on (the status may, between the two calls).
    const body = gql('mutation($i: BroadcastTransactionInput!) { broadcastTransaction(input: $i) { id to value chainId } }', {
      i: { chainId: 31337, to: RECIPIENT, value: '7', idempotencyKey: 'direct-path-1' },
    })
    const direct = await send(env.service.url, { body })
    const viaYoga = await send(yogaUrl, { body })
    expect(direct.status).toBe(200)
    expect(JSON.parse(direct.body).data.broadcastTransaction).toMatchObject({ to: RECIPIENT, value: '7' })
    expect(direct).toEqual(viaYoga)
    const rows = await sql`SELECT id FROM transactions WHERE idempotency_key = 'direct-path-1'`
    expect(rows.map((r) => r.id)).toEqual([JSON.parse(direct.body).data.broadcastTransaction.id])
  })
})
