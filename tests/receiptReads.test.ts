import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { toHex } from 'viem'
import { chainControl, getTx, submit, waitForStatus } from './helpers/chainControl.ts'
import { startFaultProxy, type FaultProxy } from './helpers/faultProxy.ts'
import { RECIPIENT, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

/** The service on an anvil that mines on demand (confirmations 1), its providers fault proxies in front of it (first = highest weight). */
async function startBehindProxies(names: string[]): Promise<{ env: TestEnv; proxies: FaultProxy[] }> {
  const proxies: FaultProxy[] = []
  const env = await startTestEnv({
    anvil: { noMining: true },
    setup: async (a) => {
      for (const _ of names) proxies.push(await startFaultProxy(a.url))
    },
    config: (c) => {
      c.chains[0].providers = names.map((name, i) => ({ name, url: proxies[i]!.url, weight: names.length - i }))
    },
  })
  started.push({ env, proxies })
  return { env, proxies }
}

/** Everything startBehindProxies started, stopped after each test. */
const started: Array<{ env: TestEnv; proxies: FaultProxy[] }> = []
afterEach(async () => {
  for (const { env, proxies } of started.splice(0)) {
    await env.stop()
    await Promise.all(proxies.map((p) => p.stop()))
  }
})

/** Submits one request per calldata tag and waits until each one's first attempt was handed to the node. */
async function submitSent(env: TestEnv, tags: string[]): Promise<string[]> {
  const ids = await Promise.all(tags.map((tag) => submit(env, { to: RECIPIENT, data: toHex(tag) })))
  for (const id of ids) await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
  return ids
}

const oneByOne = (proxies: FaultProxy[]) => proxies.reduce((n, p) => n + (p.stats.calls.eth_getTransactionReceipt ?? 0), 0)

describe("the watcher reading a block's receipts in one call", () => {

  it('a first provider without the block yet (null) does not make the watcher read it one by one: the next provider answers', async () => {
    const { env, proxies } = await startBehindProxies(['behind', 'current'])
    const [behind, current] = proxies as [FaultProxy, FaultProxy]
    const ids = await submitSent(env, ['b1', 'b2', 'b3', 'b4'])
    // The first provider by weight answers null for every block's receipts (one block behind, always).
    behind.setMode('methodError', { errorMethods: ['eth_getBlockReceipts'], answerNull: true })
    behind.resetStats()
    current.resetStats()
    await chainControl(env).mine()
    for (const id of ids) await waitForStatus(env, id, 'CONFIRMED')
    // Before: viem took the null for an answer (BlockNotFoundError), and the block was read one receipt at a time.
    expect(behind.stats.calls.eth_getBlockReceipts).toBeGreaterThanOrEqual(1)
    expect(current.stats.calls.eth_getBlockReceipts).toBeGreaterThanOrEqual(1)
    expect(oneByOne(proxies)).toBe(0)
  })

  it('a block no provider serves yet is asked for again on a later tick, not read one by one; the cursor waits before it', async () => {
    const { env, proxies } = await startBehindProxies(['only'])
    const [only] = proxies as [FaultProxy]
    const ids = await submitSent(env, ['n1', 'n2', 'n3'])
    only.setMode('methodError', { errorMethods: ['eth_getBlockReceipts'], answerNull: true, failFirst: 2 })
    only.resetStats()
    await chainControl(env).mine()
    for (const id of ids) await waitForStatus(env, id, 'CONFIRMED')
    expect(only.stats.calls.eth_getBlockReceipts).toBe(3)
    expect(oneByOne(proxies)).toBe(0)
  })

  it('a block whose receipts never come back in one call is read one by one after a few ticks', async () => {
    const { env, proxies } = await startBehindProxies(['only'])
    const [only] = proxies as [FaultProxy]
    const ids = await submitSent(env, ['x1', 'x2', 'x3'])
    only.setMode('methodError', { errorMethods: ['eth_getBlockReceipts'], answerNull: true })
    await chainControl(env).mine()
    for (const id of ids) await waitForStatus(env, id, 'CONFIRMED')
    expect(oneByOne(proxies)).toBeGreaterThanOrEqual(3)
  })

  it('a provider without eth_getBlockReceipts, last in the order, does not turn bulk reads off while the first one has it', async () => {
    const { env, proxies } = await startBehindProxies(['first', 'without'])
    const [first, without] = proxies as [FaultProxy, FaultProxy]
    const anvil = chainControl(env)
    // The first provider fails once; the last one has no such method (geth's words before 1.13).
    first.setMode('methodError', { errorMethods: ['eth_getBlockReceipts'], failFirst: 1 })
    without.setMode('methodError', {
      errorMethods: ['eth_getBlockReceipts'],
      error: { code: -32601, message: 'the method eth_getBlockReceipts does not exist/is not available' },
    })
    const before = await submitSent(env, ['f1', 'f2', 'f3'])
    await anvil.mine()
    for (const id of before) await waitForStatus(env, id, 'CONFIRMED')
    // The next block: read in one call from the first provider again.
    first.resetStats()
    without.resetStats()
    const after = await submitSent(env, ['g1', 'g2', 'g3'])
    await anvil.mine()
    for (const id of after) await waitForStatus(env, id, 'CONFIRMED')
    // Before: the "method not found" of the last provider turned eth_getBlockReceipts off for the process's life.
    expect(first.stats.calls.eth_getBlockReceipts).toBeGreaterThanOrEqual(1)
    expect(oneByOne(proxies)).toBe(0)
  })

  it('a first provider without the block yet (null), then one without eth_getBlockReceipts: asked again later, not read one by one', async () => {
    const { env, proxies } = await startBehindProxies(['first', 'without'])
    const [first, without] = proxies as [FaultProxy, FaultProxy]
    without.setMode('methodError', {
      errorMethods: ['eth_getBlockReceipts'],
      error: { code: -32601, message: 'the method eth_getBlockReceipts does not exist/is not available' },
    })
    const ids = await submitSent(env, ['h1', 'h2', 'h3'])
    // viem's fallback throws the last provider's error: "method not found", though the first one has the method
    // and only lacked the block. Taken as a failed read, the block was read one receipt at a time.
    first.setMode('methodError', { errorMethods: ['eth_getBlockReceipts'], answerNull: true, failFirst: 2 })
    first.resetStats()
    without.resetStats()
    await chainControl(env).mine()
    for (const id of ids) await waitForStatus(env, id, 'CONFIRMED')
    expect(first.stats.calls.eth_getBlockReceipts).toBeGreaterThanOrEqual(3)
    expect(oneByOne(proxies)).toBe(0)
  })
})

/** A block hash no chain has: what a provider on a losing fork would put in its receipts. */
const FORK_HASH = `0x${'f0'.repeat(32)}`
const FINAL = ['CONFIRMED', 'REVERTED', 'CANCELLED']

/** Watches a transaction for `ms`: every status it showed, and every block hash. */
async function watchFor(env: TestEnv, id: string, ms: number): Promise<{ statuses: Set<string>; blockHashes: Set<string> }> {
  const statuses = new Set<string>()
  const blockHashes = new Set<string>()
  const end = Date.now() + ms
  while (Date.now() < end) {
    const t = await getTx(env, id)
    statuses.add(t.status)
    if (t.blockHash) blockHashes.add(t.blockHash)
    await new Promise((r) => setTimeout(r, 50))
  }
  return { statuses, blockHashes }
}

describe('receipts read one by one from a provider on another fork', () => {

  it('a receipt whose block is not the one the scan read settles nothing; the transaction never shows that block, nor a final status', async () => {
    const { env, proxies } = await startBehindProxies(['forked'])
    const [forked] = proxies as [FaultProxy]
    const [id] = await submitSent(env, ['fork-1'])
    // No receipts in bulk; each receipt read one by one names a block on another fork.
    forked.setMode('methodError', { errorMethods: ['eth_getBlockReceipts'], receiptBlockHash: FORK_HASH })
    await chainControl(env).mine(2)
    // The scan (20 ticks before the cursor moves on) and the receipt sweep after it (every 10 ticks, 50 ms each).
    const seen = await watchFor(env, id!, 4_000)
    expect(forked.stats.calls.eth_getTransactionReceipt).toBeGreaterThan(0)
    // Before: CONFIRMED at once (depth 1), in the other fork's block.
    for (const status of FINAL) expect(seen.statuses).not.toContain(status)
    expect(((await getTx(env, id!)).events as any[]).map((e) => e.toStatus)).not.toContain('CONFIRMED')
    // The provider is back on the canonical chain: confirmed in the block that holds it.
    forked.setMode('ok')
    const done = await waitForStatus(env, id!, 'CONFIRMED')
    const block = await env.chain.getBlock({ blockNumber: BigInt(done.blockNumber) })
    expect(done.blockHash).toBe(block.hash)
  })

  it('the receipt sweep does not make a transaction final from a receipt in another fork\'s block', async () => {
    const { env, proxies } = await startBehindProxies(['forked'])
    const [forked] = proxies as [FaultProxy]
    const [id] = await submitSent(env, ['sweep-1'])
    await chainControl(env).mine()
    const first = await waitForStatus(env, id!, 'CONFIRMED')
    // As if the scan had missed its block: PENDING again with the cursor past it, so only the sweep can find it,
    // and the provider it asks answers from another fork.
    const sql = env.service.ctx.db.sql
    forked.setMode('methodError', { errorMethods: ['eth_getBlockReceipts'], receiptBlockHash: FORK_HASH })
    await sql.begin(async (tx) => {
      await tx`UPDATE transactions SET status = 'PENDING', final_at = NULL, included_at = NULL, mined_hash = NULL, block_number = NULL,
        block_hash = NULL, receipt_status = NULL, gas_used = NULL, effective_gas_price = NULL WHERE id = ${id!}`
      await tx`UPDATE attempts SET status = 'SENT' WHERE transaction_id = ${id!}`
    })
    forked.resetStats()
    const seen = await watchFor(env, id!, 3_000)
    expect(forked.stats.calls.eth_getTransactionReceipt).toBeGreaterThan(0)
    // Before: the sweep settled it CONFIRMED in the fork's block.
    for (const status of FINAL) expect(seen.statuses).not.toContain(status)
    forked.setMode('ok')
    const again = await waitForStatus(env, id!, (t) => t.status === 'CONFIRMED' && t.events.length > first.events.length)
    expect(again.blockHash).toBe(first.blockHash)
  })
})

describe('the receipt sweep while the scan of new blocks fails', () => {

  it('still confirms a transaction mined in a block the scan already passed', async () => {
    const { env, proxies } = await startBehindProxies(['p'])
    const [p] = proxies as [FaultProxy]
    const [id] = await submitSent(env, ['swept'])
    await chainControl(env).mine()
    const first = await waitForStatus(env, id!, 'CONFIRMED')
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      const cursor = async () => Number((await sql<{ n: string }[]>`SELECT block_number AS n FROM chain_cursors`)[0]?.n ?? -1)
      await waitFor('the cursor at the block', async () => (await cursor()) >= Number(first.blockNumber))
      // The next block cannot be read (every tick's scan fails), and the row is PENDING again as if the scan
      // had missed its block: only the sweep can find it.
      const next = `"0x${((await cursor()) + 1).toString(16)}"`
      p.setMode('methodError', { errorMethods: ['eth_getBlockByNumber'], errorParamsInclude: next })
      await chainControl(env).mine(2)
      await sql.begin(async (tx) => {
        await tx`UPDATE transactions SET status = 'PENDING', final_at = NULL, included_at = NULL, mined_hash = NULL, block_number = NULL,
          block_hash = NULL, receipt_status = NULL, gas_used = NULL, effective_gas_price = NULL WHERE id = ${id!}`
        await tx`UPDATE attempts SET status = 'SENT' WHERE transaction_id = ${id!}`
      })
      // Before: the sweep ran only after a scan that did not fail, so the row stayed PENDING for as long as the scan failed.
      const again = await waitForStatus(env, id!, (t) => t.status === 'CONFIRMED' && t.events.length > first.events.length, 15_000)
      expect(again.blockHash).toBe(first.blockHash)
      expect(p.stats.faulted).toBeGreaterThan(0)
      expect(await cursor()).toBe(Number(first.blockNumber))
    } finally {
      await sql.end()
    }
  })
})
