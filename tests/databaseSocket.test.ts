import { existsSync } from 'node:fs'
import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { submit, waitForStatus } from './helpers/chainControl.ts'
import { ADMIN_DATABASE_URL } from './helpers/database.ts'
import { RECIPIENT, startTestEnv, type TestEnv } from './helpers/testService.ts'

describe("DATABASE_URL naming a Unix socket (libpq's ?host=/dir, as Cloud SQL's proxy and same-host installs use)", () => {
  let env: TestEnv | undefined
  afterEach(async () => {
    await env?.stop()
    env = undefined
  })

  it('the service migrates, accepts and confirms over the socket, and none of its connections is TCP', async () => {
    const admin = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} })
    try {
      const [row] = await admin<{ dirs: string }[]>`SELECT current_setting('unix_socket_directories') AS dirs`
      const dirs = row!.dirs
      const dir = dirs.split(',')[0]!.trim()
      // The CI machine's Postgres runs beside the tests and has its socket; one elsewhere (another host, a
      // container) has none this process can reach, and that is no failure of the service.
      if (!dir.startsWith('/') || !existsSync(dir)) return void console.warn(`skipped: no Unix socket of the test Postgres here (${dirs})`)
      let socketUrl = ''
      env = await startTestEnv({
        databaseUrl: (tcpUrl) => {
          const u = new URL(tcpUrl)
          u.hostname = 'localhost'
          u.searchParams.set('host', dir)
          return (socketUrl = u.toString())
        },
      })
      expect(socketUrl).toContain('?host=')
      const id = await submit(env, { to: RECIPIENT, value: '7' })
      expect((await waitForStatus(env, id, 'CONFIRMED')).status).toBe('CONFIRMED')
      const database = new URL(env.databaseUrl).pathname.slice(1)
      const connections = await admin<{ application_name: string; tcp: boolean }[]>`
        SELECT application_name, client_addr IS NOT NULL OR client_port <> -1 AS tcp FROM pg_stat_activity WHERE datname = ${database}`
      // The service's own pool and pg-boss's.
      expect(connections.some((c) => c.application_name.startsWith('tx-broadcaster:'))).toBe(true)
      expect(connections.length).toBeGreaterThan(1)
      expect(connections.filter((c) => c.tcp)).toEqual([])
    } finally {
      await admin.end()
    }
  })
})
