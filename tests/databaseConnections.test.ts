import postgres from 'postgres'
import { afterAll, describe, expect, it } from 'vitest'
import { submit } from './helpers/chainControl.ts'
import { ADMIN_DATABASE_URL } from './helpers/database.ts'
import { RECIPIENT, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

describe("the service's database connections", () => {
  let env: TestEnv | undefined
  afterAll(async () => {
    await env?.stop()
  })

  it('compile no query with JIT, the job queue\'s included (400 ms of LLVM for the dashboard\'s 1 ms read of a page\'s attempts)', async () => {
    env = await startTestEnv()
    const { db, boss } = env.service.ctx
    for (const pool of [db.sql, db.locks]) expect((await pool<{ jit: string }[]>`SELECT current_setting('jit') AS jit`)[0]!.jit).toBe('off')
    expect((await boss.getDb().executeSql(`SELECT current_setting('jit') AS jit`, [])).rows[0].jit).toBe('off')
    await env.stop()
    env = undefined
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
})
