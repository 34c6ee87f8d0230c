/**
 * A watcher whose stored cursor is far below the head: the service stopped for hours, or a chain added back after
 * weeks. It read every block in between, one call each, 200 per tick: a day of a fast chain was hundreds of
 * thousands of calls against a provider's rate limit before it saw the newest blocks.
 */
import postgres from 'postgres'
import { afterAll, describe, expect, it } from 'vitest'
import { startAnvil } from '../src/dev/startAnvil.ts'
import { startService, type RunningService } from '../src/service.ts'
import { createTestDatabase } from './helpers/database.ts'
import { startFaultProxy } from './helpers/faultProxy.ts'
import { ADMIN_KEY, capturedLogger, RECIPIENT, testConfig, waitFor } from './helpers/testService.ts'

describe('a watcher far behind the head', () => {
  const stops: Array<() => Promise<unknown>> = []
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
  })

  it('goes on near the head without reading every block in between; a transaction mined in them still confirms', async () => {
    const anvil = await startAnvil({ noMining: true })
    stops.push(() => anvil.stop())
    const db = await createTestDatabase()
    stops.push(() => db.drop())
    // The service reaches the chain through a proxy that counts its calls.
    const proxy = await startFaultProxy(anvil.url)
    stops.push(() => proxy.stop())
    const sql = postgres(db.url, { max: 1, onnotice: () => {} })
    stops.push(() => sql.end())
    const rpc = async (method: string, params: unknown[] = []) => {
      const res = await fetch(anvil.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
      return ((await res.json()) as any).result
    }
    const start = async () => {
      const logged = capturedLogger('info')
      const service = await startService({ config: testConfig(proxy.url), databaseUrl: db.url, port: 0, host: '127.0.0.1', log: logged.log })
      stops.push(() => service.stop())
      return { service, lines: logged.lines }
    }
    const submit = async (service: RunningService, value: string) => {
      const res = await fetch(`${service.url}/broadcast_transaction`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
        body: JSON.stringify({ to: RECIPIENT, value, gasLimit: '21000' }),
      })
      return ((await res.json()) as any).transactionId as string
    }
    const read = async (id: string) => (await sql<{ status: string; block_number: number | null; mined_hash: string | null }[]>`
      SELECT status, block_number::int AS block_number, mined_hash FROM transactions WHERE id = ${id}`)[0]!

    // One confirmed, so the watcher has stored its cursor; then one sent and left in the node's pool.
    const first = await start()
    const settled = await submit(first.service, '1')
    await waitFor('sent', async () => (await sql`SELECT 1 FROM attempts WHERE sent_at IS NOT NULL`).length > 0)
    await rpc('evm_mine')
    await waitFor('the first CONFIRMED', async () => (await read(settled)).status === 'CONFIRMED')
    const pending = await submit(first.service, '2')
    await waitFor('the second sent', async () => (await sql`SELECT 1 FROM attempts WHERE sent_at IS NOT NULL`).length > 1)
    await first.service.stop()
    const [cursor] = await sql<{ block_number: number }[]>`SELECT block_number::int AS block_number FROM chain_cursors`
    // While it is stopped: 1,200 blocks (past the 1,000 the watcher reads one by one), the first holding the second
    // transaction. anvil takes about 5 s for them here.
    await rpc('anvil_mine', ['0x4b0'])
    const head = Number(await rpc('eth_blockNumber'))
    expect(head - cursor!.block_number).toBeGreaterThan(1_000)

    proxy.resetStats()
    const second = await start()
    const done = await waitFor('the second CONFIRMED', async () => {
      const row = await read(pending)
      return row.status === 'CONFIRMED' && row
    }, 30_000)
    const receipt = await rpc('eth_getTransactionReceipt', [done.mined_hash])
    expect(Number(receipt.blockNumber)).toBe(done.block_number)
    expect(done.block_number).toBeLessThan(head - 1_000)
    await waitFor('the watcher at the head', async () => {
      const [row] = await sql<{ block_number: number }[]>`SELECT block_number::int AS block_number FROM chain_cursors`
      return row!.block_number >= head
    }, 30_000)
    // Before: one eth_getBlockByNumber per block passed, at least.
    expect(proxy.stats.calls.eth_getBlockByNumber ?? 0).toBeLessThan(500)
    expect(second.lines.some((l) => /the watcher is \d+ blocks behind: going on from/.test(l))).toBe(true)
  }, 90_000)
})
