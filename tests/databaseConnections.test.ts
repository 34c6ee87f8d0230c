import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { submit } from './helpers/chainControl.ts'
import { ADMIN_DATABASE_URL } from './helpers/database.ts'
import { RECIPIENT, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

describe("the service's database connections", () => {
  let env: TestEnv | undefined
  // After each test: each starts its own, and one stopped only after all left the one before running (an anvil that
  // outlived the test run, mining every 0.2 s, on every run of the suite).
  afterEach(async () => {
    await env?.stop()
    env = undefined
  })

  it('compile no query with JIT, the job queue\'s included (400 ms of LLVM for the dashboard\'s 1 ms read of a page\'s attempts)', async () => {
    env = await startTestEnv()
    const { db, boss } = env.service.ctx
    for (const pool of [db.sql, db.locks]) expect((await pool<{ jit: string }[]>`SELECT current_setting('jit') AS jit`)[0]!.jit).toBe('off')
    expect((await boss.getDb().executeSql(`SELECT current_setting('jit') AS jit`, [])).rows[0].jit).toBe('off')
  })

  it('database.maxConnections caps the connections the service keeps for its work; a burst still confirms, its work waiting its turn', async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.2 }, config: (c) => (c.database = { maxConnections: 2 }) })
    const database = new URL(env.databaseUrl).pathname.slice(1)
    // Watched from outside: the server's own list of the connections to the service's database.
    const admin = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} })
    let most = 0
    let watching = true
    const watcher = (async () => {
      while (watching) {
        const [row] = await admin<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${database} AND application_name LIKE 'tx-broadcaster:%'`
        most = Math.max(most, row!.n)
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    try {
      const ids = await Promise.all(Array.from({ length: 60 }, (_, i) => submit(env!, { to: RECIPIENT, value: String(i + 1), gasLimit: '21000' })))
      await waitFor('all CONFIRMED', async () => {
        const res = await env!.graphql(`{ transactionCounts { status count } }`)
        return res.json.data.transactionCounts.find((c: any) => c.status === 'CONFIRMED').count === ids.length
      }, 60_000)
    } finally {
      watching = false
      await watcher.catch(() => {}) // a failed read of the list must not hide the test's own failure
      await admin.end()
    }
    // The 2 for its work, the one chain watcher's lock and the one that listens for changes (the job queue's are
    // named apart). With the default of 20, a burst like this one opened more.
    expect(most).toBeGreaterThan(0)
    expect(most).toBeLessThanOrEqual(4)
  }, 90_000)
  it('/readyz and /metrics answer in time while every work connection waits (on a table someone locked): the database is not called down', async () => {
    env = await startTestEnv({ config: (c) => (c.database = { maxConnections: 2 }) })
    const holder = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    let release!: () => void
    const released = new Promise<void>((r) => (release = r))
    let locked!: () => void
    const lockTaken = new Promise<void>((r) => (locked = r))
    const held = holder.begin(async (tx) => {
      await tx`LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE`
      locked()
      await released
    })
    try {
      await lockTaken
      // Requests waiting on the lock hold both work connections.
      const waiting = Array.from({ length: 4 }, (_, i) => env!.post('/broadcast_transaction', { to: RECIPIENT, value: String(i + 1) }).catch(() => null))
      await new Promise((r) => setTimeout(r, 2_700)) // past the gauges' 2 s cache
      let started = Date.now()
      const ready = await fetch(`${env.service.url}/readyz`)
      // Before: its check waited in line for a work connection, and after 1 s said the database was down (503).
      expect(ready.status).toBe(200)
      expect(Date.now() - started).toBeLessThan(1_500)
      started = Date.now()
      const metrics = await fetch(`${env.service.url}/metrics`)
      expect(metrics.status).toBe(200)
      // Before: the scrape waited for a connection until the lock went (past Prometheus's timeout), and was lost.
      expect(await metrics.text()).toContain('txb_provider_status')
      expect(Date.now() - started).toBeLessThan(4_000)
      release()
      // Nothing was lost: every request waiting was stored once the lock went.
      for (const r of await Promise.all(waiting)) expect(r?.status).toBe(200)
    } finally {
      release()
      await held
      await holder.end()
    }
    await env.stop()
    env = undefined
  }, 30_000)
})
