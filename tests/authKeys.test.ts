import postgres from 'postgres'
import type { Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { chainControl, submit, waitForStatus } from './helpers/chainControl.ts'
import { runCli } from './helpers/cli.ts'
import { createTestDatabase } from './helpers/database.ts'
import { writeConfigFile } from './helpers/serviceProcess.ts'
import { ADMIN_KEY, capturedLogger, RECIPIENT, SIGNER, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

/** Runtime code that always reverts (see adminActions.test.ts): gives a FAILED transaction to retry. */
const REVERTING_CODE = ('0x6064600c60003960646000fd08c379a0' +
  '0000000000000000000000000000000000000000000000000000000000000020' +
  '0000000000000000000000000000000000000000000000000000000000000004' +
  '6e6f706500000000000000000000000000000000000000000000000000000000') as Hex
const TARGET = '0x00000000000000000000000000000000000c0de1'

const RETRY = `mutation($id: ID!) { retryTransaction(id: $id) { id status } }`
const BROADCAST = `mutation($i: BroadcastTransactionInput!) { broadcastTransaction(input: $i) { id } }`

/** API keys made with the CLI, every role boundary, revocation, and the audit trail. */
describe('API keys and roles', () => {
  let env: TestEnv
  let sql: postgres.Sql
  const keys: Record<string, string> = {}

  const call = async (path: string, key: string | null, body?: unknown) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (key !== null) headers.authorization = `Bearer ${key}`
    const res = await fetch(`${env.service.url}${path}`, body === undefined ? { headers } : { method: 'POST', headers, body: JSON.stringify(body) })
    return { status: res.status, json: (await res.json()) as any }
  }
  const gql = (key: string | null, query: string, variables?: unknown) => call('/graphql', key, { query, variables })
  const rows = async () => Number((await sql`SELECT count(*)::int AS n FROM transactions`)[0]!.n)

  beforeAll(async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.2 } })
    sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    for (const role of ['reader', 'submitter', 'admin', 'doomed'] as const) {
      const res = await runCli(['keys', 'create', '--name', `cli-${role}`, '--role', role === 'doomed' ? 'submitter' : role], { DATABASE_URL: env.databaseUrl })
      expect(res.code, res.stderr).toBe(0)
      keys[role] = res.stdout.trim()
      expect(keys[role]).toMatch(/^txb_[\w-]{43}$/)
    }
  }, 90_000)
  afterAll(async () => {
    await sql?.end()
    await env?.stop()
  })

  it('stores only a SHA-256 of each key, and records the creation in the audit trail', async () => {
    const stored = await sql`SELECT name, role, key_hash FROM api_keys ORDER BY name`
    expect(stored.map((r) => r.name)).toEqual(['cli-admin', 'cli-doomed', 'cli-reader', 'cli-submitter'])
    for (const r of stored) {
      expect(r.key_hash).toMatch(/^[0-9a-f]{64}$/)
      expect(Object.values(keys)).not.toContain(r.key_hash)
    }
    const audit = await sql`SELECT actor, action, subject FROM audit_events ORDER BY id`
    expect(audit.map((a) => `${a.action} ${a.subject}`)).toEqual([
      'api_key.created cli-reader',
      'api_key.created cli-submitter',
      'api_key.created cli-admin',
      'api_key.created cli-doomed',
    ])
    expect(audit[0]!.actor).toMatch(/^cli/)
    // Names are unique.
    const again = await runCli(['keys', 'create', '--name', 'cli-admin', '--role', 'admin'], { DATABASE_URL: env.databaseUrl })
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/already exists/)
  })

  it('no key, an unknown key or a malformed header → 401 UNAUTHENTICATED on REST and GraphQL', async () => {
    for (const key of [null, 'txb_not-a-real-key-at-all-0000000000000000000', '']) {
      const rest = await call('/broadcast_transaction', key, { to: RECIPIENT })
      expect(rest.status).toBe(401)
      expect(rest.json.error.code).toBe('UNAUTHENTICATED')
      expect((await call('/transactions/00000000-0000-4000-8000-000000000000', key)).status).toBe(401)
      const g = await gql(key, `{ transactions { edges { node { id } } } }`)
      expect(g.status).toBe(401)
      expect(g.json.errors[0].extensions.code).toBe('UNAUTHENTICATED')
    }
    expect(await rows()).toBe(0)
  })

  it('a database key named like a config key is refused, naming the clash; the config key still works', async () => {
    // The test config has an admin key named "test-admin".
    const res = await runCli(['keys', 'create', '--name', 'test-admin', '--role', 'reader'], { DATABASE_URL: env.databaseUrl })
    expect(res.code, res.stderr).toBe(0)
    const twin = res.stdout.trim()
    // Running services load a new key within seconds; until then it is merely unknown.
    const rest = await waitFor('the clash named', async () => {
      const r = await call('/transactions/00000000-0000-4000-8000-000000000000', twin)
      return r.status !== 401 || r.json.error.message.includes('same name') ? r : null
    })
    expect(rest.status).toBe(401)
    expect(rest.json.error).toMatchObject({ code: 'UNAUTHENTICATED' })
    expect(rest.json.error.message).toMatch(/^API key "test-admin" from the database has the same name as a key in the config file.*keys revoke --name test-admin/)
    const g = await gql(twin, `{ transactions { edges { node { id } } } }`)
    expect(g.status).toBe(401)
    expect(g.json.errors[0].message).toContain('same name as a key in the config file')
    expect((await call('/transactions/00000000-0000-4000-8000-000000000000', ADMIN_KEY)).status).toBe(404)
    // A service starting on that database says so in its log (after an upgrade, the key's holder only sees 401s).
    const { log, lines } = capturedLogger('warn')
    const second = await startTestEnv({ log, databaseUrl: () => env.databaseUrl })
    try {
      expect(lines.some((l) => l.includes('share a name with a key in the config file') && l.includes('"test-admin"'))).toBe(true)
    } finally {
      await second.stop()
    }
    // Revoked, its name stays taken in the database: the config key shares what the name keys (idempotency keys). Said at start.
    expect((await runCli(['keys', 'revoke', '--name', 'test-admin'], { DATABASE_URL: env.databaseUrl })).code).toBe(0)
    const warned = capturedLogger('warn')
    const third = await startTestEnv({ log: warned.log, databaseUrl: () => env.databaseUrl })
    try {
      expect(warned.lines.some((l) => l.includes('have the names of revoked database keys') && l.includes('"test-admin"'))).toBe(true)
    } finally {
      await third.stop()
    }
  }, 60_000)

  it('reader: reads; submitting → 403 FORBIDDEN naming "submitter"', async () => {
    await waitFor('CLI keys to be loaded', async () => (await gql(keys.reader!, `{ transactions { edges { node { id } } } }`)).status === 200, 10_000)
    const rest = await call('/broadcast_transaction', keys.reader!, { to: RECIPIENT })
    expect(rest.status).toBe(403)
    expect(rest.json.error.code).toBe('FORBIDDEN')
    expect(rest.json.error.message).toMatch(/"submitter"/)
    const g = await gql(keys.reader!, BROADCAST, { i: { to: RECIPIENT } })
    expect(g.json.errors[0].extensions.code).toBe('FORBIDDEN')
    expect(g.json.errors[0].message).toMatch(/"submitter"/)
    expect(await rows()).toBe(0)
    expect((await call('/transactions/00000000-0000-4000-8000-000000000000', keys.reader!)).status).toBe(404)
  })

  it('submitter: submits; retry and cancel → 403 FORBIDDEN naming "admin"; admin: retry works and is attributed', async () => {
    await chainControl(env).setCode(TARGET, REVERTING_CODE)
    const res = await call('/broadcast_transaction', keys.submitter!, { to: TARGET, data: '0xabcdef01' })
    expect(res.status).toBe(200)
    const id = res.json.transactionId
    await waitForStatus(env, id, 'FAILED')
    for (const m of ['retryTransaction', 'cancelTransaction']) {
      const g = await gql(keys.submitter!, `mutation($id: ID!) { ${m}(id: $id) { id } }`, { id })
      expect(g.json.errors[0].extensions.code).toBe('FORBIDDEN')
      expect(g.json.errors[0].message).toMatch(/"admin"/)
    }
    const byReader = await gql(keys.reader!, RETRY, { id })
    expect(byReader.json.errors[0].extensions.code).toBe('FORBIDDEN')
    await chainControl(env).setCode(TARGET, '0x00')
    const ok = await gql(keys.admin!, RETRY, { id })
    expect(ok.json.errors).toBeUndefined()
    expect(ok.json.data.retryTransaction).toEqual({ id, status: 'QUEUED' })
    const done = await waitForStatus(env, id, 'CONFIRMED')
    expect(done.events.find((e: any) => e.fromStatus === 'FAILED' && e.toStatus === 'QUEUED').actor).toBe('cli-admin')
    const [row] = await sql`SELECT api_key_name FROM transactions WHERE id = ${id}`
    expect(row!.api_key_name).toBe('cli-submitter')
  })

  it('a revoked key → 401 within seconds, on a WebSocket or SSE stream already open too; the revocation is audited; list shows it', async () => {
    expect((await call('/broadcast_transaction', keys.doomed!, { to: RECIPIENT, value: '1' })).status).toBe(200)
    // Two sockets opened with the key before it is revoked: one with a live subscription and nothing else to
    // do (its next result must close it), one for an operation sent after the revocation.
    const socket = () => {
      const state = { closedWith: null as number | null }
      const client = createClient({
        url: `${env.service.url.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${keys.doomed}` },
        retryAttempts: 0,
        lazy: false,
        onNonLazyError: () => {}, // the 4403 close is expected here
        on: { closed: (e) => (state.closedWith = (e as { code: number }).code) },
      })
      return { client, state }
    }
    const streaming = socket()
    const sending = socket()
    // One whose subscription gets no result after the revocation (a status that never comes).
    const quiet = socket()
    quiet.client.subscribe({ query: `subscription { transactionUpdated(status: [REVERTED]) { id } }` }, { next: () => {}, error: () => {}, complete: () => {} })
    // And subscriptions over SSE, read to their end in the background: one for every change, one for a status
    // that never comes (nothing it would deliver happens after the revocation).
    const openSse = async (query: string) => {
      const stream = { text: '', ended: false }
      const res = await fetch(`${env.service.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${keys.doomed}` },
        body: JSON.stringify({ query }),
      })
      void (async () => {
        const reader = res.body!.getReader()
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
          if (done) break
          stream.text += new TextDecoder().decode(value)
        }
        stream.ended = true
      })()
      return stream
    }
    const sse = await openSse(`subscription { transactionUpdated { id status } }`)
    const quietSse = await openSse(`subscription { transactionUpdated(status: [REVERTED]) { id status } }`)
    const overSocket = (query: string, variables: Record<string, unknown>) =>
      new Promise<any>((resolve) => {
        let result: any = null
        sending.client.subscribe({ query, variables }, { next: (r) => (result = r), error: (e) => resolve({ error: e }), complete: () => resolve(result) })
      })
    const before = await overSocket(BROADCAST, { i: { to: RECIPIENT, value: '4' } })
    expect(before.data.broadcastTransaction.id).toBeTruthy()
    const streamed: string[] = []
    streaming.client.subscribe({ query: `subscription { transactionUpdated { id status } }` }, { next: (r: any) => r.data && streamed.push(r.data.transactionUpdated.status), error: () => {}, complete: () => {} })
    await waitFor('the subscription streaming', async () => streamed.length > 0, 8_000, 50)
    const revoke = await runCli(['keys', 'revoke', '--name', 'cli-doomed'], { DATABASE_URL: env.databaseUrl })
    expect(revoke.code, revoke.stderr).toBe(0)
    await waitFor('revoked key refused', async () => (await call('/broadcast_transaction', keys.doomed!, { to: RECIPIENT, value: '2' })).status === 401, 8_000, 50)
    const refused = await call('/broadcast_transaction', keys.doomed!, { to: RECIPIENT, value: '3' })
    expect(refused.json.error).toMatchObject({ code: 'UNAUTHENTICATED' })
    expect((await gql(keys.doomed!, `{ transactions { edges { node { id } } } }`)).status).toBe(401)
    // The streaming socket is closed with 4403 at its next result (a change made with another key), without
    // sending anything itself; the other refuses a new operation (before: both went on, an admin key's too).
    const rowsBefore = await rows()
    await submit(env, { to: RECIPIENT, value: '6' })
    await waitFor('the streaming socket closed with 4403', async () => streaming.state.closedWith === 4403, 8_000, 50)
    // The SSE stream ends at that result with the key's refusal (before: it streamed on).
    await waitFor('the SSE stream ended', async () => sse.ended, 8_000, 50)
    expect(sse.text).toMatch(/"code":"UNAUTHENTICATED"/)
    await waitFor('the quiet SSE stream ended', async () => quietSse.ended, 10_000, 50)
    expect(quietSse.text).toMatch(/"code":"UNAUTHENTICATED"/)
    // Before: the quiet socket stayed open for good, holding its WebSocket and subscription slots.
    await waitFor('the quiet socket closed with 4403', async () => quiet.state.closedWith === 4403, 10_000, 50)
    const after = await overSocket(BROADCAST, { i: { to: RECIPIENT, value: '5' } })
    expect(after?.data?.broadcastTransaction ?? null).toBeNull()
    expect(await rows()).toBe(rowsBefore + 1)
    await streaming.client.dispose()
    await sending.client.dispose()
    await quiet.client.dispose()
    const [audit] = await sql`SELECT actor, action FROM audit_events WHERE subject = 'cli-doomed' AND action = 'api_key.revoked'`
    expect(audit!.actor).toMatch(/^cli/)
    const list = await runCli(['keys', 'list', '--json'], { DATABASE_URL: env.databaseUrl })
    const listed = JSON.parse(list.stdout) as Array<{ name: string; revoked_at: string | null }>
    expect(listed.find((k) => k.name === 'cli-doomed')!.revoked_at).not.toBeNull()
    expect(listed.find((k) => k.name === 'cli-admin')!.revoked_at).toBeNull()
    expect(JSON.stringify(listed)).not.toMatch(/key_hash|txb_/)
    const again = await runCli(['keys', 'revoke', '--name', 'cli-doomed'], { DATABASE_URL: env.databaseUrl })
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/already revoked/)
  })

  it('the CLI explains itself and needs DATABASE_URL', async () => {
    // No dev mode's database either (the CLI would use it).
    const noDb = await runCli(['keys', 'list'], { DATABASE_URL: '', BROADCASTER_DATA_DIR: '/nonexistent/tx-broadcaster-data' })
    expect(noDb.code).toBe(2)
    expect(noDb.stderr).toMatch(/DATABASE_URL/)
    const help = await runCli(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/keys create --name/)
    // A URL postgres.js cannot parse (a password with an unencoded "/"): Node printed the error with the URL in it.
    const badUrl = await runCli(['keys', 'list'], { DATABASE_URL: 'postgres://admin:s3cr/etpw@db.internal/x' })
    expect(badUrl.code).toBe(1)
    expect(badUrl.stderr + badUrl.stdout).not.toContain('s3cr')
    expect(badUrl.stderr).toMatch(/^tx-broadcaster keys list: Invalid URL/)
    // The service itself: one line naming DATABASE_URL, before the signers and providers are looked at.
    const configPath = writeConfigFile({
      chains: [{ chainId: 31337, name: 'anvil', providers: [{ name: 'anvil', url: env.anvil.url }] }],
      signers: [{ name: 'hot', chainIds: [31337], privateKey: SIGNER.privateKey }],
      apiKeys: [{ name: 'admin', role: 'admin', key: ADMIN_KEY }],
    })
    const refused = await runCli(['--config', configPath], { DATABASE_URL: 'postgres://u:secretpw@127.0.0.1:1/x' })
    expect(refused.code).toBe(1)
    expect(refused.stderr.trim()).toBe('tx-broadcaster: DATABASE_URL: cannot use the database at 127.0.0.1:1/x (ECONNREFUSED)')
    // A port in use: one line naming PORT, before anything starts (it failed after the stages ran, with two stack traces).
    const held = new URL(env.service.url).port
    const taken = await runCli(['--config', configPath], { DATABASE_URL: env.databaseUrl, PORT: held, HOST: '127.0.0.1' })
    expect(taken.code).toBe(1)
    expect(taken.stderr.trim()).toBe(`tx-broadcaster: PORT ${held} on HOST 127.0.0.1 is in use: stop what listens there, or set PORT to a free port`)
    // A misspelt option is refused, naming the ones it takes (--jsn printed the table; --nmae said --name was missing).
    const typo = await runCli(['keys', 'list', '--jsn'], { DATABASE_URL: env.databaseUrl })
    expect(typo.code).toBe(2)
    expect(typo.stderr).toBe('tx-broadcaster keys list: unknown option --jsn (list takes --json)\n')
    // Usage is checked before the database is reached (it was told with exit 1 after connecting, or not at all).
    const unreachable = 'postgres://u@127.0.0.1:1/x'
    const badRole = await runCli(['keys', 'create', '--name', 'x', '--role', 'root'], { DATABASE_URL: unreachable })
    expect(badRole.code).toBe(2)
    expect(badRole.stderr).toBe('tx-broadcaster keys create: --role: expected one of reader, submitter, admin\n')
    const badName = await runCli(['keys', 'create', '--name', 'a b', '--role', 'reader'], { DATABASE_URL: unreachable })
    expect(badName.code).toBe(2)
    expect(badName.stderr).toMatch(/^tx-broadcaster keys create: name: use 1-64 letters/)
    const noRole = await runCli(['keys', 'create', '--name', 'x'], { DATABASE_URL: unreachable })
    expect([noRole.code, noRole.stderr]).toEqual([2, 'tx-broadcaster keys create: --role is required\n'])
  })

  it('only `keys` sets up a new database; the other commands refuse one without the service\'s tables', async () => {
    const empty = await createTestDatabase()
    try {
      const counts = await runCli(['counts', 'rebuild'], { DATABASE_URL: empty.url })
      expect(counts.code).toBe(1)
      expect(counts.stderr).toMatch(/none of the service's tables: is DATABASE_URL the database the service runs with\?/)
      const replay = await runCli(['webhooks', 'replay', '--name', 'x', '--since', '2026-11-27T08:00:00Z'], { DATABASE_URL: empty.url })
      expect(replay.code).toBe(1)
      expect(replay.stderr).toMatch(/none of the service's tables/)
      // Before, `counts rebuild` created every table there and said "counted 0 transactions".
      const probe = postgres(empty.url, { max: 1, onnotice: () => {} })
      try {
        expect((await probe`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`)[0]!.n).toBe(0)
      } finally {
        await probe.end()
      }
      expect((await runCli(['keys', 'list'], { DATABASE_URL: empty.url })).code).toBe(0)
      // --help after a subcommand is help (it was an unknown command or option, exit 2).
      for (const args of [['counts', 'rebuild', '--help'], ['webhooks', 'replay', '--help']]) {
        const help = await runCli(args, { DATABASE_URL: '' })
        expect([help.code, help.stdout]).toEqual([0, expect.stringMatching(/^Usage:/)])
      }
    } finally {
      await empty.drop()
    }
  })

  it('the CLI does not migrate a database that an older version of the service runs', async () => {
    // As if the service running on it were one migration older than this CLI: before, `keys list` applied the
    // migration under the running instances, unasked.
    const [last] = await sql`SELECT * FROM drizzle.__tx_broadcaster_migrations ORDER BY id DESC LIMIT 1`
    await sql`DELETE FROM drizzle.__tx_broadcaster_migrations WHERE id = ${last!.id}`
    try {
      const list = await runCli(['keys', 'list'], { DATABASE_URL: env.databaseUrl })
      expect(list.code).toBe(1)
      expect(list.stderr).toMatch(/older version of the service/)
      expect((await sql`SELECT count(*)::int AS n FROM drizzle.__tx_broadcaster_migrations WHERE hash = ${last!.hash}`)[0]!.n).toBe(0)
    } finally {
      await sql`INSERT INTO drizzle.__tx_broadcaster_migrations ${sql(last!)}`
    }
    expect((await runCli(['keys', 'list'], { DATABASE_URL: env.databaseUrl })).code).toBe(0)
  })
})

describe('start-up without any API key', () => {
  it('refuses to start outside dev mode, naming the fix; starts with "auth": "disabled"', async () => {
    await expect(startTestEnv({ config: (c) => (c.apiKeys = []) })).rejects.toThrow(/No API keys.*keys create/s)
    const env = await startTestEnv({ config: (c) => ((c.apiKeys = []), (c.auth = 'disabled')) })
    try {
      const res = await fetch(`${env.service.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ transactions { edges { node { id } } } }' }),
      })
      expect(res.status).toBe(200)
    } finally {
      await env.stop()
    }
  })
})

describe('metrics.requireKey', () => {
  it('/metrics asks for a key: 401 without one or with a wrong one; any valid key reads it, a reader\'s too, without its rate limit', async () => {
    const READER = 'metrics-reader-key-0123456789'
    const env = await startTestEnv({
      config: (c) => {
        c.metrics = { requireKey: true }
        c.apiKeys.push({ name: 'scraper', role: 'reader', key: READER })
        // A key's rate is the app's: scrapes with it take none of it.
        c.limits = { requestsPerSecond: 0.5, burst: 2 }
      },
    })
    try {
      const scrape = (key: string | null) => fetch(`${env.service.url}/metrics`, key === null ? {} : { headers: { authorization: `Bearer ${key}` } })
      for (const key of [null, 'txb_not-a-real-key-at-all-0000000000000000000']) {
        const res = await scrape(key)
        expect(res.status).toBe(401)
        const body = (await res.json()) as any
        expect(body.error.code).toBe('UNAUTHENTICATED')
        expect(JSON.stringify(body)).not.toMatch(/txb_transactions/)
      }
      for (const key of [READER, READER, READER, READER, ADMIN_KEY]) {
        const res = await scrape(key)
        expect(res.status).toBe(200)
        expect(await res.text()).toMatch(/^# HELP txb_transactions_accepted_total /m)
      }
    } finally {
      await env.stop()
    }
  })
})
