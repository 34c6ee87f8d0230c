import { createClient } from 'graphql-ws'
import postgres from 'postgres'
import WebSocket from 'ws'
import { afterEach, describe, expect, it } from 'vitest'
import { ADMIN_KEY, capturedLogger, RECIPIENT, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

/**
 * Stopping the service (what SIGTERM does) while requests are being answered: each request either got its
 * answer or was never stored. Before, open connections were cut at once, and requests whose rows had been
 * committed answered the client with a reset: a client retrying without an idempotency key sent them twice.
 */
describe('stopping under load', () => {
  let env: TestEnv | undefined
  afterEach(async () => {
    await env?.stop()
    env = undefined
  })

  it('every stored request was answered 200; every request that failed on the connection was not stored', async () => {
    env = await startTestEnv()
    const url = `${env.service.url}/broadcast_transaction`
    const outcomes = new Map<string, 'ok' | 'error' | 'refused'>()
    let n = 0
    const client = async (c: number) => {
      for (;;) {
        const key = `stop-${c}-${n++}`
        try {
          const res = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
            body: JSON.stringify({ to: RECIPIENT, value: '1', idempotencyKey: key }),
          })
          await res.text()
          outcomes.set(key, res.status === 200 ? 'ok' : 'refused')
          if (res.status !== 200) return
        } catch {
          outcomes.set(key, 'error')
          return
        }
      }
    }
    const clients = Array.from({ length: 64 }, (_, c) => client(c))
    // Stop once the load is well under way (a fixed delay answered only 90 on a slow CI run).
    await waitFor('100 answers', async () => [...outcomes.values()].filter((o) => o === 'ok').length > 100, 30_000, 10)
    await env.service.stop()
    await Promise.all(clients)

    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      const stored = new Set((await sql<{ k: string }[]>`SELECT idempotency_key AS k FROM transactions WHERE idempotency_key LIKE 'stop-%'`).map((r) => r.k))
      const ok = [...outcomes].filter(([, o]) => o === 'ok').map(([k]) => k)
      const failed = [...outcomes].filter(([, o]) => o !== 'ok').map(([k]) => k)
      expect(ok.length).toBeGreaterThan(100)
      for (const k of ok) expect(stored.has(k), `${k} answered 200 but not stored`).toBe(true)
      const storedButNotAnswered = failed.filter((k) => stored.has(k))
      expect(storedButNotAnswered, 'stored, but the client saw an error').toEqual([])
    } finally {
      await sql.end()
    }
  })

  it('a broadcastTransaction sent over the WebSocket and being stored when the stop comes gets its answer', async () => {
    env = await startTestEnv()
    const sql = postgres(env.databaseUrl, { max: 2, onnotice: () => {} })
    const client = createClient({
      url: `${env.service.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${ADMIN_KEY}` },
      retryAttempts: 0,
    })
    const locker = await sql.reserve()
    try {
      // The insert waits behind a lock on the table while the stop begins.
      await locker`BEGIN`
      await locker`LOCK TABLE transactions IN EXCLUSIVE MODE`
      const answer = new Promise<{ data?: any; error?: unknown }>((resolve) => {
        let data: any
        client.subscribe(
          { query: 'mutation($input: BroadcastTransactionInput!) { broadcastTransaction(input: $input) { id status } }', variables: { input: { to: RECIPIENT, value: '1' } } },
          { next: (r) => (data = r), error: (error) => resolve({ error }), complete: () => resolve({ data }) },
        )
      })
      // The accept path's insert itself (any statement on the table waits too: the stages' updates, before the
      // mutation even arrived, and a CI run stopped then).
      await waitFor('the insert waiting on the lock', async () => (await sql`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO transactions%'`).length > 0, 10_000, 20)
      const stopped = env.service.stop()
      await new Promise((r) => setTimeout(r, 300))
      await locker`COMMIT`
      // Before: the socket was cut at once; the row was stored and its client, told nothing, could send it again.
      const result = await answer
      expect(result.error).toBeUndefined()
      expect(result.data.data.broadcastTransaction.status).toBe('QUEUED')
      await stopped
      const [row] = await sql`SELECT status FROM transactions WHERE id = ${result.data.data.broadcastTransaction.id}`
      expect(row?.status).toBeDefined()
    } finally {
      locker.release()
      await client.dispose()
      await sql.end()
    }
  })

  it('stopping while a backlog is being signed: the drain ends after its batch, sends what it signed, and nothing fails on the closed database', async () => {
    const { log, lines } = capturedLogger('warn')
    env = await startTestEnv({ log, config: (c) => (c.limits = { requestsPerSecond: 100_000, burst: 100_000 }) })
    const submitOne = (i: number) =>
      fetch(`${env!.service.url}/broadcast_transaction`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
        body: JSON.stringify({ to: RECIPIENT, value: String(i + 1) }),
      }).then((r) => r.status)
    const statuses: number[] = []
    for (let i = 0; i < 3_000; i += 200) statuses.push(...(await Promise.all(Array.from({ length: 200 }, (_, j) => submitOne(i + j)))))
    expect([...new Set(statuses)]).toEqual([200])
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      const [left] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM transactions WHERE status = 'QUEUED'`
      expect(left!.n, 'a backlog still to sign when the stop begins').toBeGreaterThan(0)
      await env.service.stop()
      // Before: drains started by the accept path went on after the database was closed under them.
      const errors = lines.map((l) => JSON.parse(l)).filter((l) => l.level >= 50)
      expect(errors.map((e) => e.msg)).toEqual([])
      // What was signed went out: no PENDING row whose attempt was never handed to the node.
      const [unsent] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM transactions WHERE status = 'PENDING' AND last_sent_at IS NULL`
      expect(unsent!.n).toBe(0)
    } finally {
      await sql.end()
    }
  })
})
