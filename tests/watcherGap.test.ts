/**
 * A watcher whose stored cursor is far below the head: the service stopped for hours, or a chain added back after
 * weeks. It read every block in between, one call each, 200 per tick: a day of a fast chain was hundreds of
 * thousands of calls against a provider's rate limit before it saw the newest blocks.
 */
import postgres from 'postgres'
import { afterAll, describe, expect, it } from 'vitest'
import { ANVIL_DEV_ACCOUNTS, startAnvil } from '../src/dev/startAnvil.ts'
import { startService, type RunningService } from '../src/service.ts'
import { anvilRpc } from './helpers/chainControl.ts'
import { createTestDatabase } from './helpers/database.ts'
import { startFaultProxy } from './helpers/faultProxy.ts'
import { ADMIN_KEY, capturedLogger, RECIPIENT, testConfig, waitFor } from './helpers/testService.ts'

describe('a watcher far behind the head', () => {
  const stops: Array<() => Promise<unknown>> = []
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
  })

  /**
   * A service that confirmed one transaction (so its cursor is stored) and left a second in the node's pool, stopped;
   * 1,200 blocks mined meanwhile (past the 1,000 the watcher reads one by one), the first holding the second; then a
   * service started again on the same database, its config changed by `again`.
   */
  async function stoppedWhileBlocksCame(again: (c: Record<string, any>) => void = () => {}) {
    const anvil = await startAnvil({ noMining: true })
    stops.push(() => anvil.stop())
    const db = await createTestDatabase()
    stops.push(() => db.drop())
    // The service reaches the chain through a proxy that counts its calls.
    const proxy = await startFaultProxy(anvil.url)
    stops.push(() => proxy.stop())
    const sql = postgres(db.url, { max: 1, onnotice: () => {} })
    stops.push(() => sql.end())
    const rpc = (method: string, params: unknown[] = []) => anvilRpc(anvil.url, method, params)
    const start = async (change: (c: Record<string, any>) => void = () => {}) => {
      const logged = capturedLogger('info')
      const service = await startService({ config: testConfig(proxy.url, change), databaseUrl: db.url, port: 0, host: '127.0.0.1', log: logged.log })
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
    const read = async (id: string) => (await sql<{ status: string; block_number: number | null; mined_hash: string | null; final_at: Date | null }[]>`
      SELECT status, block_number::int AS block_number, mined_hash, final_at FROM transactions WHERE id = ${id}`)[0]!
    const cursorBlock = async () => (await sql<{ block_number: number }[]>`SELECT block_number::int AS block_number FROM chain_cursors`)[0]!.block_number

    const first = await start()
    const settled = await submit(first.service, '1')
    await waitFor('sent', async () => (await sql`SELECT 1 FROM attempts WHERE sent_at IS NOT NULL`).length > 0)
    await rpc('evm_mine')
    await waitFor('the first CONFIRMED', async () => (await read(settled)).status === 'CONFIRMED')
    const pending = await submit(first.service, '2')
    await waitFor('the second sent', async () => (await sql`SELECT 1 FROM attempts WHERE sent_at IS NOT NULL`).length > 1)
    await first.service.stop()
    const stoppedAt = await cursorBlock()
    // anvil takes about 5 s for these here.
    await rpc('anvil_mine', ['0x4b0'])
    const head = Number(await rpc('eth_blockNumber'))
    expect(head - stoppedAt).toBeGreaterThan(1_000)
    proxy.resetStats()
    const second = await start(again)
    const done = await waitFor('the second CONFIRMED', async () => {
      const row = await read(pending)
      return row.status === 'CONFIRMED' && row
    }, 30_000)
    // In its block, the first of those mined while the service was stopped.
    const receipt = await rpc('eth_getTransactionReceipt', [done.mined_hash])
    expect(Number(receipt.blockNumber)).toBe(done.block_number)
    expect(done.block_number).toBeLessThan(head - 1_000)
    await waitFor('the watcher at the head', async () => (await cursorBlock()) >= head, 30_000)
    const jumpLine = second.lines.find((l) => /the watcher is \d+ blocks behind: going on from/.test(l))
    const jumped = jumpLine !== undefined
    // What an operator's alert sees: the blocks passed unread, counted (no series before any jump).
    const metrics = await (await fetch(`${second.service.url}/metrics`)).text()
    const counted = /^txb_watch_blocks_skipped_total\{chain_id="31337"\} (\d+)$/m.exec(metrics)
    return { blockReads: proxy.stats.calls.eth_getBlockByNumber ?? 0, jumped, skipped: counted ? Number(counted[1]) : null, stoppedAt, head,
      /** From the jump's warning to the transaction mined in a block it went past being final, in ms. */
      jumpToFinalMs: jumpLine === undefined ? null : done.final_at!.getTime() - (JSON.parse(jumpLine) as { time: number }).time }
  }

  it('goes on near the head without reading every block in between; a transaction mined in them still confirms', async () => {
    const { blockReads, jumped, skipped, stoppedAt, head } = await stoppedWhileBlocksCame()
    // Before: one eth_getBlockByNumber per block passed, at least.
    expect(blockReads).toBeLessThan(500)
    expect(jumped).toBe(true)
    // No block is mined meanwhile (anvil mines on request here): it went on from 64 below that head.
    expect(skipped).toBe(head - 64 - stoppedAt)
  }, 90_000)

  it('looks up what of ours the blocks it went past hold on the tick it jumps, not on the tenth tick after', async () => {
    // A slower chain: a tick a second (blockTimeMs / 4, at most 1 s), so the receipt sweep's own turn, every tenth
    // tick, comes at least 9 s after the first.
    const { jumped, jumpToFinalMs } = await stoppedWhileBlocksCame((c) => {
      c.chains[0].blockTimeMs = 4_000
    })
    expect(jumped).toBe(true)
    expect(jumpToFinalMs).toBeLessThan(5_000)
  }, 90_000)

  it('reads every block as before while a signer no longer configured has a PENDING transaction (the receipt sweep skips it)', async () => {
    // Started again with another signer only: the second transaction's signer is gone from the config.
    const { blockReads, jumped, skipped } = await stoppedWhileBlocksCame((c) => {
      c.signers = [{ name: 'anvil-1', chainIds: [31337], privateKey: ANVIL_DEV_ACCOUNTS[1].privateKey }]
    })
    expect(jumped).toBe(false)
    expect(skipped).toBe(null)
    expect(blockReads).toBeGreaterThan(1_000)
  }, 90_000)
})
