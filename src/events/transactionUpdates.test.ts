import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_DATABASE_URL, createMigratedTestDatabase } from '../../tests/helpers/database.ts'
import { createLogger } from '../common/logger.ts'
import type { Db } from '../db/connect.ts'
import type { ListedTransactionRow } from '../store/transactionRow.ts'
import { startTransactionUpdates } from './transactionUpdates.ts'

/** The change feed against a real Postgres: a load that fails once is tried again, not dropped. */
describe('transaction updates feed', () => {
  let db: Awaited<ReturnType<typeof createMigratedTestDatabase>>
  let conn: Db
  beforeAll(async () => {
    db = await createMigratedTestDatabase()
    conn = db.conn
  })
  afterAll(async () => {
    await db?.drop()
  })

  /**
   * Drops the LISTEN connection of the feed whose connections carry `appName` and keeps it from coming back
   * (as while Postgres restarts) while `meanwhile` runs; the test's own connections are open already and stay.
   */
  async function withListenerDown(appName: string, meanwhile: () => Promise<void>): Promise<void> {
    const admin = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} })
    const dbName = new URL(db.url).pathname.slice(1)
    await admin.unsafe(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS false`)
    try {
      const [listener] = await admin<{ pid: number }[]>`
        SELECT pid FROM pg_stat_activity WHERE datname = ${dbName} AND application_name = ${appName} AND query ILIKE 'listen%'`
      expect(listener).toBeDefined()
      await admin`SELECT pg_terminate_backend(${listener!.pid}, 5000)`
      await meanwhile()
      await new Promise((r) => setTimeout(r, 300))
    } finally {
      await admin.unsafe(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`)
      await admin.end()
    }
  }

  /**
   * A change committed while the feed's load cannot read `transactions` (locked for `lockedMs`, past the feed's own
   * `lockTimeoutMs`): what the subscriber has seen 5 s after the lock is gone.
   */
  async function deliveredPastLock(lockedMs: number, lockTimeoutMs: number, opts: { retryMs?: number } = {}) {
    const feedSql = postgres(db.url, { max: 2, onnotice: () => {}, connection: { lock_timeout: lockTimeoutMs } })
    const updates = await startTransactionUpdates(feedSql, createLogger({ level: 'silent', pretty: false }), opts)
    const seen: ListedTransactionRow[] = []
    updates.subscribe((row) => seen.push(row))
    try {
      const [tx] = await conn.sql<{ id: string }[]>`
        INSERT INTO transactions (chain_id, signer, "to", value) VALUES (31337, '0x0000000000000000000000000000000000000001', NULL, 0) RETURNING id`
      await conn.sql.begin(async (locked) => {
        // The feed's load joins transactions: held here, it fails until this commits.
        await locked`LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE`
        await feedSql`INSERT INTO transaction_events (transaction_id, from_status, to_status) VALUES (${tx!.id}, NULL, 'QUEUED')`
        await new Promise((r) => setTimeout(r, lockedMs))
      })
      const deadline = Date.now() + 5_000
      while (seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      return { id: tx!.id, seen: seen.map((r) => [r.id, r.status]) }
    } finally {
      await updates.stop()
      await feedSql.end({ timeout: 5 })
    }
  }

  it('a change whose load fails (a lock held past lock_timeout) still reaches the subscriber, once the lock is gone', async () => {
    // The feed's own connections give up on a lock after 100 ms, as any statement timeout would.
    const { id, seen } = await deliveredPastLock(400, 100)
    expect(seen).toEqual([[id, 'QUEUED']])
  })

  it('a change whose load fails for longer than ten tries is still delivered (it was dropped after about 28 s)', async () => {
    // Tries 10 ms apart, growing: the eleventh failure came after about 0.6 s, and the old feed gave the change up.
    const { id, seen } = await deliveredPastLock(2_000, 20, { retryMs: 10 })
    expect(seen).toEqual([[id, 'QUEUED']])
  })

  it('changes committed while the LISTEN connection was down reach the subscriber once it is back, each once', async () => {
    const feedSql = postgres(db.url, { max: 2, onnotice: () => {}, connection: { application_name: 'feed-under-test' } })
    const updates = await startTransactionUpdates(feedSql, createLogger({ level: 'silent', pretty: false }))
    const seen: Array<[string, string]> = []
    updates.subscribe((row) => seen.push([row.id, row.status]))
    try {
      const [tx] = await conn.sql<{ id: string }[]>`
        INSERT INTO transactions (chain_id, signer, "to", value) VALUES (31337, '0x0000000000000000000000000000000000000002', NULL, 0) RETURNING id`
      const event = (to: string, from: string | null) =>
        conn.sql`INSERT INTO transaction_events (transaction_id, from_status, to_status) VALUES (${tx!.id}, ${from}, ${to})`
      await event('QUEUED', null)
      const waitSeen = async (n: number) => {
        const deadline = Date.now() + 10_000
        while (seen.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      }
      await waitSeen(1)
      await withListenerDown('feed-under-test', async () => {
        await event('PENDING', 'QUEUED')
        await event('INCLUDED', 'PENDING')
      })
      await waitSeen(3)
      await event('CONFIRMED', 'INCLUDED')
      await waitSeen(4)
      await new Promise((r) => setTimeout(r, 300))
      expect(seen).toEqual([
        [tx!.id, 'QUEUED'],
        [tx!.id, 'PENDING'],
        [tx!.id, 'INCLUDED'],
        [tx!.id, 'CONFIRMED'],
      ])
    } finally {
      await updates.stop()
      await feedSql.end({ timeout: 5 })
    }
  })
  it('more than 10,000 changes committed while LISTEN was down all reach the subscriber (those past 10,000 were dropped)', async () => {
    const feedSql = postgres(db.url, { max: 2, onnotice: () => {}, connection: { application_name: 'feed-many' } })
    const updates = await startTransactionUpdates(feedSql, createLogger({ level: 'silent', pretty: false }))
    const seen: number[] = []
    updates.subscribe((row) => seen.push(Number(row.event_id)))
    try {
      const [tx] = await conn.sql<{ id: string }[]>`
        INSERT INTO transactions (chain_id, signer, "to", value) VALUES (31337, '0x0000000000000000000000000000000000000005', NULL, 0) RETURNING id`
      await conn.sql`INSERT INTO transaction_events (transaction_id, from_status, to_status) VALUES (${tx!.id}, NULL, 'QUEUED')`
      const waitSeen = async (n: number, ms = 10_000) => {
        const deadline = Date.now() + ms
        while (seen.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      }
      await waitSeen(1)
      const N = 25_000
      await withListenerDown('feed-many', async () => {
        await conn.sql`
          INSERT INTO transaction_events (transaction_id, from_status, to_status)
          SELECT ${tx!.id}, 'QUEUED', 'QUEUED' FROM generate_series(1, ${N})`
      })
      // Changes go on being made while the feed catches up, page by page: each is delivered after the pages before it
      // (sent with the first page, a transaction's later status went out ahead of earlier ones on the next pages).
      let live = 0
      let liveOn = true
      const liveChanges = (async () => {
        while (liveOn) {
          await conn.sql`INSERT INTO transaction_events (transaction_id, from_status, to_status) VALUES (${tx!.id}, 'QUEUED', 'PENDING')`
          live++
          await new Promise((r) => setTimeout(r, 10))
        }
      })()
      await waitSeen(1 + N, 30_000)
      liveOn = false
      await liveChanges
      await waitSeen(1 + N + live)
      await new Promise((r) => setTimeout(r, 300))
      expect(live).toBeGreaterThan(0)
      expect(seen.length).toBe(1 + N + live)
      expect(seen.findIndex((id, i) => i > 0 && id <= seen[i - 1]!)).toBe(-1)
    } finally {
      await updates.stop()
      await feedSql.end({ timeout: 5 })
    }
  }, 60_000)

  it('an event that committed while LISTEN was down, with a lower id than one announced before the drop, is delivered too', async () => {
    const feedSql = postgres(db.url, { max: 2, onnotice: () => {}, connection: { application_name: 'feed-under-test-2' } })
    const updates = await startTransactionUpdates(feedSql, createLogger({ level: 'silent', pretty: false }))
    const seen: Array<[string, string]> = []
    updates.subscribe((row) => seen.push([row.id, row.status]))
    const held = await conn.sql.reserve()
    try {
      const [tx] = await conn.sql<{ id: string }[]>`
        INSERT INTO transactions (chain_id, signer, "to", value) VALUES (31337, '0x0000000000000000000000000000000000000003', NULL, 0) RETURNING id`
      // The feed knows where it started once it delivered something (both run in its flush chain): a warm-up
      // event of another transaction, then only this one's are looked at.
      const [warm] = await conn.sql<{ id: string }[]>`
        INSERT INTO transactions (chain_id, signer, "to", value) VALUES (31337, '0x0000000000000000000000000000000000000004', NULL, 0) RETURNING id`
      await conn.sql`INSERT INTO transaction_events (transaction_id, from_status, to_status) VALUES (${warm!.id}, NULL, 'QUEUED')`
      const warmUntil = Date.now() + 5_000
      while (!seen.some(([id]) => id === warm!.id) && Date.now() < warmUntil) await new Promise((r) => setTimeout(r, 50))
      seen.length = 0
      // Event N is inserted and held uncommitted; event N+1 commits and is announced.
      await held`BEGIN`
      await held`INSERT INTO transaction_events (transaction_id, from_status, to_status) VALUES (${tx!.id}, 'QUEUED', 'PENDING')`
      await feedSql`INSERT INTO transaction_events (transaction_id, from_status, to_status) VALUES (${tx!.id}, NULL, 'QUEUED')`
      const deadline = Date.now() + 5_000
      while (seen.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      expect(seen).toEqual([[tx!.id, 'QUEUED']])
      // N commits while no one listens.
      await withListenerDown('feed-under-test-2', async () => void (await held`COMMIT`))
      const until = Date.now() + 10_000
      while (seen.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 50))
      await new Promise((r) => setTimeout(r, 300))
      expect(seen).toEqual([
        [tx!.id, 'QUEUED'],
        [tx!.id, 'PENDING'],
      ])
    } finally {
      held.release()
      await updates.stop()
      await feedSql.end({ timeout: 5 })
    }
  })
})
