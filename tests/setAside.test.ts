import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { toHex } from 'viem'
import { chainControl, getTx, mineUntil, REVERTING_CODE, submit, transactionsFrom, waitForStatus } from './helpers/chainControl.ts'
import { startFaultProxy, type FaultProxy } from './helpers/faultProxy.ts'
import { startBehindFaultProxy } from './helpers/behindFaultProxy.ts'
import { RECIPIENT, SIGNER, startTestEnv, type TestEnv } from './helpers/testService.ts'
import type { StartAnvilOptions } from '../src/dev/startAnvil.ts'

const ETHER = 10n ** 18n

/**
 * Runtime code with one flag (storage slot 0): a call with no calldata sets it; a call with any calldata reverts
 * while it is not set. The second call needs the first to have run, as a transferFrom needs its approve.
 */
const NEEDS_FLAG_CODE = '0x36600a576001600055005b60005460165760006000fd5b00' as const
const NEEDS_FLAG = '0x00000000000000000000000000000000000f1a90'
/** Where REVERTING_CODE (always Error("nope")) is put. */
const REVERTER = '0x00000000000000000000000000000000000b0b00'

/**
 * Requests the sign stage cannot sign yet are set aside (QUEUED, no nonce spent): they must not hold back
 * the requests behind them, they must not be estimated again on every drain, and each reason has a patience
 * after which the request ends FAILED with the reason's code.
 */
describe('requests set aside by the sign stage', () => {
  let env: TestEnv | undefined
  let proxy: FaultProxy | undefined
  afterEach(async () => {
    await env?.stop()
    await proxy?.stop()
    env = proxy = undefined
  })

  function startBehindProxy(
    patience: Record<string, number>,
    rpc?: Record<string, number>,
    anvil: StartAnvilOptions = { blockTimeSec: 0.2 },
  ): Promise<{ env: TestEnv; proxy: FaultProxy }> {
    return startBehindFaultProxy(anvil, (c) => {
      c.chains[0].patience = patience
      if (rpc) c.chains[0].rpc = rpc
      // Steady traffic from one key below (the default rate limit is 200/s).
      c.limits = { requestsPerSecond: 100_000, burst: 100_000 }
    })
  }

  /**
   * A service whose provider answers every gas estimate of one request (calldata `tag`) after 5 s, past the chain's
   * 1.5 s timeout (a heavy contract call, a node forking a remote chain); the rest pass at once. That request is
   * submitted; its id and calldata are returned.
   */
  async function withSlowEstimate(tag: string, estimateMs: number) {
    const started = await startBehindProxy({ estimateMs }, { timeoutMs: 1_500 })
    ;({ env, proxy } = started)
    const slowData = toHex(tag)
    started.proxy.setMode('slow', { slowMethods: ['eth_estimateGas'], slowParamsInclude: slowData.slice(2), slowMs: 5_000 })
    return { ...started, slow: await submit(started.env, { to: RECIPIENT, data: slowData }), slowData }
  }

  /**
   * Submits a transfer that needs an estimate every 300 ms while `id` stays QUEUED (40 s at most): each wakes the sign
   * stage, and `id`'s next look shares a batch whose other estimates go through. Returns `id` as it ended, its error
   * messages as seen after each transfer, and the transfers.
   */
  async function transfersWhileQueued(env: TestEnv, id: string): Promise<{ t: any; seen: string[]; others: string[] }> {
    const seen: string[] = []
    const others: string[] = []
    const deadline = Date.now() + 40_000
    let t = await getTx(env, id)
    while (t.status === 'QUEUED' && Date.now() < deadline) {
      others.push(await submit(env, { to: RECIPIENT, value: String(others.length + 1) }))
      await new Promise((r) => setTimeout(r, 300))
      t = await getTx(env, id)
      seen.push(t.error?.message ?? '')
    }
    return { t, seen, others }
  }

  it('a gas estimate the node refuses in words we do not know holds back no one, and fails once its patience is over', async () => {
    ;({ env, proxy } = await startBehindProxy({ estimateMs: 4_000 }))
    // The node refuses every estimate with a wording no classifier knows (a client we have no vector for).
    proxy.setMode('methodError', { errorMethods: ['eth_estimateGas'], error: { code: -32000, message: 'frobnication quota of the sender is spent' } })
    const refused = await submit(env, { to: RECIPIENT, data: toHex('needs an estimate') })
    const behind = [await submit(env, { to: RECIPIENT, data: toHex('behind-1'), gasLimit: '60000' }), await submit(env, { to: RECIPIENT, data: toHex('behind-2'), gasLimit: '60000' })]

    // Set aside, read before its patience (4 s) can run out on a slow machine.
    const waiting = await waitForStatus(env, refused, (t) => t.error !== null)
    // The ones behind it go through (before, the refusal failed their whole batch, every time: the signer stalled).
    for (const id of behind) expect((await waitForStatus(env, id, 'CONFIRMED')).nonce).not.toBeNull()
    expect(waiting.status).toBe('QUEUED')
    expect(waiting.nonce).toBeNull()
    expect(waiting.error.code).toBe('GAS_ESTIMATION_FAILED')
    expect(waiting.error.message).toMatch(/frobnication quota.*waits until/)

    // Past the patience it ends FAILED, with the node's words; no nonce was spent on it.
    const failed = await waitForStatus(env, refused, 'FAILED', 30_000)
    expect(failed.error.code).toBe('GAS_ESTIMATION_FAILED')
    expect(failed.error.message).toMatch(/frobnication quota of the sender is spent \(still so after \d+ s\)/)
    expect(failed.nonce).toBeNull()
    const mined = await transactionsFrom(env.chain, SIGNER.address)
    expect(mined.map((t) => t.input)).toEqual([toHex('behind-1'), toHex('behind-2')])
    expect(mined.map((t) => t.nonce)).toEqual([0, 1])
  })

  it('a gas estimate no node answers in time holds back no one, does not take the provider down, and waits saying why', async () => {
    const { env, proxy, slow, slowData } = await withSlowEstimate('too heavy to estimate in time', 120_000)
    const behind = [await submit(env, { to: RECIPIENT, value: '5' }), await submit(env, { to: RECIPIENT, data: toHex('behind-with-gas'), gasLimit: '60000' })]

    // Before: the timeout failed the batch on every try; these stayed QUEUED behind it, with no reason shown.
    for (const id of behind) expect((await waitForStatus(env, id, 'CONFIRMED', 30_000)).nonce).not.toBeNull()
    const waiting = await waitForStatus(env, slow, (t) => t.error !== null)
    expect(waiting).toMatchObject({ status: 'QUEUED', nonce: null, error: { code: 'GAS_ESTIMATION_FAILED' } })
    // With a deadline when another estimate of its batch went through, without one when it was alone (the first look
    // may come before the others were accepted).
    expect(waiting.error.message).toMatch(/did not finish its gas estimate within rpc\.timeoutMs \(1500 ms\).*(waits until|waits without a deadline)/)
    // The call's time is not the provider's: before, each look took the provider down (every provider in turn).
    const { json } = await env.graphql(`query { providers(chainId: 31337) { name status errorsLastMinute } }`)
    expect(json.data.providers).toEqual([{ name: 'proxy', status: expect.not.stringMatching(/DOWN/), errorsLastMinute: 0 }])

    // Answered in time again, it is signed on its next look.
    proxy.setMode('ok')
    const done = await waitForStatus(env, slow, 'CONFIRMED', 30_000)
    expect(done.error).toBeNull()
    expect((await transactionsFrom(env.chain, SIGNER.address)).filter((t) => t.input === slowData)).toHaveLength(1)
  }, 60_000)

  it('a gas estimate no node answers in time, alone in its batch, fails after its patience when the provider finishes other estimates', async () => {
    const { env, slow } = await withSlowEstimate('too heavy, and alone', 3_000)
    const behind = await submit(env, { to: RECIPIENT, data: toHex('behind, with its gas'), gasLimit: '60000' })
    // Before: with no other estimate in the batch, the batch was thrown on every try, and this one with it.
    expect((await waitForStatus(env, behind, 'CONFIRMED', 30_000)).nonce).not.toBeNull()
    // No other request needs an estimate: a plain estimate, asked alone, tells its call from the provider. Before, it
    // could not, and a request alone with its heavy call waited without a deadline for good.
    const waiting = await waitForStatus(env, slow, (t) => t.error !== null)
    expect(waiting).toMatchObject({ status: 'QUEUED', nonce: null, error: { code: 'GAS_ESTIMATION_FAILED' } })
    expect(waiting.error.message).toMatch(/within rpc\.timeoutMs \(1500 ms\).*waits until/)
    const failed = await waitForStatus(env, slow, 'FAILED', 30_000)
    expect(failed.nonce).toBeNull()
    expect(failed.error.message).toMatch(/did not finish its gas estimate within rpc\.timeoutMs \(1500 ms\).*\(still so after \d+ s\)/)
    expect((await transactionsFrom(env.chain, SIGNER.address)).map((t) => t.input)).toEqual([toHex('behind, with its gas')])
  }, 60_000)

  it('a provider slow on every gas estimate holds back no request that carries its gasLimit, and its requests wait without a deadline', async () => {
    // A patience longer than a look apart: an estimate still held when the provider recovers times out, its look finds
    // estimates going through, and its patience runs from its last wait without a deadline (the look before).
    ;({ env, proxy } = await startBehindProxy({ estimateMs: 10_000 }, { timeoutMs: 1_500 }))
    proxy.setMode('slow', { slowMethods: ['eth_estimateGas'], slowMs: 5_000 })
    const slow = await submit(env, { to: RECIPIENT, data: toHex('too heavy, or the provider') })
    const behind = await submit(env, { to: RECIPIENT, data: toHex('behind, with its gas'), gasLimit: '60000' })
    expect((await waitForStatus(env, behind, 'CONFIRMED', 30_000)).nonce).not.toBeNull()
    const waiting = await waitForStatus(env, slow, (t) => t.error !== null)
    expect(waiting).toMatchObject({ status: 'QUEUED', nonce: null, error: { code: 'GAS_ESTIMATION_FAILED' } })
    expect(waiting.error.message).toMatch(/within rpc\.timeoutMs \(1500 ms\).*waits without a deadline/)
    // Its patience (10 s) does not run while no estimate goes through (it cannot tell its call from the provider):
    // still QUEUED, without a deadline, after more than that.
    await new Promise((r) => setTimeout(r, 12_000))
    expect((await getTx(env, slow))).toMatchObject({ status: 'QUEUED', error: { message: expect.stringMatching(/waits without a deadline/) } })
    // Answered in time again: it is signed on a next look.
    proxy.setMode('ok')
    expect((await waitForStatus(env, slow, 'CONFIRMED', 30_000)).error).toBeNull()
  }, 60_000)

  it('a gas estimate that waited without a deadline starts its patience when other estimates go through, not when it first waited', async () => {
    ;({ env, proxy } = await startBehindProxy({ estimateMs: 8_000 }, { timeoutMs: 1_500 }))
    const slowData = toHex('waited long without a deadline')
    // Every estimate is slow at first (the provider's trouble), then only this request's (its own heavy call).
    proxy.setMode('slow', { slowMethods: ['eth_estimateGas'], slowMs: 5_000 })
    const slow = await submit(env, { to: RECIPIENT, data: slowData })
    // It waits without a deadline for longer than its patience (8 s), looked at every 5 s.
    await waitForStatus(env, slow, (t) => /waits without a deadline/.test(t.error?.message ?? ''))
    await new Promise((r) => setTimeout(r, 12_000))
    expect((await getTx(env, slow)).status).toBe('QUEUED')
    proxy.setMode('slow', { slowMethods: ['eth_estimateGas'], slowParamsInclude: slowData.slice(2), slowMs: 5_000 })
    // Its patience runs from its last wait without a deadline: it first waits with one, then fails. Counted from
    // when it first waited (20 s before), it failed on that first look.
    const first = await waitForStatus(env, slow, (t) => t.status !== 'QUEUED' || /waits until/.test(t.error?.message ?? ''), 30_000)
    expect(first.status).toBe('QUEUED')
    expect((await waitForStatus(env, slow, 'FAILED', 30_000)).nonce).toBeNull()
  }, 90_000)

  it('a gas estimate that times out on one provider while the other is down is still the call\'s: the requests behind it go through', async () => {
    let broken: FaultProxy | undefined
    env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      setup: async (a) => {
        proxy = await startFaultProxy(a.url)
        broken = await startFaultProxy(a.url, 'http500')
      },
      config: (c) => {
        // The slow one first: viem's fallback then throws the broken one's error, not the timeout.
        c.chains[0].providers = [
          { name: 'slow', url: proxy!.url, weight: 2 },
          { name: 'broken', url: broken!.url, weight: 1 },
        ]
        c.chains[0].rpc = { timeoutMs: 1_500 }
        c.chains[0].patience = { estimateMs: 120_000 }
      },
    })
    try {
      const slowData = toHex('too heavy, and the other provider down')
      proxy!.setMode('slow', { slowMethods: ['eth_estimateGas'], slowParamsInclude: slowData.slice(2), slowMs: 5_000 })
      const slow = await submit(env, { to: RECIPIENT, data: slowData })
      const behind = await submit(env, { to: RECIPIENT, value: '9' })
      // Before: read as the down provider's passing trouble, retried, and the batch failed on every try.
      expect((await waitForStatus(env, behind, 'CONFIRMED', 30_000)).nonce).not.toBeNull()
      const waiting = await waitForStatus(env, slow, (t) => t.error !== null)
      expect(waiting).toMatchObject({ status: 'QUEUED', nonce: null, error: { code: 'GAS_ESTIMATION_FAILED' } })
      expect(waiting.error.message).toMatch(/did not finish its gas estimate within rpc\.timeoutMs/)
    } finally {
      await broken?.stop()
    }
  }, 60_000)

  it('a gas estimate no node answers in time fails after its patience while other estimates go through', async () => {
    const { env, slow } = await withSlowEstimate('too heavy, among others', 2_000)
    const { t, others } = await transfersWhileQueued(env, slow)
    expect(t.status).toBe('FAILED')
    expect(t.nonce).toBeNull()
    expect(t.error.code).toBe('GAS_ESTIMATION_FAILED')
    expect(t.error.message).toMatch(/did not finish its gas estimate within rpc\.timeoutMs \(1500 ms\).*\(still so after \d+ s\)/)
    for (const id of others) await waitForStatus(env, id, 'CONFIRMED', 30_000)
  }, 90_000)

  it('a gas estimate the provider fails for one request alone, in words of provider trouble, holds back no request behind it', async () => {
    ;({ env, proxy } = await startBehindProxy({ estimateMs: 120_000 }))
    // Every estimate of this one call is answered with a provider's "timed out" (the node gives up on a heavy call);
    // every other call is answered as usual.
    const troubled = toHex('the provider times out on this one')
    proxy.setMode('methodError', { errorMethods: ['eth_estimateGas'], errorParamsInclude: troubled.slice(2), error: { code: -32000, message: 'request timed out on the upstream node' } })
    const id = await submit(env, { to: RECIPIENT, data: troubled })
    const behind = [await submit(env, { to: RECIPIENT, data: toHex('behind, with its gas'), gasLimit: '60000' }), await submit(env, { to: RECIPIENT, value: '3' })]
    // Before: read as provider trouble, it failed its batch on every try, and these stayed QUEUED behind it with no reason shown.
    for (const b of behind) expect((await waitForStatus(env, b, 'CONFIRMED', 30_000)).nonce).not.toBeNull()
    const waiting = await waitForStatus(env, id, (t) => t.error !== null)
    expect(waiting).toMatchObject({ status: 'QUEUED', nonce: null, error: { code: 'GAS_ESTIMATION_FAILED' } })
    // Provider trouble: it never counts against the request's patience.
    expect(waiting.error.message).toMatch(/^the provider failed its gas estimate: .*request timed out on the upstream node.*waits without a deadline$/)
    proxy.setMode('ok')
    expect((await waitForStatus(env, id, 'CONFIRMED', 30_000)).error).toBeNull()
    expect((await transactionsFrom(env.chain, SIGNER.address)).map((t) => t.input)).toEqual([toHex('behind, with its gas'), '0x', troubled])
  }, 60_000)

  it('a provider that fails everything in unknown words is provider trouble: no patience runs, the request confirms once it recovers', async () => {
    ;({ env, proxy } = await startBehindProxy({ estimateMs: 2_000 }))
    // A generic "Internal error" to the estimate and to a plain call alike: the provider, not the request.
    proxy.setMode('methodError', { errorMethods: ['eth_estimateGas', 'eth_blockNumber'], error: { code: -32603, message: 'Internal error' } })
    const id = await submit(env, { to: RECIPIENT, data: toHex('waits out an outage') })
    await new Promise((r) => setTimeout(r, 8_000))
    const during = await getTx(env, id)
    expect(during.status).toBe('QUEUED')
    // Not set aside with a patience running out (before: GAS_ESTIMATION_FAILED, "it waits until ..., then fails").
    expect(during.error?.code ?? null).toBeNull()
    proxy.setMode('ok')
    expect((await waitForStatus(env, id, 'CONFIRMED', 30_000)).error).toBeNull()
  })

  it('a request the signer cannot pay for fails after the funds patience, and spends no nonce', async () => {
    ;({ env, proxy } = await startBehindProxy({ fundsMs: 2_000 }))
    const tooMuch = await submit(env, { to: RECIPIENT, value: (100_000_000n * ETHER).toString(), gasLimit: '21000' })
    const waiting = await waitForStatus(env, tooMuch, (t) => t.error?.code === 'INSUFFICIENT_FUNDS')
    expect(waiting.status).toBe('QUEUED')
    const failed = await waitForStatus(env, tooMuch, 'FAILED', 30_000)
    expect(failed.error.code).toBe('INSUFFICIENT_FUNDS')
    expect(failed.error.message).toMatch(/^needs \d+ wei \(value and gas at its max fee\), more than signer 0x[0-9a-fA-F]{40} can cover: balance \d+ wei.* \(still so after \d+ s\)$/)
    // The next request takes nonce 0: nothing was spent on the one that failed.
    const next = await submit(env, { to: RECIPIENT, value: '1', gasLimit: '21000' })
    const done = await waitForStatus(env, next, 'CONFIRMED')
    expect(done.nonce).toBe('0')
  })

  it('a request set aside while its signer is drained without a pause (steady traffic) is looked at again, and fails after its patience', async () => {
    ;({ env, proxy } = await startBehindProxy({ fundsMs: 2_000 }))
    // Steady traffic to the one signer: one drain signs it all and never finds its queue empty.
    let running = true
    let sent = 0
    const client = async () => {
      while (running) {
        await submit(env!, { to: RECIPIENT, value: '1', gasLimit: '21000' })
        sent++
      }
    }
    const clients = Array.from({ length: 6 }, client)
    try {
      await new Promise((r) => setTimeout(r, 1_000))
      const tooMuch = await submit(env, { to: RECIPIENT, value: (100_000_000n * ETHER).toString(), gasLimit: '21000' })
      await waitForStatus(env, tooMuch, (t) => t.error?.code === 'INSUFFICIENT_FUNDS')
      // Before: left out of every later batch of that drain, it stayed QUEUED past its patience for as long as the traffic lasted.
      const failed = await waitForStatus(env, tooMuch, 'FAILED', 20_000)
      expect(failed.error.code).toBe('INSUFFICIENT_FUNDS')
    } finally {
      running = false
      await Promise.all(clients)
    }
    expect(sent).toBeGreaterThan(100)
  })

  it('rows waiting for funds are not estimated again on every drain, and the rows behind them are signed at once', async () => {
    ;({ env, proxy } = await startBehindProxy({}))
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      // 40 requests no balance can cover, each estimated (no gasLimit): the node refuses with insufficient funds.
      const parked = await Promise.all(Array.from({ length: 40 }, () => submit(env!, { to: RECIPIENT, value: (100_000_000n * ETHER).toString() })))
      for (const id of parked) await waitForStatus(env, id, (t) => t.error?.code === 'INSUFFICIENT_FUNDS')
      // The node's words, then why it waits, without the node's full stop in between (".; it waits").
      proxy.resetStats()
      // Then 20 payable requests one after another: each is a drain of the signer's queue.
      const started = Date.now()
      for (let i = 0; i < 20; i++) {
        const id = await submit(env, { to: RECIPIENT, value: '1', data: toHex(`paid-${i}`) })
        await waitForStatus(env, id, (t) => t.status !== 'QUEUED')
      }
      const seconds = (Date.now() - started) / 1000
      const estimates = proxy.stats.calls['eth_estimateGas'] ?? 0
      // Each paid request is estimated once; the 40 parked ones at most once per 5 s look (plus one), not once
      // per drain (which was 20 × 40 = 800 more).
      expect(estimates).toBeLessThanOrEqual(20 + 40 * (Math.ceil(seconds / 5) + 1))
      expect(estimates).toBeLessThan(20 + 40 * 20)
      const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM transactions WHERE status = 'QUEUED' AND error_code = 'INSUFFICIENT_FUNDS' AND waiting_since IS NOT NULL`
      expect(row!.n).toBe(40)
      // One the node refuses to estimate for lack of funds (calldata to an account): its words, then why it waits,
      // without the node's full stop in between (".; it waits").
      const refusedByNode = await submit(env, { to: RECIPIENT, value: (100_000_000n * ETHER).toString(), data: '0xdeadbeef' })
      const words = (await waitForStatus(env, refusedByNode, (t) => t.error?.code === 'INSUFFICIENT_FUNDS')).error.message
      expect(words).toMatch(/[^.]; it waits until \S+, then fails$/)
      // As if they had waited 40 minutes: their next look is a minute away (a quarter of the wait, at most a minute).
      await sql`UPDATE transactions SET waiting_since = now() - interval '40 minutes', updated_at = now() WHERE status = 'QUEUED' AND error_code = 'INSUFFICIENT_FUNDS'`
      // Funded, they go through at once, not on that schedule (the default patience is an hour). Before, they
      // waited out the minute: after funding a wallet, nothing moved.
      await chainControl(env).setBalance(SIGNER.address, 10n ** 9n * ETHER)
      const funded = Date.now()
      for (const id of parked.slice(0, 3)) expect((await waitForStatus(env, id, 'CONFIRMED', 30_000)).error).toBeNull()
      expect(Date.now() - funded).toBeLessThan(30_000)
    } finally {
      await sql.end()
    }
  }, 180_000)

  it('a call that reverts fails at once behind a request set aside for funds: only requests being signed or sent are waited for', async () => {
    env = await startTestEnv({ anvil: { noMining: true } })
    await chainControl(env).setCode(REVERTER, REVERTING_CODE)
    const dear = await submit(env, { to: RECIPIENT, value: (100_000_000n * ETHER).toString(), gasLimit: '21000' })
    expect((await waitForStatus(env, dear, (t) => t.error !== null)).error.code).toBe('INSUFFICIENT_FUNDS')
    const reverting = await submit(env, { to: REVERTER, data: '0x12345678' })
    // Waiting behind every earlier QUEUED request, it would have waited out patience.estimateMs (10 min) here.
    const failed = await waitForStatus(env, reverting, 'FAILED', 10_000)
    expect(failed.error).toEqual({ code: 'GAS_ESTIMATION_REVERTED', message: 'execution reverted: nope' })
  })

  it('a request that needs an earlier one of its signer, sent without a gasLimit, waits for it to be mined instead of failing its estimate, then runs', async () => {
    // A timeout longer than the send held below.
    ;({ env, proxy } = await startBehindProxy({}, { timeoutMs: 15_000 }, { noMining: true }))
    const anvil = chainControl(env)
    await anvil.setCode(NEEDS_FLAG, NEEDS_FLAG_CODE)
    // The first one's send takes 5 s to reach the node: the second is estimated without it (anvil estimates on its
    // pending state, which holds what it was sent; geth's default is the latest block, which holds neither until mined).
    proxy.setMode('slow', { slowMethods: ['eth_sendRawTransaction'], slowMs: 5_000 })
    const first = await submit(env, { to: NEEDS_FLAG, data: '0x' })
    const second = await submit(env, { to: NEEDS_FLAG, data: '0x01' })
    // Before: FAILED GAS_ESTIMATION_REVERTED at once, though it would run once the first had.
    const waiting = await waitForStatus(env, second, (t) => t.error !== null)
    expect(waiting).toMatchObject({ status: 'QUEUED', nonce: null, error: { code: 'GAS_ESTIMATION_REVERTED' } })
    expect(waiting.error.message).toMatch(/while a request its signer took before it is not mined yet.*waits until/)
    await waitForStatus(env, first, (t) => t.attempts[0]?.status === 'SENT')
    expect((await mineUntil(env, first, 'CONFIRMED')).status).toBe('CONFIRMED')
    const done = await mineUntil(env, second, 'CONFIRMED', { maxBlocks: 60 })
    expect(done.status).toBe('CONFIRMED')
    expect((await env.chain.getTransactionReceipt({ hash: done.hash })).status).toBe('success')
  }, 60_000)
})
