import { createServer } from 'node:net'
import postgres from 'postgres'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../src/common/logger.ts'
import { startAnvil } from '../src/dev/startAnvil.ts'
import { startService } from '../src/service.ts'
import { createTestDatabase } from './helpers/database.ts'
import { testConfig } from './helpers/testService.ts'

// A machine without IPv6 loopback cannot listen there: nothing to check on it.
const ipv6Loopback = await new Promise<boolean>((resolve) => {
  const probe = createServer()
  probe.once('error', () => resolve(false))
  probe.listen(0, '::1', () => probe.close(() => resolve(true)))
})

describe('start-up', () => {
  it('a service whose port is taken once it is ready to listen stops what it started and says which setting to change', async () => {
    // The port taken after main.ts's own check (the window covers migrations and the stages' start): ws passed the
    // listen error on to its WebSocket server, which had no listener, and it crashed the process.
    const held = createServer()
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', () => r()))
    const port = (held.address() as { port: number }).port
    const anvil = await startAnvil({ blockTimeSec: 0.5 })
    const db = await createTestDatabase()
    try {
      const log = createLogger({ level: 'silent', pretty: false })
      const err = await startService({ config: testConfig(anvil.url), databaseUrl: db.url, port, host: '127.0.0.1', log }).catch((e: Error) => e)
      expect(err).toMatchObject({ name: 'ConfigError', message: `PORT ${port} on HOST 127.0.0.1 is in use: stop what listens there, or set PORT to a free port` })
      // Nothing of it is left on the database: its pool, pg-boss's and the change feed's connections are closed.
      const sql = postgres(db.url, { max: 1, onnotice: () => {} })
      try {
        const left = await sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`
        expect(left[0]!.n).toBe(0)
      } finally {
        await sql.end()
      }
    } finally {
      await new Promise<void>((r) => held.close(() => r()))
      await anvil.stop()
      await db.drop()
    }
  })

  it.runIf(ipv6Loopback)('on an IPv6 HOST its URL brackets the address (the banner printed http://::1:4000, which no client takes)', async () => {
    const anvil = await startAnvil({ blockTimeSec: 0.5 })
    const db = await createTestDatabase()
    try {
      const service = await startService({ config: testConfig(anvil.url), databaseUrl: db.url, port: 0, host: '::1', log: createLogger({ level: 'silent', pretty: false }) })
      try {
        expect(service.url).toMatch(/^http:\/\/\[::1\]:\d+$/)
        expect((await fetch(`${service.url}/healthz`)).status).toBe(200)
      } finally {
        await service.stop()
      }
    } finally {
      await anvil.stop()
      await db.drop()
    }
  })
})
