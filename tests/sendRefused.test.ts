/**
 * A send answered in words the classifier does not know (DESIGN.md's last row of "Send answers": treat it as
 * possibly sent, check receipts and the pending nonce before deciding). Before, such a transaction held its nonce
 * for ever, and every later transaction of the signer waited behind it.
 */
import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { createWalletClient, http, keccak256, toHex, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { chainControl, getTx, submit, transactionsFrom, waitForStatus } from './helpers/chainControl.ts'
import type { FaultProxy } from './helpers/faultProxy.ts'
import { startBehindFaultProxy } from './helpers/behindFaultProxy.ts'
import { RECIPIENT, SIGNER, startTestEnv, testConfig, waitFor, type TestEnv } from './helpers/testService.ts'
import { ANVIL_DEV_ACCOUNTS, type StartAnvilOptions } from '../src/dev/startAnvil.ts'
import { createLogger } from '../src/common/logger.ts'
import { startService, type RunningService } from '../src/service.ts'

/** geth's answer when a transaction's fee is over its RPC fee cap: a refusal no classifier pattern knows. */
const FEE_CAP_REFUSAL = { code: -32000, message: 'tx fee (1.50 ether) exceeds the configured cap (1.00 ether)' }

describe('a send refused in unrecognized words', () => {
  let env: TestEnv | undefined
  afterEach(async () => {
    await env?.stop()
    env = undefined
  })

  function startBehindProxy(anvil: StartAnvilOptions, sendMs: number, bumpAfterMs = 500, configure?: (c: Record<string, any>) => void): Promise<{ env: TestEnv; proxy: FaultProxy }> {
    return startBehindFaultProxy(anvil, (c) => {
      c.chains[0].fees = { bumpAfterMs }
      c.chains[0].patience = { sendMs }
      configure?.(c)
    })
  }

  it('refused for good while others get through: FAILED SEND_REFUSED after its patience, and the transactions behind it confirm', async () => {
    const started = await startBehindProxy({ blockTimeSec: 0.2 }, 2_000)
    env = started.env
    started.proxy.setMode('methodError', {
      errorMethods: ['eth_sendRawTransaction'],
      errorParamsInclude: toHex('refuse-me').slice(2),
      error: FEE_CAP_REFUSAL,
    })
    const refused = await submit(env, { to: RECIPIENT, data: toHex('refuse-me') })
    await waitForStatus(env, refused, (t) => t.attempts[0]?.providers[0]?.outcome === 'unknown')
    const behind = [await submit(env, { to: RECIPIENT, data: toHex('behind-1') }), await submit(env, { to: RECIPIENT, data: toHex('behind-2') })]
    const failed = await waitForStatus(env, refused, 'FAILED', 30_000)
    expect(failed.error.code).toBe('SEND_REFUSED')
    expect(failed.error.message).toContain('exceeds the configured cap')
    expect(failed.nonce).toBeNull()
    // Meanwhile it was sent again as it was: no raised fees for a transaction no node took.
    expect(new Set(failed.attempts.map((a: any) => a.maxFeePerGas)).size).toBe(1)
    for (const id of behind) expect((await waitForStatus(env, id, 'CONFIRMED', 30_000)).error).toBeNull()
    // On chain: a filler took the refused one's nonce, the two behind it ran once each, the refused one never.
    const onChain = await transactionsFrom(env.chain, SIGNER.address)
    expect(onChain.map((t) => t.input).filter((i) => i !== '0x')).toEqual([toHex('behind-1'), toHex('behind-2')])
    expect(onChain.filter((t) => t.input === '0x')).toHaveLength(1)
    expect(onChain.map((t) => t.nonce)).toEqual([0, 1, 2])
  })

  it('refused for its chain id by the only provider (a balancer routed it to another chain): waits, never FAILED, and confirms once it is back', async () => {
    const started = await startBehindProxy({ blockTimeSec: 0.2 }, 60_000)
    env = started.env
    started.proxy.setMode('methodError', { errorMethods: ['eth_sendRawTransaction'], error: { code: -32000, message: 'invalid chain id for signer: have 31337 want 1' } })
    const id = await submit(env, { to: RECIPIENT, value: '12' })
    await waitForStatus(env, id, (t) => t.attempts[0]?.providers[0]?.outcome === 'provider_error')
    // Before: read as never valid, FAILED INVALID_TRANSACTION within two reconcile passes, its nonce filled.
    await new Promise((r) => setTimeout(r, 10_000))
    const waiting = await getTx(env, id)
    expect([waiting.status, waiting.error]).toEqual(['PENDING', null])
    started.proxy.setMode('ok')
    const done = await waitForStatus(env, id, 'CONFIRMED', 30_000)
    expect(done.attempts).toHaveLength(1)
    expect((await transactionsFrom(env.chain, SIGNER.address)).map((t) => t.value)).toEqual([12n])
  })

  it('refused as never valid while a cancel is being made: the cancel committed meanwhile is seen, and it ends CANCELLED, never FAILED', async () => {
    // The reconcile pass every 4 s: the row's lock below is taken between its first pass and the one failing it.
    const started = await startBehindProxy({ blockTimeSec: 0.2 }, 600_000, 500, (c) => (c.chains[0].blockTimeMs = 4_000))
    env = started.env
    const { proxy } = started
    const e = env
    proxy.setMode('methodError', { errorMethods: ['eth_sendRawTransaction'], errorParamsInclude: toHex('never valid').slice(2), error: { code: -32000, message: 'intrinsic gas too low' } })
    const id = await submit(e, { to: RECIPIENT, data: toHex('never valid') })
    const refused = await waitForStatus(e, id, (t) => t.attempts[0]?.providers[0]?.outcome === 'invalid')
    // An admin's cancel being made (a remote signer asked to sign it takes seconds): the row's lock held, its attempt
    // stored, then committed. The reconcile pass failing the row waits for the lock meanwhile.
    const sql = postgres(e.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      await sql.begin(async (tx) => {
        await tx`SELECT 1 FROM transactions WHERE id = ${id} FOR UPDATE`
        const nonce = Number(refused.nonce)
        const fees = { maxFeePerGas: BigInt(refused.attempts[0].maxFeePerGas) * 2n, maxPriorityFeePerGas: BigInt(refused.attempts[0].maxPriorityFeePerGas) * 2n }
        const raw = await privateKeyToAccount(SIGNER.privateKey).signTransaction({ type: 'eip1559', chainId: 31337, nonce, to: SIGNER.address, value: 0n, gas: 21_000n, ...fees })
        const [{ execution }] = (await tx<{ execution: number }[]>`SELECT execution FROM transactions WHERE id = ${id}`) as unknown as [{ execution: number }]
        await tx`
          INSERT INTO attempts (transaction_id, execution, chain_id, signer, nonce, hash, raw, gas_limit, max_fee_per_gas, max_priority_fee_per_gas, purpose)
          VALUES (${id}, ${execution}, 31337, ${SIGNER.address}, ${nonce}, ${keccak256(raw)}, ${raw}, 21000, ${fees.maxFeePerGas.toString()}, ${fees.maxPriorityFeePerGas.toString()}, 'CANCEL')`
        await tx`UPDATE transactions SET error_code = 'CANCELLED', error_message = 'cancelled by an admin', last_sent_at = now() - interval '1 minute', updated_at = now() WHERE id = ${id}`
        await new Promise((r) => setTimeout(r, 9_000))
      })
      // Before: the waiting pass did not see the cancel (its statement read from before the wait), FAILED the row as
      // INVALID_TRANSACTION with its nonce handed on, and the cancel on its way to the nodes was never sent again.
      const done = await waitForStatus(e, id, (t) => t.status !== 'PENDING', 60_000)
      expect(done.status).toBe('CANCELLED')
      const [failedEvents] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM transaction_events WHERE transaction_id = ${id} AND to_status = 'FAILED'`
      expect(failedEvents!.n).toBe(0)
    } finally {
      await sql.end()
      await proxy.stop()
    }
  }, 90_000)

  it('refused as underpriced by every provider: raised at once (within a second or two), not bumpAfterMs later', async () => {
    // A node whose minimum tip is above what eth_maxPriorityFeePerGas says: its first send is refused for its fees.
    const started = await startBehindProxy({ blockTimeSec: 0.2 }, 600_000, 60_000)
    env = started.env
    started.proxy.setMode('methodError', {
      errorMethods: ['eth_sendRawTransaction'],
      errorParamsInclude: toHex('underpriced').slice(2),
      error: { code: -32000, message: 'transaction underpriced' },
      failFirst: 1,
    })
    const id = await submit(env, { to: RECIPIENT, data: toHex('underpriced') })
    // Before: the raise came bumpAfterMs (here a minute) after the refusal.
    const done = await waitForStatus(env, id, 'CONFIRMED', 10_000)
    expect(done.attempts).toHaveLength(2)
    expect(done.attempts[0].providers[0].outcome).toBe('fee_too_low')
    expect(BigInt(done.attempts[1].maxPriorityFeePerGas)).toBeGreaterThan(BigInt(done.attempts[0].maxPriorityFeePerGas))
    expect((await transactionsFrom(env.chain, SIGNER.address)).map((t) => t.input)).toEqual([toHex('underpriced')])
  })

  it('a request failed after it was signed: its retry waits until its bytes cannot be mined; mined anyway, it is settled as mined and not retried', async () => {
    const started = await startBehindProxy({ noMining: true }, 1_000)
    env = started.env
    started.proxy.setMode('methodError', { errorMethods: ['eth_sendRawTransaction'], errorParamsInclude: toHex('refuse-me').slice(2), error: FEE_CAP_REFUSAL })
    const [a, b] = [await submit(env, { to: RECIPIENT, data: toHex('refuse-me-a') }), await submit(env, { to: RECIPIENT, data: toHex('refuse-me-b') })]
    // Another request gets through meanwhile (else the refusals would count as provider trouble).
    await submit(env, { to: RECIPIENT, data: toHex('gets-through') })
    for (const id of [a, b]) expect((await waitForStatus(env, id, 'FAILED', 30_000)).error.code).toBe('SEND_REFUSED')
    const retry = (id: string) => env!.graphql(`mutation($id: ID!) { retryTransaction(id: $id) { id status execution } }`, { id })
    // Its bytes exist, signed at nonce 0: a node we do not ask (one marked down, a private pool) may still mine them.
    const early = await retry(a)
    expect(early.json.errors?.[0]?.extensions?.code).toBe('NOT_YET')
    expect(early.json.errors[0].message).toMatch(/^Not retried yet: its execution was signed at nonce 0, and those bytes may still be mined/)
    // And one does: its bytes reach the chain by another way and are mined, before its filler.
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    const raw = (await sql<{ raw: Hex }[]>`SELECT raw FROM attempts WHERE transaction_id = ${a}`)[0]!.raw
    await sql.end()
    const anvil = chainControl(env)
    await anvil.dropAll()
    await env.chain.request({ method: 'eth_sendRawTransaction', params: [raw] })
    await anvil.mine()
    // It ran: the watcher finds its receipt and settles it as mined (before: it stayed FAILED, and its client would
    // submit it again), once the filler sent for its nonce has failed as used elsewhere.
    let ran: any
    await waitFor('the request mined after it was failed is CONFIRMED', async () => {
      await anvil.mine()
      ran = await getTx(env!, a)
      return ran.status === 'CONFIRMED'
    }, 30_000)
    expect(ran.events.some((e: any) => JSON.parse(e.detail ?? '{}').reason === 'mined_after_failed')).toBe(true)
    expect(ran.error).toBeNull()
    // Before: the retry was taken, and a new attempt at a new nonce ran the request a second time.
    const late = await retry(a)
    expect(late.json.errors?.[0]?.extensions?.code).toBe('INVALID_STATE')
    expect(late.json.errors[0].message).toMatch(/^Only FAILED or REVERTED transactions can be retried; this one is CONFIRMED/)
    // The other one's nonce is taken by its filler: then its retry is a new execution.
    let retried: any
    await waitFor('the retry of the request whose nonce its filler took', async () => {
      await anvil.mine()
      retried = (await retry(b)).json
      return retried.data?.retryTransaction?.execution === 2
    }, 30_000)
    expect((await transactionsFrom(env.chain, SIGNER.address)).filter((t) => t.input === toHex('refuse-me-a'))).toHaveLength(1)
  })

  it('a filler failed after it was signed whose bytes were mined anyway is settled as mined: the nonce it took is held by a row', async () => {
    const started = await startBehindProxy({ noMining: true }, 1_000)
    env = started.env
    const e = env
    // The request's sends, and then every self-transfer's (fillers: sent to the signer itself), refused in unknown words.
    started.proxy.setMode('methodError', { errorMethods: ['eth_sendRawTransaction'], errorParamsInclude: toHex('refuse-me').slice(2), error: FEE_CAP_REFUSAL })
    const a = await submit(e, { to: RECIPIENT, data: toHex('refuse-me-then-fill') })
    await submit(e, { to: RECIPIENT, data: toHex('gets-through') })
    expect((await waitForStatus(e, a, 'FAILED', 30_000)).error.code).toBe('SEND_REFUSED')
    started.proxy.setMode('methodError', { errorMethods: ['eth_sendRawTransaction'], errorParamsInclude: SIGNER.address.slice(2).toLowerCase(), error: FEE_CAP_REFUSAL })
    const anvil = chainControl(e)
    const sql = postgres(e.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      // Its filler is refused too, for its patience, and fails so (others get through meanwhile).
      const filler = await waitFor('a filler FAILED as SEND_REFUSED', async () => {
        await submit(e, { to: RECIPIENT, value: '1' })
        await anvil.mine()
        const [row] = await sql<{ id: string; raw: Hex }[]>`
          SELECT t.id, a.raw FROM transactions t JOIN attempts a ON a.transaction_id = t.id
          WHERE t.kind = 'FILLER' AND t.status = 'FAILED' AND t.error_code = 'SEND_REFUSED' ORDER BY a.id LIMIT 1`
        return row
      }, 60_000)
      // Its bytes reach the chain by another way and are mined.
      started.proxy.setMode('ok')
      await anvil.dropAll()
      await e.chain.request({ method: 'eth_sendRawTransaction', params: [filler.raw] })
      await anvil.mine()
      // Before: it stayed FAILED, and the filler sent after it failed as NONCE_USED_ELSEWHERE: no row held the nonce.
      const settled = await waitFor('the filler mined after it was failed is CONFIRMED', async () => {
        await anvil.mine()
        const [row] = await sql<{ status: string; nonce: string | null }[]>`SELECT status, nonce::text FROM transactions WHERE id = ${filler.id}`
        return row?.status === 'CONFIRMED' && row
      }, 30_000)
      expect(settled.nonce).not.toBeNull()
      const events = await sql<{ detail: { reason?: string } }[]>`SELECT detail FROM transaction_events WHERE transaction_id = ${filler.id} AND from_status = 'FAILED'`
      expect(events.map((ev) => ev.detail.reason)).toEqual(['mined_after_failed'])
    } finally {
      await sql.end()
    }
  }, 120_000)

  it('a request failed after it was signed whose nonce the key then used outside the service: its retry is taken, and it runs once', async () => {
    const started = await startBehindProxy({ noMining: true }, 1_000)
    env = started.env
    started.proxy.setMode('methodError', { errorMethods: ['eth_sendRawTransaction'], errorParamsInclude: toHex('refuse-me').slice(2), error: FEE_CAP_REFUSAL })
    const a = await submit(env, { to: RECIPIENT, data: toHex('refuse-me-outside') })
    await submit(env, { to: RECIPIENT, data: toHex('gets-through') })
    const failed = await waitForStatus(env, a, 'FAILED', 30_000)
    expect(failed.error.code).toBe('SEND_REFUSED')
    // The key's owner sends a transfer of their own at its nonce, straight to the node, over whatever the pool holds
    // there (the filler sent for it), and it is mined.
    const ours = failed.attempts[0]
    const outside = createWalletClient({ account: privateKeyToAccount(SIGNER.privateKey), transport: http(env.anvil.url) })
    const anvil = chainControl(env)
    await anvil.dropAll()
    await outside.sendTransaction({ chain: null, to: RECIPIENT, nonce: Number(ours.nonce), value: 1n, maxFeePerGas: BigInt(ours.maxFeePerGas) * 3n, maxPriorityFeePerGas: BigInt(ours.maxPriorityFeePerGas) * 3n })
    await anvil.mine()
    started.proxy.setMode('ok')
    // No filler of ours can be final at that nonce now: the retry waited for one for ever ("retry after that").
    const retry = () => env!.graphql(`mutation($id: ID!) { retryTransaction(id: $id) { id status execution } }`, { id: a })
    let answer: any
    await waitFor('the retry is taken', async () => {
      await anvil.mine()
      answer = (await retry()).json
      return answer.data?.retryTransaction?.execution === 2
    }, 30_000)
    let done: any
    await waitFor('the retried request is CONFIRMED', async () => {
      await anvil.mine()
      done = await getTx(env!, a)
      return done.status === 'CONFIRMED'
    }, 30_000)
    expect(done.nonce).not.toBe(ours.nonce)
    const onChain = await transactionsFrom(env.chain, SIGNER.address)
    expect(onChain.filter((t) => t.input === toHex('refuse-me-outside'))).toHaveLength(1)
    expect(onChain.find((t) => t.nonce === Number(ours.nonce))).toMatchObject({ input: '0x', value: 1n })
  })

  it('a node that took it despite the answer: recorded as sent, never failed, and it confirms', async () => {
    const started = await startBehindProxy({ noMining: true }, 0)
    env = started.env
    started.proxy.setMode('methodError', { errorMethods: ['eth_sendRawTransaction'], forwardErrored: true, error: { code: -32000, message: 'weird node answer' } })
    const id = await submit(env, { to: RECIPIENT, data: toHex('odd-answer') })
    const sent = await waitForStatus(env, id, (t) => t.attempts.some((a: any) => a.status === 'SENT'), 20_000)
    expect(sent.status).toBe('PENDING')
    expect(sent.attempts[0].providers[0].outcome).toBe('unknown')
    await chainControl(env).mine(2)
    const done = await waitForStatus(env, id, 'CONFIRMED')
    expect((await transactionsFrom(env.chain, SIGNER.address)).map((t) => t.input)).toEqual([toHex('odd-answer')])
    expect(done.error).toBeNull()
  })

  it('a provider that refuses every send in unknown words is provider trouble: nothing fails, all confirm once it recovers', async () => {
    const started = await startBehindProxy({ blockTimeSec: 0.2 }, 0)
    env = started.env
    started.proxy.setMode('methodError', { errorMethods: ['eth_sendRawTransaction'], error: { code: -32603, message: 'internal error' } })
    const ids = [await submit(env, { to: RECIPIENT, data: toHex('outage-1') }), await submit(env, { to: RECIPIENT, data: toHex('outage-2') })]
    await waitForStatus(env, ids[1]!, (t) => t.attempts[0]?.providers.length >= 8, 20_000)
    for (const id of ids) expect((await getTx(env, id)).status).toBe('PENDING')
    started.proxy.setMode('ok')
    for (const id of ids) await waitForStatus(env, id, 'CONFIRMED', 30_000)
    expect((await transactionsFrom(env.chain, SIGNER.address)).map((t) => t.input)).toEqual([toHex('outage-1'), toHex('outage-2')])
  })

  it('a transaction sent again and again keeps only the latest 48 provider answers', async () => {
    const started = await startBehindProxy({ blockTimeSec: 0.2 }, 600_000, 100)
    env = started.env
    started.proxy.setMode('methodError', { errorMethods: ['eth_sendRawTransaction'], error: { code: -32603, message: 'internal error' } })
    const id = await submit(env, { to: RECIPIENT, data: toHex('resent') })
    await waitForStatus(env, id, (t) => t.attempts[0]?.providers.length >= 48, 30_000)
    const before = Date.now()
    await new Promise((r) => setTimeout(r, 1_000))
    const t = await getTx(env, id)
    // Sent as it is each time (no node took it, fees meet the market): one attempt, its list trimmed to the newest.
    expect(t.attempts).toHaveLength(1)
    expect(t.attempts[0].providers).toHaveLength(48)
    const { json } = await env.graphql(`query($id: ID!) { transaction(id: $id) { attempts { providers { at } } } }`, { id })
    expect(Date.parse(json.data.transaction.attempts[0].providers.at(-1).at)).toBeGreaterThan(before)
    started.proxy.setMode('ok')
    await waitForStatus(env, id, 'CONFIRMED', 30_000)
  })

  it('a request failed after it was signed, by a signer since removed from the config, is settled as mined when its bytes are', async () => {
    const env0 = await startTestEnv({ anvil: { blockTimeSec: 0.2 } })
    env = env0
    // The key it was signed with is rotated out: a service that no longer has it starts on the same database.
    const gone = privateKeyToAccount(ANVIL_DEV_ACCOUNTS[2].privateKey)
    const raw = await gone.signTransaction({ chainId: 31337, type: 'eip1559', nonce: await env0.chain.getTransactionCount({ address: gone.address }), to: RECIPIENT, value: 5n, gas: 21_000n, maxFeePerGas: 20_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n })
    const hash = keccak256(raw)
    await env0.service.stop()
    const sql = postgres(env0.databaseUrl, { max: 1, onnotice: () => {} })
    let service: RunningService | undefined
    try {
      const [row] = await sql<{ id: string }[]>`
        INSERT INTO transactions (chain_id, signer, "to", value, status, error_code, error_message, final_at)
        VALUES (31337, ${gone.address}, ${RECIPIENT}, 5, 'FAILED', 'SEND_REFUSED', 'no provider took it', now()) RETURNING id`
      await sql`
        INSERT INTO attempts (transaction_id, execution, chain_id, signer, nonce, hash, raw, gas_limit, max_fee_per_gas, max_priority_fee_per_gas, status)
        VALUES (${row!.id}, 1, 31337, ${gone.address}, 0, ${hash}, ${raw}, 21000, 20000000000, 1000000000, 'REJECTED')`
      service = await startService({ config: testConfig(env0.anvil.url), databaseUrl: env0.databaseUrl, port: 0, host: '127.0.0.1', log: createLogger({ level: 'silent', pretty: false }) })
      // Its bytes reach the chain by another way (a node the service did not ask) and are mined.
      await env0.chain.request({ method: 'eth_sendRawTransaction', params: [raw] })
      // Before: only configured signers (and those with PENDING rows) were looked at: it stayed FAILED for good.
      await waitFor('the request mined after it was failed is CONFIRMED', async () => (await sql`SELECT status FROM transactions WHERE id = ${row!.id}`)[0]?.status === 'CONFIRMED', 30_000)
      const events = await sql<{ detail: { reason?: string } }[]>`SELECT detail FROM transaction_events WHERE transaction_id = ${row!.id} AND from_status = 'FAILED'`
      expect(events.map((e) => e.detail.reason)).toEqual(['mined_after_failed'])
    } finally {
      await service?.stop()
      await sql.end()
    }
  })
})
