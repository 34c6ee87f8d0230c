import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { getAddress, parseTransaction, type Hex } from 'viem'
import { chainControl, getTx, mineUntil, submit, waitForStatus } from './helpers/chainControl.ts'
import type { FaultProxy } from './helpers/faultProxy.ts'
import { startRewritingProxy } from './helpers/rewritingProxy.ts'
import { REMOTE_ADDRESS, startWithRemoteSigner } from './helpers/remoteSigner.ts'
import { RECIPIENT, SIGNER, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

const GWEI = 1_000_000_000n

describe('fee bumping and rebroadcast (anvil with mining on demand)', () => {
  let env: TestEnv | undefined
  afterEach(async () => {
    await env?.stop()
    env = undefined
  })

  it('a cancel every provider refuses as never valid (its gas too low) is built again with a fresh estimate, and takes effect', async () => {
    // A chain that charges the L1 part of the cost in gas (Arbitrum, zkSync Era): a 21000-gas send is refused as
    // "intrinsic gas too low"; once `charging`, a self-transfer's estimate says 30000 (before, anvil's 21000: a stale
    // or failed estimate).
    let charging = false
    let chain: Awaited<ReturnType<typeof startRewritingProxy>> | undefined
    let db: postgres.Sql | undefined
    try {
      env = await startTestEnv({
        anvil: { noMining: true },
        setup: async (a) => {
          chain = await startRewritingProxy(a.url, {
            refuse: (c) => (c.method === 'eth_sendRawTransaction' && parseTransaction(c.params![0] as Hex).gas === 21_000n ? 'intrinsic gas too low' : null),
            answer: (c, a) => {
              const call = (c.params?.[0] ?? {}) as { from?: string; to?: string }
              return charging && c.method === 'eth_estimateGas' && call.from?.toLowerCase() === call.to?.toLowerCase() ? { ...a, result: '0x7530' } : a
            },
          })
        },
        config: (c) => {
          c.chains[0].providers = [{ name: 'l1gas', url: chain!.url }]
          c.chains[0].fees = { bumpAfterMs: 1000 }
        },
      })
      db = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
      const id = await submit(env, { to: RECIPIENT, data: '0xc0ffee', gasLimit: '50000' })
      await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
      // The admin's cancel is built while the self-transfer's estimate says 21000 (a stale or failed estimate).
      const cancelled = await env.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { id } }`, { id })
      expect(cancelled.json.errors).toBeUndefined()
      await waitForStatus(env, id, (t) => t.attempts.some((a: any) => a.purpose === 'CANCEL' && a.status === 'REJECTED'))
      charging = true
      // Before: the refused cancel went out again as it was on every pass, and the request could still run.
      await waitFor('a cancel with a fresh gas limit, taken by the node', async () => {
        const rows = await db!<{ gas_limit: string; status: string }[]>`
          SELECT gas_limit::text, status FROM attempts WHERE transaction_id = ${id} AND purpose = 'CANCEL' ORDER BY id`
        return rows.some((r) => BigInt(r.gas_limit) >= 30_000n && r.status === 'SENT')
      }, 15_000)
      const done = await mineUntil(env, id, 'CANCELLED')
      expect(done.status).toBe('CANCELLED')
      const onChain = await env.chain.getTransaction({ hash: done.hash })
      expect([onChain.to?.toLowerCase(), onChain.input, onChain.gas >= 30_000n]).toEqual([SIGNER.address.toLowerCase(), '0x', true])
    } finally {
      await db?.end()
      await chain?.stop()
    }
  })

  it('a node without eth_maxPriorityFeePerGas, or answering it with no number, gets its tip from eth_gasPrice over the base fee', async () => {
    // Sei's RPC once had no such method; a relay answered "0x". Before: every sign batch threw, and requests stayed
    // QUEUED with nothing said on them.
    let mode: 'missing' | 'empty' = 'missing'
    let emptied = 0
    let chain: Awaited<ReturnType<typeof startRewritingProxy>> | undefined
    try {
      env = await startTestEnv({
        anvil: { blockTimeSec: 0.2 },
        setup: async (a) => {
          chain = await startRewritingProxy(a.url, {
            refuse: (c) => (mode === 'missing' && c.method === 'eth_maxPriorityFeePerGas' ? 'the method eth_maxPriorityFeePerGas does not exist/is not available' : null),
            answer: (c, a) => (mode === 'empty' && c.method === 'eth_maxPriorityFeePerGas' ? (emptied++, { ...a, result: '0x' }) : a),
          })
        },
        config: (c) => (c.chains[0].providers = [{ name: 'no-tip-method', url: chain!.url }]),
      })
      // anvil's gas price is the next block's base fee plus its suggested tip (1 gwei): over the latest base fee, a
      // tip above 0 and at most 1 gwei (base fees fall on empty blocks).
      const tipOf = async (id: string) => {
        const t = await waitForStatus(env!, id, 'CONFIRMED', 30_000)
        const tip = BigInt(t.attempts[0].maxPriorityFeePerGas)
        return tip > 0n && tip <= GWEI
      }
      expect(await tipOf(await submit(env, { to: RECIPIENT, value: '1' }))).toBe(true)
      expect(chain!.refused()).toBeGreaterThan(0)
      mode = 'empty'
      // Past the sign stage's reuse of its fee reading (a few blocks).
      await new Promise((r) => setTimeout(r, 2_000))
      expect(await tipOf(await submit(env, { to: RECIPIENT, value: '2' }))).toBe(true)
      expect(emptied).toBeGreaterThan(0)
    } finally {
      await chain?.stop()
    }
  })

  it('a transaction dropped from the pool is sent again and confirms', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].fees = { bumpAfterMs: 1000 }) })
    const anvil = chainControl(env)
    const id = await submit(env, { to: RECIPIENT, value: '1' })
    const pending = await waitForStatus(env, id, (t) => t.status === 'PENDING' && t.attempts[0]?.status === 'SENT')
    await anvil.dropAll()
    expect(await env.chain.request({ method: 'txpool_content' as never })).toMatchObject({ pending: {} })
    // Only after the bump stage has put it back does a block include it. (Counted from the drop: on a slow machine
    // a raise may have come before it, and was dropped too.)
    const dropped = (await getTx(env, id)).attempts.length
    await waitForStatus(env, id, (t) => t.attempts.length > dropped)
    await anvil.mine(2)
    const done = await waitForStatus(env, id, 'CONFIRMED')
    expect(done.attempts.map((a: any) => a.hash)).toContain(done.hash)
    expect(done.hash).not.toBe(pending.attempts[0].hash)
    const onChain = await env.chain.getTransaction({ hash: done.hash })
    expect(onChain.nonce).toBe(0)
    expect(await env.chain.getTransactionCount({ address: SIGNER.address })).toBe(1)
  })

  it("a removed signer's 500 stalled transactions at lower nonces do not keep a configured signer's dropped one from being sent again", async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].fees = { bumpAfterMs: 1000 }) })
    const anvil = chainControl(env)
    const first = await submit(env, { to: RECIPIENT, value: '1' })
    await waitForStatus(env, first, (t) => t.attempts[0]?.status === 'SENT')
    await anvil.mine()
    await waitForStatus(env, first, 'CONFIRMED')
    // PENDING at nonce 0 for 500 signers this service no longer has (a rotated-out key's backlog, long stalled).
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    await sql`
      INSERT INTO transactions (chain_id, signer, "to", value, status, nonce, last_sent_at, first_sent_at)
      SELECT 31337, '0x' || lpad(to_hex(i), 40, '0'), ${RECIPIENT}, 0, 'PENDING', 0, now() - interval '1 hour', now() - interval '1 hour'
      FROM generate_series(1, 500) AS i`
    await sql.end()
    const id = await submit(env, { to: RECIPIENT, value: '2' })
    await waitForStatus(env, id, (t) => t.status === 'PENDING' && t.attempts[0]?.status === 'SENT')
    await anvil.dropAll()
    const dropped = (await getTx(env, id)).attempts.length
    // Before: the bump stage picked the 500 first on every pass (lowest nonces), could do nothing with them, and never got to this one.
    await waitForStatus(env, id, (t) => t.attempts.length > dropped, 15_000)
    await anvil.mine()
    expect((await waitForStatus(env, id, 'CONFIRMED')).nonce).toBe('1')
  })

  it('behind a dropped lower nonce, later transactions are sent again as they are, not bumped; only the lowest is', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].fees = { bumpAfterMs: 800 }) })
    const anvil = chainControl(env)
    const ids: string[] = []
    for (const value of ['11', '12', '13']) ids.push(await submit(env, { to: RECIPIENT, value }))
    const sent = []
    for (const id of ids) sent.push(await waitForStatus(env, id, (t) => t.status === 'PENDING' && t.attempts[0]?.status === 'SENT'))
    expect(sent.map((t) => Number(t.nonce))).toEqual([0, 1, 2])
    // The lowest leaves the pool: the other two wait behind its nonce, with fees that still meet the market.
    await anvil.drop(sent[0].attempts[0].hash)
    await waitForStatus(env, ids[0]!, (t) => t.attempts.length >= 2)
    // Several more timeouts go by for the two behind it: each time the same bytes, never a raise.
    const answersBefore = (await getTx(env, ids[2]!)).attempts[0].providers.length
    await new Promise((r) => setTimeout(r, 2_500))
    for (const id of ids.slice(1)) {
      const t = await getTx(env, id)
      expect(t.attempts).toHaveLength(1)
    }
    expect((await getTx(env, ids[2]!)).attempts[0].providers.length).toBeGreaterThan(answersBefore)
    await anvil.mine(2)
    const done = []
    for (const id of ids) done.push(await waitForStatus(env, id, 'CONFIRMED'))
    // The two behind it mined with the bytes first signed, at the fees first signed.
    expect(done.slice(1).map((t) => t.hash)).toEqual(sent.slice(1).map((t) => t.attempts[0].hash))
    expect(done[0].hash).not.toBe(sent[0].attempts[0].hash)
    expect(await env.chain.getTransactionCount({ address: SIGNER.address })).toBe(3)
  })

  it('a base fee spike far above the signed max fee is met with bumped attempts, each at least 12.5 % higher', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].fees = { bumpAfterMs: 800 }) })
    const anvil = chainControl(env)
    const id = await submit(env, { to: RECIPIENT, value: '2' })
    const first = await waitForStatus(env, id, (t) => t.status === 'PENDING' && t.attempts[0]?.status === 'SENT')
    const signedMaxFee = BigInt(first.attempts[0].maxFeePerGas)
    const spike = signedMaxFee * 50n
    // Keep every block's base fee at the spike until the transaction gets in.
    const deadline = Date.now() + 30_000
    let t = first
    while (t.status === 'PENDING' && Date.now() < deadline) {
      await anvil.setNextBaseFee(spike)
      await anvil.mine()
      await new Promise((r) => setTimeout(r, 300))
      t = await getTx(env, id)
    }
    await anvil.mine(2)
    t = await waitForStatus(env, id, 'CONFIRMED')
    expect(t.attempts.length).toBeGreaterThanOrEqual(2)
    for (let i = 1; i < t.attempts.length; i++) {
      const prev = t.attempts[i - 1]
      const cur = t.attempts[i]
      expect(cur.nonce).toBe(prev.nonce)
      expect(BigInt(cur.maxFeePerGas) * 10_000n).toBeGreaterThanOrEqual(BigInt(prev.maxFeePerGas) * 11_250n)
      expect(BigInt(cur.maxPriorityFeePerGas) * 10_000n).toBeGreaterThanOrEqual(BigInt(prev.maxPriorityFeePerGas) * 11_250n)
    }
    // Confirmed with a bumped attempt, the one the chain holds.
    expect(t.hash).not.toBe(first.attempts[0].hash)
    const receipt = await env.chain.getTransactionReceipt({ hash: t.hash })
    expect(receipt.status).toBe('success')
    expect(BigInt(t.attempts.find((a: any) => a.hash === t.hash).maxFeePerGas)).toBeGreaterThanOrEqual(spike)
    // The attempt that mined is MINED, every other one REPLACED.
    expect(t.attempts.map((a: any) => a.status)).toEqual(t.attempts.map((a: any) => (a.hash === t.hash ? 'MINED' : 'REPLACED')))
    expect(await env.chain.getTransactionCount({ address: SIGNER.address })).toBe(1)
  })

  it('a first attempt signed at the fee cap, below the market, shows atFeeCap at once, not only after bumpAfterMs', async () => {
    // The bump stage looks at it only after 4 s: anything flagged before then was flagged by the sign stage.
    env = await startTestEnv({
      anvil: { noMining: true },
      config: (c) => (c.chains[0].fees = { bumpAfterMs: 4_000, maxFeePerGasCap: (50n * GWEI).toString() }),
    })
    const anvil = chainControl(env)
    const capEvents = (t: any) => t.events.filter((e: any) => JSON.parse(e.detail ?? '{}').action === 'at_fee_cap')
    const signedAfter = async (baseFee: bigint, value: string) => {
      await anvil.setNextBaseFee(baseFee)
      await anvil.mine()
      // The sign stage reuses its fee reading for up to 5 half-blocks (0.5 s here).
      await new Promise((r) => setTimeout(r, 1_000))
      const id = await submit(env!, { to: RECIPIENT, value })
      return { id, t: await waitForStatus(env!, id, (t) => t.status === 'PENDING' && t.attempts.length === 1) }
    }
    // Clipped to the cap (2 × 40 gwei + tip is over 50) but over the market: mined at once, not flagged.
    const clipped = await signedAfter(40n * GWEI, '7')
    expect(BigInt(clipped.t.attempts[0].maxFeePerGas)).toBe(50n * GWEI)
    expect([clipped.t.atFeeCap, capEvents(clipped.t).length]).toEqual([false, 0])
    await anvil.mine()
    await waitForStatus(env, clipped.id, 'CONFIRMED')
    // The market above the cap: it waits for fees to fall, and says so from the start.
    const stuck = await signedAfter(60n * GWEI, '8')
    expect(BigInt(stuck.t.attempts[0].maxFeePerGas)).toBe(50n * GWEI)
    expect(stuck.t.atFeeCap).toBe(true)
    expect(capEvents(stuck.t).map((e: any) => JSON.parse(e.detail))).toEqual([{ action: 'at_fee_cap', cap: (50n * GWEI).toString() }])
    const gql = await env.graphql(`query($id: ID!) { transaction(id: $id) { atFeeCap } }`, { id: stuck.id })
    expect(gql.json.data.transaction.atFeeCap).toBe(true)
    // Past bumpAfterMs the bump stage finds it at the cap: the same bytes again, no second event.
    await new Promise((r) => setTimeout(r, 5_000))
    expect(capEvents(await getTx(env, stuck.id))).toHaveLength(1)
    // Fees fall: it confirms with the bytes first signed, the flag cleared.
    await mineUntil(env, stuck.id, 'CONFIRMED', { maxBlocks: 40, everyMs: 300 })
    const done = await waitForStatus(env, stuck.id, 'CONFIRMED')
    expect(done.hash).toBe(stuck.t.attempts[0].hash)
    expect([done.atFeeCap, capEvents(done).length]).toEqual([false, 1])
  })

  it('at the fee cap it stays PENDING, rebroadcasts the same bytes and says so; it confirms once the base fee falls', async () => {
    env = await startTestEnv({
      anvil: { noMining: true },
      config: (c) => (c.chains[0].fees = { bumpAfterMs: 600, maxFeePerGasCap: (50n * GWEI).toString() }),
    })
    const anvil = chainControl(env)
    await anvil.setNextBaseFee(GWEI)
    await anvil.mine()
    const id = await submit(env, { to: RECIPIENT, value: '3' })
    await waitForStatus(env, id, (t) => t.status === 'PENDING' && t.attempts[0]?.status === 'SENT')
    await anvil.setNextBaseFee(100n * GWEI)
    await anvil.mine()
    const capped = await waitForStatus(env, id, (t) => t.atFeeCap === true, 20_000)
    const capHash = capped.attempts.at(-1).hash
    expect(BigInt(capped.attempts.at(-1).maxFeePerGas)).toBeLessThanOrEqual(50n * GWEI)
    // Stuck at the cap: no new attempts, but the same bytes keep going out.
    const answersBefore = capped.attempts.at(-1).providers.length
    await new Promise((r) => setTimeout(r, 2_000))
    const later = await getTx(env, id)
    expect(later.status).toBe('PENDING')
    expect(later.atFeeCap).toBe(true)
    expect(later.attempts.at(-1).hash).toBe(capHash)
    expect(later.attempts.at(-1).providers.length).toBeGreaterThan(answersBefore)
    expect(later.events.some((e: any) => JSON.parse(e.detail ?? '{}').action === 'at_fee_cap')).toBe(true)
    expect(await (await fetch(`${env.service.url}/metrics`)).text()).toMatch(/txb_transactions_at_fee_cap\{chain_id="31337"\} 1\b/)
    // Empty blocks lower the base fee by 12.5 % each: from 100 gwei it falls under the cap within ~6 blocks.
    // Blocks keep coming, as on a real chain; the rebroadcast same bytes get in once the base fee is under the cap.
    await mineUntil(env, id, 'CONFIRMED', { maxBlocks: 60, everyMs: 300 })
    const done = await waitForStatus(env, id, 'CONFIRMED')
    expect(done.atFeeCap).toBe(false)
    expect(done.hash).toBe(capHash)
    expect(getAddress((await env.chain.getTransaction({ hash: done.hash })).from)).toBe(SIGNER.address)
  })

  it('a remote signer that is down holds back no other signer\'s bumps; its own transaction is sent again as it is, and bumped once it is back', async () => {
    let proxy: FaultProxy | undefined
    ;({ env, proxy } = await startWithRemoteSigner({ anvil: { noMining: true }, chain: (c) => (c.fees = { bumpAfterMs: 800 }) }))
    try {
      const anvil = chainControl(env)
      const local = await submit(env, { to: RECIPIENT, value: '4', from: SIGNER.address })
      const remote = await submit(env, { to: RECIPIENT, value: '5', from: REMOTE_ADDRESS })
      const sent = async (id: string) => waitForStatus(env!, id, (t) => t.status === 'PENDING' && t.attempts[0]?.status === 'SENT')
      const [localFirst, remoteFirst] = [await sent(local), await sent(remote)]
      proxy!.setMode('http500')
      // Base fees far above what both signed: both are due for a raise; only the local signer can sign one.
      const spike = BigInt(localFirst.attempts[0].maxFeePerGas) * 50n
      const spiking = async (until: () => Promise<boolean>, what: string) => {
        const deadline = Date.now() + 30_000
        while (!(await until())) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
          await anvil.setNextBaseFee(spike)
          await anvil.mine()
          await new Promise((r) => setTimeout(r, 300))
        }
      }
      await spiking(async () => (await getTx(env!, local)).attempts.length >= 2, 'a bump of the local signer\'s transaction')
      // Not left silent: its same bytes keep going out (waited for: the pass that raised the local one records
      // its sends after committing the raise, so a read right after the raise could come before them), and its
      // timeline says once why it was not raised.
      const remoteMeanwhile = await waitForStatus(env, remote, (t) => t.attempts[0].providers.length > remoteFirst.attempts[0].providers.length, 10_000)
      expect(remoteMeanwhile.status).toBe('PENDING')
      expect(remoteMeanwhile.attempts).toHaveLength(1)
      const unsignedEvents = (t: any) => t.events.map((e: any) => JSON.parse(e.detail ?? '{}')).filter((d: any) => d.action === 'bump_unsigned')
      await waitForStatus(env, remote, (t) => unsignedEvents(t).length > 0, 10_000)
      await new Promise((r) => setTimeout(r, 2_000))
      const noted = unsignedEvents(await getTx(env, remote))
      expect(noted).toHaveLength(1)
      expect(noted[0]).toMatchObject({ hash: remoteFirst.attempts[0].hash, error: expect.stringMatching(/^signer "remote": eth_signTransaction at .* failed: HTTP 500/) })
      // Nothing of it waits QUEUED, yet the operator is told the signer is failing (the signers query, the dashboard).
      const remoteStatus = async () =>
        (await env!.graphql(`{ signers { name signerFailingSince waitingForSigner signerError } }`)).json.data.signers.find((s: any) => s.name === 'remote')
      expect(await remoteStatus()).toMatchObject({ waitingForSigner: 0, signerFailingSince: expect.any(String), signerError: expect.stringMatching(/failed: HTTP 500/) })
      // An admin's cancel meanwhile is refused in the signer's words, and changes nothing.
      const cancel = await env.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { id } }`, { id: remote })
      expect(cancel.json.errors?.[0]?.extensions?.code).toBe('SIGNER_UNAVAILABLE')
      expect(cancel.json.errors[0].message).toMatch(/^The cancel could not be signed, nothing changed: signer "remote": eth_signTransaction at .* failed/)
      expect((await getTx(env, remote)).attempts).toHaveLength(1)
      proxy!.setMode('ok')
      await spiking(async () => (await getTx(env!, remote)).attempts.length >= 2, 'a bump of the remote signer\'s transaction')
      // Cleared once it signs the bump (recorded just after the pass commits).
      await waitFor('the remote signer no longer failing', async () => (await remoteStatus()).signerFailingSince === null, 10_000)
      expect((await remoteStatus()).signerError).toBeNull()
      await anvil.mine(3)
      for (const id of [local, remote]) {
        const done = await waitForStatus(env, id, 'CONFIRMED')
        expect(done.attempts.length).toBeGreaterThanOrEqual(2)
      }
      expect(await env.chain.getTransactionCount({ address: REMOTE_ADDRESS })).toBe(1)
    } finally {
      await proxy?.stop()
    }
  })

  it('past validUntil with its remote signer down: its own bytes are not sent again, it says why, and the cancel goes out once the signer is back', async () => {
    let proxy: FaultProxy | undefined
    ;({ env, proxy } = await startWithRemoteSigner({ anvil: { noMining: true }, chain: (c) => (c.fees = { bumpAfterMs: 800 }) }))
    try {
      const id = await submit(env, { to: RECIPIENT, value: '6', from: REMOTE_ADDRESS, validUntil: new Date(Date.now() + 2_000).toISOString() })
      await waitForStatus(env, id, (t) => t.status === 'PENDING' && t.attempts[0]?.status === 'SENT')
      proxy!.setMode('http500')
      const waiting = await waitForStatus(env, id, (t) => t.error?.code === 'EXPIRED', 20_000)
      expect(waiting.status).toBe('PENDING')
      expect(waiting.error.message).toMatch(/passed before inclusion; its cancel could not be signed yet \(signer "remote": eth_signTransaction at .* failed: HTTP 500.*\), tried again every 800 ms; meanwhile it may still execute late$/)
      expect(waiting.events.filter((e: any) => JSON.parse(e.detail ?? '{}').action === 'expired_cancel_unsigned')).toHaveLength(1)
      // Its request bytes do not go out again while it waits for the cancel (they could only execute late).
      const answers = waiting.attempts[0].providers.length
      await new Promise((r) => setTimeout(r, 2_500))
      const later = await getTx(env, id)
      expect(later.attempts).toHaveLength(1)
      expect(later.attempts[0].providers.length).toBe(answers)
      expect(later.events.filter((e: any) => JSON.parse(e.detail ?? '{}').action === 'expired_cancel_unsigned')).toHaveLength(1)
      proxy!.setMode('ok')
      // Sent, not only stored: a block mined between the two (a loaded CI machine) holds the request's own bytes,
      // which it may still do until the cancel reaches the node (the message above says so).
      await waitForStatus(env, id, (t) => t.attempts.some((a: any) => a.purpose === 'CANCEL' && a.status === 'SENT'), 20_000)
      const done = await mineUntil(env, id, 'CANCELLED')
      expect(done.error.code).toBe('EXPIRED')
      expect((await env.chain.getTransaction({ hash: done.hash })).value).toBe(0n)
    } finally {
      await proxy?.stop()
    }
  })
})
