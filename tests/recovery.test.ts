import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { createWalletClient, http, toHex, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { chainControl, getTx, mineUntil, submit, transactionsFrom, waitForStatus } from './helpers/chainControl.ts'
import type { FaultProxy } from './helpers/faultProxy.ts'
import { startBehindFaultProxy } from './helpers/behindFaultProxy.ts'
import { RECIPIENT, SIGNER, startTestEnv, testConfig, waitFor, type TestEnv } from './helpers/testService.ts'
import { startService } from '../src/service.ts'
import { createLogger } from '../src/common/logger.ts'
import { ANVIL_DEV_ACCOUNTS } from '../src/dev/startAnvil.ts'
import type { StartAnvilOptions } from '../src/dev/startAnvil.ts'

const ETHER = 10n ** 18n

/** The service with its one provider a fault proxy in front of the test's anvil. */
/** The raw bytes of a transaction's first attempt, from the database. */
async function rawOf(env: TestEnv, id: string): Promise<Hex> {
  const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
  try {
    return (await sql<{ raw: Hex }[]>`SELECT raw FROM attempts WHERE transaction_id = ${id} ORDER BY id LIMIT 1`)[0]!.raw
  } finally {
    await sql.end()
  }
}

/** A service on an anvil that mines on demand (confirmations 1), and one request of `tag`'s calldata mined and CONFIRMED. */
async function oneConfirmed(tag: string): Promise<{ env: TestEnv; anvil: ReturnType<typeof chainControl>; id: string; confirmed: any }> {
  const env = await startTestEnv({ anvil: { noMining: true } })
  const anvil = chainControl(env)
  const id = await submit(env, { to: RECIPIENT, data: toHex(tag) })
  await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
  await anvil.mine()
  return { env, anvil, id, confirmed: await waitForStatus(env, id, 'CONFIRMED') }
}

/** On an anvil that mines on demand (confirmations 1): one request of `tag`'s calldata mined in block 3, CONFIRMED (two blocks a reorg can replace). */
async function confirmedInThirdBlock(env: TestEnv, tag: string): Promise<{ id: string; confirmed: any }> {
  const anvil = chainControl(env)
  await anvil.mine(2)
  const id = await submit(env, { to: RECIPIENT, data: toHex(tag) })
  await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
  await anvil.mine()
  return { id, confirmed: await waitForStatus(env, id, 'CONFIRMED') }
}

/** Mines a block every 300 ms (at most 60) until the transaction is FAILED or CONFIRMED; returns it then. */
async function mineUntilSettled(env: TestEnv, id: string): Promise<any> {
  let t = await getTx(env, id)
  for (let i = 0; i < 60 && t.status !== 'FAILED' && t.status !== 'CONFIRMED'; i++) {
    await chainControl(env).mine()
    await new Promise((r) => setTimeout(r, 300))
    t = await getTx(env, id)
  }
  return t
}

function startBehindProxy(anvil: StartAnvilOptions, rpc?: Record<string, unknown>, change?: (chain: Record<string, any>) => void): Promise<{ env: TestEnv; proxy: FaultProxy }> {
  return startBehindFaultProxy(anvil, (c) => {
    if (rpc) c.chains[0].rpc = rpc
    change?.(c.chains[0])
  })
}

/** The signer's key used outside the service: a transfer at `ours`'s nonce with three times its fees replaces it in the pool. */
function replaceOutside(env: TestEnv, ours: { nonce: string; maxFeePerGas: string; maxPriorityFeePerGas: string }): Promise<Hex> {
  const outside = createWalletClient({ account: privateKeyToAccount(SIGNER.privateKey), transport: http(env.anvil.url) })
  return outside.sendTransaction({
    chain: null,
    to: RECIPIENT,
    nonce: Number(ours.nonce),
    value: 1n,
    maxFeePerGas: BigInt(ours.maxFeePerGas) * 3n,
    maxPriorityFeePerGas: BigInt(ours.maxPriorityFeePerGas) * 3n,
  })
}

/** Submits one request per calldata tag and waits until each one's first attempt was handed to the node. */
async function submitSent(env: TestEnv, tags: string[]): Promise<string[]> {
  const ids = await Promise.all(tags.map((tag) => submit(env, { to: RECIPIENT, data: toHex(tag) })))
  for (const id of ids) await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
  return ids
}

describe('recovery on a real anvil', () => {
  let env: TestEnv | undefined
  afterEach(async () => {
    await env?.stop()
    env = undefined
  })

  it('a reorg that drops the block moves the transaction back to PENDING; it is sent again and confirmed', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].confirmations = 4) })
    const anvil = chainControl(env)
    await anvil.mine(2)
    const id = await submit(env, { to: RECIPIENT, value: '11' })
    await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    await anvil.mine()
    const included = await waitForStatus(env, id, 'INCLUDED')
    await anvil.reorg(1)
    const block = await env.chain.getBlock({ blockNumber: BigInt(included.blockNumber) })
    expect(block.hash).not.toBe(included.blockHash)
    await waitForStatus(env, id, 'PENDING')
    const t = await mineUntil(env, id, 'CONFIRMED')
    expect(t.status).toBe('CONFIRMED')
    expect(t.events.map((e: any) => e.toStatus)).toEqual(['QUEUED', 'PENDING', 'INCLUDED', 'PENDING', 'INCLUDED', 'CONFIRMED'])
    const canonical = await env.chain.getBlock({ blockNumber: BigInt(t.blockNumber) })
    expect(canonical.hash).toBe(t.blockHash)
    const mine = await transactionsFrom(env.chain, SIGNER.address)
    expect(mine.map((m) => m.nonce)).toEqual([0])
  })

  it('a reorg that drops a request past its validUntil does not send its bytes again: it is cancelled, and never runs', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => ((c.chains[0].confirmations = 4), (c.chains[0].fees = { bumpAfterMs: 1_000 })) })
    const anvil = chainControl(env)
    await anvil.mine(2)
    const validUntil = new Date(Date.now() + 3_000)
    const id = await submit(env, { to: RECIPIENT, value: '17', validUntil: validUntil.toISOString() })
    await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    await anvil.mine()
    await waitForStatus(env, id, 'INCLUDED')
    await new Promise((r) => setTimeout(r, validUntil.getTime() - Date.now() + 500))
    const answersBefore = (await getTx(env, id)).attempts.find((a: any) => a.purpose === 'REQUEST').providers.length
    // anvil drops the block's transactions with it: only a send from the service could bring the request back.
    await anvil.reorg(1)
    await waitForStatus(env, id, 'PENDING')
    await waitForStatus(env, id, (t) => t.attempts.some((a: any) => a.purpose === 'CANCEL' && a.status === 'SENT'))
    // Its own bytes were not sent again (a send records the providers' answers on the attempt).
    expect((await getTx(env, id)).attempts.find((a: any) => a.purpose === 'REQUEST').providers.length).toBe(answersBefore)
    const t = await mineUntil(env, id, 'CANCELLED')
    expect([t.status, t.error?.code]).toEqual(['CANCELLED', 'EXPIRED'])
    // Nonce 0 is the zero-value self-transfer; the request's transfer to RECIPIENT never ran.
    const mine = await transactionsFrom(env.chain, SIGNER.address)
    expect(mine.map((m) => [m.nonce, m.to?.toLowerCase()])).toEqual([[0, SIGNER.address.toLowerCase()]])
  })

  it('a transaction mined in a block the scan already passed is confirmed by the receipt sweep', async () => {
    env = await startTestEnv()
    const id = await submit(env, { to: RECIPIENT, value: '13' })
    const first = await waitForStatus(env, id, 'CONFIRMED')
    // As if the scan had missed its block (a restart past the rescan depth): the row is PENDING again,
    // and the watcher's cursor is already at or past that block, so only the sweep can find it.
    const sql = env.service.ctx.db.sql
    const [cursor] = await sql<{ block_number: number }[]>`SELECT block_number FROM chain_cursors WHERE chain_id = 31337`
    expect(cursor!.block_number).toBeGreaterThanOrEqual(Number(first.blockNumber))
    await sql.begin(async (tx) => {
      await tx`UPDATE transactions SET status = 'PENDING', final_at = NULL, included_at = NULL, mined_hash = NULL, block_number = NULL,
        block_hash = NULL, receipt_status = NULL, gas_used = NULL, effective_gas_price = NULL WHERE id = ${id}`
      await tx`UPDATE attempts SET status = 'SENT' WHERE transaction_id = ${id}`
    })
    const again = await waitForStatus(env, id, (t) => t.status === 'CONFIRMED' && t.events.length > first.events.length, 20_000)
    expect(again.blockNumber).toBe(first.blockNumber)
    expect(again.hash).toBe(first.hash)
    expect(again.events.slice(first.events.length).map((e: any) => e.toStatus)).toEqual(['INCLUDED', 'CONFIRMED'])
    expect((await transactionsFrom(env.chain, SIGNER.address)).map((m) => m.nonce)).toEqual([0])
  })

  it('the receipt sweep also finds a transaction of a signer no longer configured, mined in a block the scan passed', async () => {
    env = await startTestEnv()
    const id = await submit(env, { to: RECIPIENT, value: '14' })
    const first = await waitForStatus(env, id, 'CONFIRMED')
    // As in the test above (its receipts not read before the cursor moved on), and then the key is rotated out.
    await env.service.stop()
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    let restarted: Awaited<ReturnType<typeof startService>> | undefined
    try {
      await sql.begin(async (tx) => {
        await tx`UPDATE transactions SET status = 'PENDING', final_at = NULL, included_at = NULL, mined_hash = NULL, block_number = NULL,
          block_hash = NULL, receipt_status = NULL, gas_used = NULL, effective_gas_price = NULL WHERE id = ${id}`
        await tx`UPDATE attempts SET status = 'SENT' WHERE transaction_id = ${id}`
      })
      restarted = await startService({
        config: testConfig(env.anvil.url, (c) => (c.signers = [{ name: 'anvil-1', chainIds: [31337], privateKey: ANVIL_DEV_ACCOUNTS[1].privateKey }])),
        databaseUrl: env.databaseUrl,
        port: 0,
        host: '127.0.0.1',
        log: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false }),
      })
      // Before: PENDING for good (the sweep went over configured signers only, and nothing else looks at it).
      await waitFor('CONFIRMED again by the sweep', async () => (await sql`SELECT status FROM transactions WHERE id = ${id}`)[0]!.status === 'CONFIRMED', 20_000)
      const [row] = await sql<{ block_hash: string }[]>`SELECT block_hash FROM transactions WHERE id = ${id}`
      expect(row!.block_hash).toBe(first.blockHash)
    } finally {
      await sql.end()
      await restarted?.stop()
    }
  })

  it('queued requests of a signer rotated out: one that named no signer moves and confirms, a pinned one says why, an expired one fails', async () => {
    env = await startTestEnv()
    await env.service.stop()
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    let restarted: Awaited<ReturnType<typeof startService>> | undefined
    try {
      // As the accept path stores them (a backlog left when the key was rotated out), a minute ago.
      const rows = await sql<{ id: string; value: string }[]>`
        WITH ins AS (
          INSERT INTO transactions (chain_id, signer, signer_pinned, "to", value, gas_limit, api_key_name, valid_until, created_at, updated_at)
          VALUES (31337, ${SIGNER.address}, false, ${RECIPIENT}, 21, 21000, 'test-admin', NULL, now() - interval '1 minute', now() - interval '1 minute'),
                 (31337, ${SIGNER.address}, true, ${RECIPIENT}, 22, 21000, 'test-admin', NULL, now() - interval '1 minute', now() - interval '1 minute'),
                 (31337, ${SIGNER.address}, false, ${RECIPIENT}, 23, 21000, 'test-admin', now() - interval '1 second', now() - interval '1 minute', now() - interval '1 minute')
          RETURNING id, value::text
        ), events AS (INSERT INTO transaction_events (transaction_id, from_status, to_status, actor) SELECT id, NULL, 'QUEUED', 'test-admin' FROM ins)
        SELECT id, value FROM ins`
      const id = (value: string) => rows.find((r) => r.value === value)!.id
      // Another instance still signs for the old key (a rolling deploy): its rows are left to it.
      await sql`INSERT INTO signer_nonces (chain_id, signer, next_nonce, updated_at) VALUES (31337, ${SIGNER.address}, 0, now())`
      const next = ANVIL_DEV_ACCOUNTS[1]
      restarted = await startService({
        config: testConfig(env.anvil.url, (c) => (c.signers = [{ name: 'anvil-1', chainIds: [31337], privateKey: next.privateKey }])),
        databaseUrl: env.databaseUrl,
        port: 0,
        host: '127.0.0.1',
        log: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false }),
      })
      const row = (value: string) =>
        sql<{ status: string; signer: string; error_code: string | null; error_message: string | null }[]>`
          SELECT status, signer, error_code, error_message FROM transactions WHERE id = ${id(value)}`.then((r) => r[0]!)
      await new Promise((r) => setTimeout(r, 4_000)) // a sweep runs at start and every 3 s
      expect(await row('21')).toMatchObject({ status: 'QUEUED', signer: SIGNER.address, error_code: null })
      expect((await row('23')).status).toBe('QUEUED')
      // No instance has signed for it for minutes: the key was rotated out everywhere.
      await sql`UPDATE signer_nonces SET updated_at = now() - interval '3 minutes' WHERE signer = ${SIGNER.address}`
      // Before: all three stayed QUEUED, with no reason shown.
      await waitFor('the unpinned one CONFIRMED by the new signer', async () => (await row('21')).status === 'CONFIRMED', 20_000)
      expect((await row('21')).signer).toBe(next.address)
      const [moved] = await sql<{ detail: any }[]>`SELECT detail FROM transaction_events WHERE transaction_id = ${id('21')} AND detail->>'action' = 'signer_changed'`
      expect(moved!.detail).toMatchObject({ from: SIGNER.address, to: next.address, reason: 'its signer is not in the config' })
      await waitFor('the pinned one says why it waits', async () => (await row('22')).error_code === 'UNKNOWN_SIGNER', 10_000)
      const pinned = await row('22')
      expect([pinned.status, pinned.signer]).toEqual(['QUEUED', SIGNER.address])
      expect(pinned.error_message).toMatch(/^its signer 0x[0-9a-fA-F]{40} is not in the config of chain 31337; it waits until an instance with that signer runs/)
      const expired = await row('23')
      expect([expired.status, expired.error_code]).toEqual(['FAILED', 'EXPIRED'])
      expect(expired.error_message).toMatch(/^validUntil \d{4}-\d{2}-\d{2}T[\d:.]+Z passed before it was sent \(its signer is not in the config\)$/)
      // On chain: only the moved one ran, from the new signer.
      expect((await transactionsFrom(env.chain, next.address)).map((t) => t.value)).toEqual([21n])
      expect(await transactionsFrom(env.chain, SIGNER.address)).toEqual([])
    } finally {
      await sql.end()
      await restarted?.stop()
    }
  })

  it('the signer key used outside the service: it reconciles, and its own transactions all confirm exactly once', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].fees = { bumpAfterMs: 1000 }) })
    const anvil = chainControl(env)
    const outside = createWalletClient({ account: privateKeyToAccount(SIGNER.privateKey), transport: http(env.anvil.url) })
    // 1. Our transaction at nonce 0 is in the pool; someone replaces it with their own transaction at nonce 0, higher fees.
    const first = await submit(env, { to: RECIPIENT, data: toHex('request-1') })
    const pending = await waitForStatus(env, first, (t) => t.attempts[0]?.status === 'SENT')
    const theirs = await replaceOutside(env, pending.attempts[0])
    // 2. They also use nonces 1 and 2 directly.
    await outside.sendTransaction({ chain: null, to: RECIPIENT, nonce: 1, value: 1n })
    await outside.sendTransaction({ chain: null, to: RECIPIENT, nonce: 2, value: 1n })
    await anvil.mine()
    // 3. More of ours arrive meanwhile.
    const more = [await submit(env, { to: RECIPIENT, data: toHex('request-2') }), await submit(env, { to: RECIPIENT, data: toHex('request-3') })]
    const ids = [first, ...more]
    const deadline = Date.now() + 40_000
    let all = await Promise.all(ids.map((id) => getTx(env!, id)))
    while (!all.every((t) => t.status === 'CONFIRMED') && Date.now() < deadline) {
      await anvil.mine()
      await new Promise((r) => setTimeout(r, 300))
      all = await Promise.all(ids.map((id) => getTx(env!, id)))
    }
    expect(all.map((t) => t.status)).toEqual(['CONFIRMED', 'CONFIRMED', 'CONFIRMED'])
    expect((await env.chain.getTransactionReceipt({ hash: theirs })).status).toBe('success')
    const onChain = await transactionsFrom(env.chain, SIGNER.address)
    // No gaps, and each request's calldata exactly once.
    expect(onChain.map((t) => t.nonce)).toEqual(onChain.map((_, i) => i))
    for (const name of ['request-1', 'request-2', 'request-3']) expect(onChain.filter((t) => t.input === toHex(name))).toHaveLength(1)
    // The displaced request was re-signed at a new nonce, as a new execution, with the reason in its timeline.
    const displaced = all[0]
    expect(Number(displaced.nonce)).toBeGreaterThanOrEqual(3)
    expect(displaced.execution).toBe(2)
    expect(displaced.events.some((e: any) => JSON.parse(e.detail ?? '{}').reason === 'nonce_used_elsewhere')).toBe(true)
  })

  it('a nonce taken elsewhere in a block a reorg can still undo is not given up: the request runs once, with its first attempt', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].confirmations = 4) })
    const anvil = chainControl(env)
    const id = await submit(env, { to: RECIPIENT, data: toHex('reorg-A') })
    const pending = await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    const [row] = await sql<{ raw: Hex }[]>`SELECT raw FROM attempts WHERE hash = ${pending.attempts[0].hash}`
    const raw = row!.raw
    await sql.end()
    // Someone else's transaction takes nonce 0 (replacing ours in the pool) and is mined, one block deep.
    await replaceOutside(env, pending.attempts[0])
    await anvil.mine()
    // Several reconcile passes (one a second): before, the request was queued again and signed at nonce 1 here.
    await new Promise((r) => setTimeout(r, 5_000))
    expect((await getTx(env, id)).execution).toBe(1)
    // A one-block reorg replaces that block with one holding our first attempt.
    await anvil.rpc('anvil_reorg', [1, [[raw, 0]]])
    await mineUntil(env, id, 'CONFIRMED', { maxBlocks: 20, everyMs: 300 })
    const done = await getTx(env, id)
    expect(done.execution).toBe(1)
    expect(done.hash).toBe(pending.attempts[0].hash)
    expect((await transactionsFrom(env.chain, SIGNER.address)).filter((t) => t.input === toHex('reorg-A'))).toHaveLength(1)
  })

  it('a CONFIRMED transaction whose block a deeper reorg takes away goes back to PENDING, is sent again and confirms; the next nonce is not stuck', async () => {
    const started = await oneConfirmed('deep-1')
    env = started.env
    const { anvil, id: first, confirmed } = started
    // Confirmations are 1 here: a one-block reorg is deeper than the depth. anvil drops the block's transactions.
    await anvil.reorg(1)
    await anvil.dropAll()
    const second = await submit(env, { to: RECIPIENT, data: toHex('deep-2') })
    await waitForStatus(env, second, (t) => t.attempts[0]?.status === 'SENT')
    // Before: the first stayed CONFIRMED (with a block no longer on chain) and the second waited behind its nonce.
    const back = await waitForStatus(env, first, 'PENDING', 20_000)
    expect(back.events.some((e: any) => JSON.parse(e.detail ?? '{}').reason === 'reorged_out_after_final')).toBe(true)
    await mineUntil(env, second, 'CONFIRMED', { maxBlocks: 20, everyMs: 300 })
    const again = await waitForStatus(env, first, 'CONFIRMED')
    expect(again.hash).toBe(confirmed.hash)
    expect(again.execution).toBe(1)
    expect((await transactionsFrom(env.chain, SIGNER.address)).map((t) => t.input)).toEqual([toHex('deep-1'), toHex('deep-2')])
  })

  it('an INCLUDED transaction whose block a reorg replaced, mined again in the new chain, is settled there by the rescan, also for a signer no longer configured', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].confirmations = 4) })
    const anvil = chainControl(env)
    await anvil.mine(2)
    const id = await submit(env, { to: RECIPIENT, data: toHex('included-mined-again') })
    await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    await anvil.mine()
    const included = await waitForStatus(env, id, 'INCLUDED')
    // While the service is stopped (a deploy), a one-block reorg whose new block holds the same bytes; the service
    // comes back without that signer in its config. Its first tick scans before it checks confirmations (as every
    // tick does), and the receipt sweep and the bump stage go over configured signers only: the scan must settle it.
    await env.service.stop()
    await anvil.rpc('anvil_reorg', [1, [[await rawOf(env, id), 0]]])
    const receipt = await env.chain.getTransactionReceipt({ hash: included.hash })
    expect(receipt.blockHash).not.toBe(included.blockHash)
    const restarted = await startService({
      config: testConfig(env.anvil.url, (c) => {
        c.chains[0].confirmations = 4
        c.signers = [{ name: 'anvil-1', chainIds: [31337], privateKey: ANVIL_DEV_ACCOUNTS[1].privateKey }]
      }),
      databaseUrl: env.databaseUrl,
      port: 0,
      host: '127.0.0.1',
      log: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false }),
    })
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      const row = () => sql<{ status: string; block_hash: string | null }[]>`SELECT status, block_hash FROM transactions WHERE id = ${id}`.then((r) => r[0]!)
      // Before: the watcher's rescan passed the new block while the row was still INCLUDED in the old one; then it went
      // back to PENDING and stayed there (nothing looked for its receipt again).
      await waitFor('INCLUDED in the new block', async () => (await row()).block_hash === receipt.blockHash, 15_000)
      await anvil.mine(3)
      await waitFor('CONFIRMED in the new block', async () => {
        const r = await row()
        return r.status === 'CONFIRMED' && r.block_hash === receipt.blockHash
      }, 15_000)
      const events = await sql<{ from_status: string; to_status: string; detail: any }[]>`
        SELECT from_status, to_status, detail FROM transaction_events WHERE transaction_id = ${id} ORDER BY id`
      expect(events.map((e) => `${e.from_status ?? ''}>${e.to_status}`)).toEqual(['>QUEUED', 'QUEUED>PENDING', 'PENDING>INCLUDED', 'INCLUDED>PENDING', 'PENDING>INCLUDED', 'INCLUDED>CONFIRMED'])
      expect(events[3]!.detail).toMatchObject({ reason: 'reorg', minedAgainIn: Number(receipt.blockNumber) })
      expect((await transactionsFrom(env.chain, SIGNER.address)).filter((t) => t.input === toHex('included-mined-again'))).toHaveLength(1)
    } finally {
      await sql.end()
      await restarted.stop()
    }
  })

  it('a CONFIRMED transaction whose block a deeper reorg replaced, mined again in another block of the new chain, shows that block', async () => {
    env = await startTestEnv({ anvil: { noMining: true } })
    const anvil = chainControl(env)
    const { id, confirmed } = await confirmedInThirdBlock(env, 'mined-again')
    // Confirmations are 1: a two-block reorg is deeper than the depth. The new chain holds the same bytes, one block lower.
    await anvil.rpc('anvil_reorg', [2, [[await rawOf(env, id), 0]]])
    const receipt = await env.chain.getTransactionReceipt({ hash: confirmed.hash })
    expect(receipt.blockNumber).toBe(BigInt(confirmed.blockNumber) - 1n)
    // Before: it stayed CONFIRMED in a block no longer on chain (the nonce count never fell below it).
    const moved = await waitForStatus(env, id, (t) => t.status === 'CONFIRMED' && t.blockHash === receipt.blockHash, 20_000)
    expect(BigInt(moved.blockNumber)).toBe(receipt.blockNumber)
    expect(moved.hash).toBe(confirmed.hash)
    expect(moved.execution).toBe(1)
    expect(moved.events.some((e: any) => JSON.parse(e.detail ?? '{}').minedAgainIn === Number(receipt.blockNumber))).toBe(true)
    expect((await transactionsFrom(env.chain, SIGNER.address)).filter((t) => t.input === toHex('mined-again'))).toHaveLength(1)
  })

  it('several CONFIRMED transactions of one replaced block, mined again in another, are reopened together and each shows its new block', async () => {
    env = await startTestEnv({ anvil: { noMining: true } })
    const anvil = chainControl(env)
    await anvil.mine(2)
    const ids = [await submit(env, { to: RECIPIENT, data: toHex('again-0') }), await submit(env, { to: RECIPIENT, data: toHex('again-1') }), await submit(env, { to: RECIPIENT, data: toHex('again-2') })]
    for (const id of ids) await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    await anvil.mine()
    const confirmed = await Promise.all(ids.map((id) => waitForStatus(env!, id, 'CONFIRMED')))
    expect(new Set(confirmed.map((t) => t.blockHash)).size).toBe(1)
    // One commit reopens all three (reopenMinedMany); each then settles in the new chain's block.
    await anvil.rpc('anvil_reorg', [2, await Promise.all(ids.map(async (id) => [await rawOf(env!, id), 0]))])
    const receipts = await Promise.all(confirmed.map((t) => env!.chain.getTransactionReceipt({ hash: t.hash })))
    for (const [i, id] of ids.entries()) {
      const moved = await waitForStatus(env, id, (t) => t.status === 'CONFIRMED' && t.blockHash === receipts[i]!.blockHash, 20_000)
      expect(moved.hash).toBe(confirmed[i].hash)
      expect(moved.events.filter((e: any) => JSON.parse(e.detail ?? '{}').reason === 'reorged_out_after_final')).toHaveLength(1)
    }
  })

  it('a CANCELLED transaction whose block a deeper reorg replaced, the request itself mined in the new chain, ends CONFIRMED: it ran', async () => {
    env = await startTestEnv({ anvil: { noMining: true } })
    const anvil = chainControl(env)
    await anvil.mine(2)
    const id = await submit(env, { to: RECIPIENT, data: toHex('cancelled-then-ran') })
    await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    const cancel = await env.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { status } }`, { id })
    expect(cancel.json.errors).toBeUndefined()
    await anvil.mine()
    const cancelled = await waitForStatus(env, id, 'CANCELLED')
    // Confirmations are 1: a two-block reorg is deeper than the depth. The new chain holds the request's own bytes.
    await anvil.rpc('anvil_reorg', [2, [[await rawOf(env, id), 0]]])
    const ran = (await transactionsFrom(env.chain, SIGNER.address)).filter((t) => t.input === toHex('cancelled-then-ran'))
    expect(ran).toHaveLength(1)
    // Before: it stayed CANCELLED (only the attempt that had mined was looked for), and its client, told nothing
    // ran, could submit it again.
    const settled = await waitForStatus(env, id, (t) => t.status === 'CONFIRMED', 20_000)
    expect(settled.hash).toBe(ran[0]!.hash)
    expect(settled.hash).not.toBe(cancelled.hash)
    expect(settled.error).toBeNull()
    expect(settled.events.some((e: any) => JSON.parse(e.detail ?? '{}').reason === 'reorged_out_after_final')).toBe(true)
  })

  it('mined again in another block while the provider cannot serve its receipt yet: the watcher waits for it, not passes the block', async () => {
    const started = await startBehindProxy({ noMining: true })
    env = started.env
    const { proxy } = started
    const anvil = chainControl(env)
    const { id, confirmed } = await confirmedInThirdBlock(env, 'mined-again-lagging')
    try {
      // The provider's receipts lag its blocks (null) right after the reorg.
      proxy.setMode('methodError', { errorMethods: ['eth_getTransactionReceipt'], answerNull: true })
      await anvil.rpc('anvil_reorg', [2, [[await rawOf(env, id), 0]]])
      // Several watcher ticks: before, the first passed the block for good and the row kept its old block.
      await new Promise((r) => setTimeout(r, 3_000))
    } finally {
      proxy.setMode('ok')
    }
    const receipt = await env.chain.getTransactionReceipt({ hash: confirmed.hash })
    expect(receipt.blockHash).not.toBe(confirmed.blockHash)
    const moved = await waitForStatus(env, id, (t) => t.status === 'CONFIRMED' && t.blockHash === receipt.blockHash, 20_000)
    expect(BigInt(moved.blockNumber)).toBe(receipt.blockNumber)
  })

  it('final in a block past where the watcher stopped (a receipt before it not served yet), then moved by a reorg: it shows its new block', async () => {
    // A tick a second: the watcher stops before a block it cannot read for 20 ticks before it passes it.
    const started = await startBehindProxy({ noMining: true }, undefined, (chain) => (chain.blockTimeMs = 4_000))
    env = started.env
    const proxy = started.proxy
    try {
      const anvil = chainControl(env)
      await anvil.mine(2)
      const [a] = await submitSent(env, ['stalls-the-cursor'])
      const hashA = (await getTx(env, a!)).hash as string
      // A's receipt is not served yet (a provider whose receipts lag its blocks): the watcher stops before A's block.
      proxy.setMode('methodError', { errorMethods: ['eth_getTransactionReceipt'], errorParamsInclude: hashA, answerNull: true })
      await anvil.mine()
      const [b, c] = await submitSent(env, ['final-above-1', 'final-above-2'])
      await anvil.mine()
      // B and C, in the next block, are read with that block's receipts and are final at once (confirmations 1).
      const before = await waitForStatus(env, b!, 'CONFIRMED', 20_000)
      expect((await getTx(env, a!)).status).toBe('PENDING')
      // A two-block reorg: the new chain holds A and B in its first block, C in its second.
      await anvil.rpc('anvil_reorg', [2, [[await rawOf(env, a!), 0], [await rawOf(env, b!), 0], [await rawOf(env, c!), 1]]])
      proxy.setMode('ok')
      const receipt = await env.chain.getTransactionReceipt({ hash: before.hash })
      expect(receipt.blockHash).not.toBe(before.blockHash)
      // Before: the watcher's stop below them saw no reorg, and B kept a block no longer on chain.
      const moved = await waitForStatus(env, b!, (t) => t.status === 'CONFIRMED' && t.blockHash === receipt.blockHash, 20_000)
      expect(BigInt(moved.blockNumber)).toBe(receipt.blockNumber)
      expect(moved.events.some((e: any) => JSON.parse(e.detail ?? '{}').reason === 'reorged_out_after_final')).toBe(true)
      const cReceipt = await env.chain.getTransactionReceipt({ hash: (await getTx(env, c!)).hash })
      await waitForStatus(env, c!, (t) => t.status === 'CONFIRMED' && t.blockHash === cReceipt.blockHash, 20_000)
      await waitForStatus(env, a!, 'CONFIRMED', 20_000)
    } finally {
      await proxy.stop()
    }
  }, 90_000)

  it('a CONFIRMED transaction whose block a deeper reorg takes away, and that a node holds in its pool again, goes back to PENDING', async () => {
    const started = await oneConfirmed('deep-pooled')
    env = started.env
    const { anvil, id, confirmed } = started
    await anvil.reorg(1)
    // Back in the pool (as geth puts a reorged block's transactions back), not mined: before, the service saw a node
    // holding it and left it CONFIRMED, with a block no longer on chain and no bumps while it waited.
    await env.chain.request({ method: 'eth_sendRawTransaction' as never, params: [await rawOf(env, id)] as never }).catch(() => {})
    expect((await env.chain.request({ method: 'eth_getTransactionByHash', params: [confirmed.hash] }))?.blockNumber ?? null).toBeNull()
    const back = await waitForStatus(env, id, 'PENDING', 20_000)
    expect(back.events.some((e: any) => JSON.parse(e.detail ?? '{}').reason === 'reorged_out_after_final')).toBe(true)
    await mineUntil(env, id, 'CONFIRMED', { maxBlocks: 20, everyMs: 300 })
    expect((await transactionsFrom(env.chain, SIGNER.address)).filter((t) => t.input === toHex('deep-pooled'))).toHaveLength(1)
  })

  it('a request an admin cancelled, whose nonce the key then used elsewhere, ends FAILED CANCELLED and never runs (before: it was queued again and ran)', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].fees = { bumpAfterMs: 60_000 }) })
    const anvil = chainControl(env)
    const id = await submit(env, { to: RECIPIENT, data: toHex('cancelled-request') })
    await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    const cancelled = await env.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { status attempts { purpose nonce maxFeePerGas maxPriorityFeePerGas } } }`, { id })
    const cancel = cancelled.json.data.cancelTransaction.attempts.find((a: any) => a.purpose === 'CANCEL')
    expect(cancel).toBeTruthy()
    // Someone else's transaction at the same nonce, with higher fees than the cancel's, is what mines.
    const theirs = await replaceOutside(env, cancel)
    const t = await mineUntilSettled(env, id)
    expect(t.status).toBe('FAILED')
    expect(t.error.code).toBe('CANCELLED')
    expect(t.error.message).toMatch(/nonce 0 was used by another transaction/)
    expect((await env.chain.getTransactionReceipt({ hash: theirs })).status).toBe('success')
    // A few more blocks: nothing of the request is ever sent at a new nonce.
    for (let i = 0; i < 5; i++) {
      await anvil.mine()
      await new Promise((r) => setTimeout(r, 300))
    }
    const onChain = await transactionsFrom(env.chain, SIGNER.address)
    expect(onChain.filter((x) => x.input === toHex('cancelled-request'))).toHaveLength(0)
    expect((await getTx(env, id)).status).toBe('FAILED')
  })

  it('a request replaced for its validUntil, whose nonce the key then used elsewhere, ends FAILED EXPIRED (not "cancelled by an admin")', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].fees = { bumpAfterMs: 60_000 }) })
    const id = await submit(env, { to: RECIPIENT, data: toHex('expired-request'), validUntil: new Date(Date.now() + 3_000).toISOString() })
    await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    // Past its deadline the bump stage replaces it with a zero-value self-transfer.
    // (Both: one query reads the row, then its attempts, not as one snapshot.)
    const replaced = await waitForStatus(env, id, (t) => t.error?.code === 'EXPIRED' && t.attempts.some((a: any) => a.purpose === 'CANCEL'), 20_000)
    expect(replaced.error.code).toBe('EXPIRED')
    // Someone else's transaction at the same nonce, with higher fees than the replacement's, is what mines.
    await replaceOutside(env, replaced.attempts.find((a: any) => a.purpose === 'CANCEL'))
    const t = await mineUntilSettled(env, id)
    expect(t.status).toBe('FAILED')
    expect(t.error.code).toBe('EXPIRED')
    expect(t.error.message).toMatch(/^its validUntil passed before it was mined; its nonce 0 was used by another transaction/)
    expect((await transactionsFrom(env.chain, SIGNER.address)).filter((x) => x.input === toHex('expired-request'))).toHaveLength(0)
  })

  it('receipt lookups that fail are not taken for "not mined": a mined transaction is never signed again', async () => {
    const started = await startBehindProxy({ blockTimeSec: 0.2 })
    env = started.env
    const proxy = started.proxy
    try {
      // Every receipt read fails (a node overloaded, a provider rate-limiting): the watcher cannot settle it,
      // and the reconciler sees a PENDING transaction whose nonce the chain has used.
      proxy.setMode('methodError', { errorMethods: ['eth_getTransactionReceipt', 'eth_getBlockReceipts'] })
      const id = await submit(env, { to: RECIPIENT, data: toHex('exactly-once') })
      await waitFor('mined', async () => (await env!.chain.getTransactionCount({ address: SIGNER.address })) > 0)
      // About five reconcile passes (one a second here).
      await new Promise((r) => setTimeout(r, 5_000))
      const during = await getTx(env, id)
      expect(during.status).toBe('PENDING')
      expect(during.execution).toBe(1)
      proxy.setMode('ok')
      const done = await waitForStatus(env, id, 'CONFIRMED')
      expect(done.execution).toBe(1)
      const onChain = await transactionsFrom(env.chain, SIGNER.address)
      expect(onChain.map((t) => t.input)).toEqual([toHex('exactly-once')])
    } finally {
      await proxy.stop()
    }
  })

  it('a provider whose receipts lag its blocks (null for mined transactions) makes nothing run twice', async () => {
    const started = await startBehindProxy({ blockTimeSec: 0.2 })
    env = started.env
    const proxy = started.proxy
    try {
      // Blocks are served, receipts answer null: the watcher cannot settle the block and after 20 ticks moves
      // its cursor past it; the reconciler then sees PENDING transactions whose nonces the chain has used.
      proxy.setMode('methodError', { errorMethods: ['eth_getTransactionReceipt', 'eth_getBlockReceipts'], answerNull: true })
      const tags = ['lag-1', 'lag-2', 'lag-3']
      const ids = []
      for (const tag of tags) ids.push(await submit(env, { to: RECIPIENT, data: toHex(tag) }))
      await waitFor('mined', async () => (await env!.chain.getTransactionCount({ address: SIGNER.address })) >= 3)
      // 20 watcher ticks at 200 ms and several reconcile passes (one a second) after that.
      await new Promise((r) => setTimeout(r, 9_000))
      for (const id of ids) expect((await getTx(env, id)).execution).toBe(1)
      proxy.setMode('ok')
      for (const id of ids) expect((await waitForStatus(env, id, 'CONFIRMED')).execution).toBe(1)
      // Before: each was queued again and signed at a new nonce, so each ran twice.
      expect((await transactionsFrom(env.chain, SIGNER.address)).map((t) => t.input)).toEqual(tags.map((t) => toHex(t)))
    } finally {
      await proxy.stop()
    }
  })

  it('while the watcher is still reading a block, the reconciler asks for none of its receipts one by one', async () => {
    const started = await startBehindProxy({ noMining: true }, { timeoutMs: 10_000 })
    env = started.env
    const proxy = started.proxy
    try {
      const anvil = chainControl(env)
      const ids = await submitSent(env, ['r1', 'r2', 'r3', 'r4'])
      // The node takes 4 s over the block's receipts (as anvil does for a block of thousands): the watcher
      // sits on that block while the reconciler (a pass a second) sees four PENDING transactions whose
      // nonces the chain has used.
      proxy.setMode('slow', { slowMethods: ['eth_getBlockReceipts'], slowMs: 4_000 })
      proxy.resetStats()
      await anvil.mine()
      for (const id of ids) await waitForStatus(env, id, 'CONFIRMED')
      expect(proxy.stats.calls.eth_getBlockReceipts).toBeGreaterThanOrEqual(1)
      expect(proxy.stats.calls.eth_getTransactionReceipt ?? 0).toBe(0)
      expect((await getTx(env, ids[0]!)).execution).toBe(1)
    } finally {
      await proxy.stop()
    }
  })

  it("a block's receipts that take longer than the reads' timeout are read in one call; after a failed one, one by one, never asked again", async () => {
    // The reads' timeout is 2 s here; the receipts of the block of 60 below take 3 s (under the bulk read's
    // timeout for 60: 4 s), as anvil takes for a block of about 4,000 under the default 3 s.
    const started = await startBehindProxy({ noMining: true }, { timeoutMs: 2_000 })
    env = started.env
    const proxy = started.proxy
    try {
      const anvil = chainControl(env)
      const sixty = (tag: string) => submitSent(env!, Array.from({ length: 60 }, (_, i) => `${tag}-${i}`))

      // 1. Slow: one eth_getBlockReceipts, answered after 3 s; nothing asked again, nothing one by one.
      const slow = await sixty('slow')
      proxy.setMode('slow', { slowMethods: ['eth_getBlockReceipts'], slowMs: 3_000 })
      proxy.resetStats()
      await anvil.mine()
      for (const id of slow) await waitForStatus(env, id, 'CONFIRMED')
      expect(proxy.stats.calls.eth_getBlockReceipts).toBe(1)
      expect(proxy.stats.calls.eth_getTransactionReceipt ?? 0).toBe(0)

      // 2. Failing: the block is never asked for in bulk again, but read one by one. While those calls fail
      // too, its transactions stay PENDING (the cursor waits before the block); then they confirm, once each.
      const failing = await sixty('failing')
      proxy.setMode('methodError', { errorMethods: ['eth_getBlockReceipts', 'eth_getTransactionReceipt'] })
      proxy.resetStats()
      await anvil.mine()
      await waitFor('two rounds of one-by-one reads', async () => (proxy.stats.calls.eth_getTransactionReceipt ?? 0) >= 120)
      expect((await getTx(env, failing[0]!)).status).toBe('PENDING')
      expect((await getTx(env, failing[59]!)).status).toBe('PENDING')
      proxy.setMode('methodError', { errorMethods: ['eth_getBlockReceipts'] })
      for (const id of failing) expect((await waitForStatus(env, id, 'CONFIRMED')).execution).toBe(1)
      expect(proxy.stats.calls.eth_getBlockReceipts).toBe(1)
    } finally {
      await proxy.stop()
    }
  })

  it('a block whose receipts cannot be read for 20 ticks stops the cursor no longer; the receipt sweep confirms its transactions', async () => {
    const started = await startBehindProxy({ noMining: true })
    env = started.env
    const proxy = started.proxy
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      const anvil = chainControl(env)
      await anvil.mine(2) // so the watcher has saved a cursor before the block
      const ids = await submitSent(env, ['stuck-1', 'stuck-2'])
      proxy.setMode('methodError', { errorMethods: ['eth_getBlockReceipts', 'eth_getTransactionReceipt'] })
      await anvil.mine()
      const block = Number(await env.chain.getBlockNumber({ cacheTime: 0 }))
      await anvil.mine()
      const cursor = async () => Number((await sql<{ n: string }[]>`SELECT block_number AS n FROM chain_cursors`)[0]?.n ?? -1)
      // First the cursor waits before the block; after 20 ticks of failed reads it moves past it.
      await waitFor('the watcher reached the block', async () => (await cursor()) === block - 1)
      await waitFor('the cursor moved past the block', async () => (await cursor()) >= block, 60_000)
      expect((await getTx(env, ids[0]!)).status).toBe('PENDING')
      // Receipts answer again: the sweep (not the scan, which has passed the block) confirms both, once.
      proxy.setMode('ok')
      for (const id of ids) expect((await waitForStatus(env, id, 'CONFIRMED')).execution).toBe(1)
      expect((await transactionsFrom(env.chain, SIGNER.address)).map((t) => t.input)).toEqual([toHex('stuck-1'), toHex('stuck-2')])
    } finally {
      await sql.end()
      await proxy.stop()
    }
  })

  it('what signed, unmined transactions will spend counts against the balance: one too many waits with no nonce, the affordable ones go on', async () => {
    env = await startTestEnv({ anvil: { noMining: true } })
    const anvil = chainControl(env)
    await anvil.setBalance(SIGNER.address, 12n * 10n ** 17n) // 1.2 ETH
    const big = []
    for (const i of [1, 2, 3]) {
      big.push(await submit(env, { to: RECIPIENT, value: String(5n * 10n ** 17n + BigInt(i)) })) // 0.5 ETH each
      // Each in its own sign batch, with a balance read of its own.
      await new Promise((r) => setTimeout(r, 1_200))
    }
    const small = [await submit(env, { to: RECIPIENT, value: '1' }), await submit(env, { to: RECIPIENT, value: '2' })]
    const third = await waitForStatus(env, big[2]!, (t) => t.error?.code === 'INSUFFICIENT_FUNDS')
    // Before: it got nonce 2, the node refused it (short of funds), and the small ones waited behind it for good.
    expect(third.status).toBe('QUEUED')
    expect(third.nonce).toBeNull()
    for (const id of [big[0]!, big[1]!, ...small]) await mineUntil(env, id, 'CONFIRMED', { maxBlocks: 10, everyMs: 300 })
    expect((await transactionsFrom(env.chain, SIGNER.address)).map((t) => t.nonce)).toEqual([0, 1, 2, 3])
    expect((await getTx(env, big[2]!)).status).toBe('QUEUED')
  })

  it('a signed transaction the signer can no longer pay for says so, keeps its nonce, and confirms once funded', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].fees = { bumpAfterMs: 500 }) })
    const anvil = chainControl(env)
    const id = await submit(env, { to: RECIPIENT, value: '7' })
    await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    // The key is emptied elsewhere and the node forgets the transaction: each new attempt is refused as unaffordable.
    await anvil.setBalance(SIGNER.address, 0n)
    await anvil.dropAll()
    const short = await waitForStatus(env, id, (t) => t.error?.code === 'INSUFFICIENT_FUNDS', 20_000)
    // Before: PENDING with no error at all; the reason only in each attempt's provider answers.
    expect(short.status).toBe('PENDING')
    expect(short.error.message).toMatch(/cannot pay for it any more .* sent again until the signer is funded/)
    expect(Number(short.nonce)).toBe(0)
    // And the signer says so, as one the sign stage found short (the gauge, the dashboard's notice to fund it);
    // before, nothing did while it had no request left to sign.
    const shortSince = async () =>
      (await env!.graphql(`{ signers(chainId: 31337) { address shortOfFundsSince } }`)).json.data.signers.find((s: any) => s.address === SIGNER.address)
        .shortOfFundsSince
    expect(await waitFor('the signer flagged short of funds', shortSince, 5_000)).not.toBeNull()
    await anvil.setBalance(SIGNER.address, 10n ** 20n)
    const done = await mineUntil(env, id, 'CONFIRMED', { maxBlocks: 30, everyMs: 300 })
    expect(done.error).toBeNull()
    await waitFor('the flag cleared once funded', async () => (await shortSince()) === null, 15_000)
    expect((await transactionsFrom(env.chain, SIGNER.address)).map((t) => t.nonce)).toEqual([0])
  })

  it('with no balance the transaction waits, visibly, and confirms once the signer is funded', async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.2 } })
    const anvil = chainControl(env)
    await anvil.setBalance(SIGNER.address, 0n)
    const id = await submit(env, { to: RECIPIENT, value: '12' })
    const waiting = await waitForStatus(env, id, (t) => t.error?.code === 'INSUFFICIENT_FUNDS')
    expect(waiting.status).toBe('QUEUED')
    await new Promise((r) => setTimeout(r, 1500))
    expect((await getTx(env, id)).status).toBe('QUEUED')
    await anvil.setBalance(SIGNER.address, 100n * ETHER)
    const done = await waitForStatus(env, id, 'CONFIRMED', 30_000)
    expect(done.error).toBeNull()
    expect((await env.chain.getTransactionReceipt({ hash: done.hash })).status).toBe('success')
  })
})
