import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { getAddress } from 'viem'
import { chainControl, getTx, mineUntil, REVERTING_CODE, submit, transactionsFrom, TX_FIELDS, waitForStatus } from './helpers/chainControl.ts'
import { startFaultProxy, type FaultProxy } from './helpers/faultProxy.ts'
import { startBehindFaultProxy } from './helpers/behindFaultProxy.ts'
import { startL1GasProxy } from './helpers/l1GasProxy.ts'
import { RECIPIENT, SIGNER, startTestEnv, type TestEnv } from './helpers/testService.ts'

const TARGET = '0x00000000000000000000000000000000000c0de0'

describe('admin actions, idempotency and deadlines', () => {
  let env: TestEnv | undefined
  afterEach(async () => {
    await env?.stop()
    env = undefined
  })

  it('a FAILED transaction retried by an admin confirms; the retry is in its timeline with the key name', async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.2 } })
    const anvil = chainControl(env)
    await anvil.setCode(TARGET, REVERTING_CODE)
    const id = await submit(env, { to: TARGET, data: '0xabcdef01' })
    await waitForStatus(env, id, 'FAILED')
    // The cause goes away (the contract is fixed), then the admin retries.
    await anvil.setCode(TARGET, '0x00')
    const res = await env.graphql(`mutation($id: ID!) { retryTransaction(id: $id) { id status execution } }`, { id })
    expect(res.json.errors).toBeUndefined()
    expect(res.json.data.retryTransaction).toEqual({ id, status: 'QUEUED', execution: 2 })
    const done = await waitForStatus(env, id, 'CONFIRMED')
    expect(done.execution).toBe(2)
    expect(done.error).toBeNull()
    const retry = done.events.find((e: any) => e.fromStatus === 'FAILED' && e.toStatus === 'QUEUED')
    expect(retry.actor).toBe('test-admin')
    expect((await env.chain.getTransactionReceipt({ hash: done.hash })).status).toBe('success')

    // Only FAILED or REVERTED can be retried.
    const again = await env.graphql(`mutation($id: ID!) { retryTransaction(id: $id) { id } }`, { id })
    expect(again.json.errors[0].extensions.code).toBe('INVALID_STATE')

    // The same retry sent again (its answer lost), naming the execution the admin saw end: answered with the
    // transaction as it is. Once the second execution had ended FAILED or REVERTED too, it started a third run.
    const retryOf = (execution: number) =>
      env!.graphql(`mutation($id: ID!, $e: Int) { retryTransaction(id: $id, execution: $e) { id status execution } }`, { id, e: execution })
    const resent = await retryOf(1)
    expect(resent.json.errors).toBeUndefined()
    expect(resent.json.data.retryTransaction).toEqual({ id, status: 'CONFIRMED', execution: 2 })
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    await sql`UPDATE transactions SET status = 'REVERTED' WHERE id = ${id}`.finally(() => sql.end())
    expect((await retryOf(1)).json.data.retryTransaction).toEqual({ id, status: 'REVERTED', execution: 2 })
    expect((await getTx(env, id)).events.filter((e: any) => e.fromStatus !== null && e.toStatus === 'QUEUED')).toHaveLength(1)
    // An execution it never had is a mistake, said as one.
    for (const e of [3, 0]) expect((await retryOf(e)).json.errors[0].extensions.code).toBe('INVALID_INPUT')
  })

  it('a cancelled PENDING transaction ends CANCELLED with the zero-value self-transfer on chain', async () => {
    env = await startTestEnv({ anvil: { noMining: true } })
    const anvil = chainControl(env)
    const id = await submit(env, { to: RECIPIENT, value: '123456' })
    const pending = await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    const res = await env.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { ${TX_FIELDS} } }`, { id })
    expect(res.json.errors).toBeUndefined()
    expect(res.json.data.cancelTransaction.status).toBe('PENDING')
    const cancel = (await getTx(env, id)).attempts.at(-1)
    expect(cancel.purpose).toBe('CANCEL')
    expect(cancel.nonce).toBe(pending.attempts[0].nonce)
    // The cancel is a signed attempt like a raise: counted (it was not in txb_attempts_total).
    const metrics = await (await fetch(`${env.service.url}/metrics`)).text()
    expect(metrics).toMatch(/^txb_attempts_total\{chain_id="31337",kind="bump"\} 1$/m)
    const t = await mineUntil(env, id, 'CANCELLED')
    expect(t.status).toBe('CANCELLED')
    expect(t.error.code).toBe('CANCELLED')
    const onChain = await env.chain.getTransaction({ hash: t.hash })
    expect(t.hash).toBe(cancel.hash)
    expect(getAddress(onChain.to!)).toBe(SIGNER.address)
    expect(onChain.value).toBe(0n)
    expect(onChain.nonce).toBe(0)
    expect(t.events.find((e: any) => JSON.parse(e.detail ?? '{}').action === 'cancel').actor).toBe('test-admin')
    // Cancelled again (an admin's call sent again after its answer was lost): the row as it is, nothing new. Before: 409.
    const again = await env.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { ${TX_FIELDS} } }`, { id })
    expect(again.json.errors).toBeUndefined()
    expect(again.json.data.cancelTransaction).toMatchObject({ status: 'CANCELLED', hash: t.hash })
    expect(again.json.data.cancelTransaction.attempts).toHaveLength(t.attempts.length)
    expect(again.json.data.cancelTransaction.events).toHaveLength(t.events.length)
  })

  it('a cancel on a chain that charges its L1 cost in gas (Arbitrum) has the gas it needs, and ends CANCELLED', async () => {
    // A 21000-gas cancel is refused there ("intrinsic gas too low"): the request it was to replace mined instead,
    // or, with nothing mined, every later nonce of the signer waited behind it for ever.
    let proxy: Awaited<ReturnType<typeof startL1GasProxy>> | undefined
    env = await startTestEnv({
      anvil: { noMining: true },
      setup: async (anvil) => {
        proxy = await startL1GasProxy(anvil.url)
      },
      config: (c) => {
        c.chains[0].providers = [{ name: 'arbitrum-like', url: proxy!.url }]
      },
    })
    try {
      const id = await submit(env, { to: RECIPIENT, value: '123457' })
      await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
      const res = await env.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { status } }`, { id })
      expect(res.json.errors).toBeUndefined()
      const t = await mineUntil(env, id, 'CANCELLED')
      const onChain = await env.chain.getTransaction({ hash: t.hash })
      expect(getAddress(onChain.to!)).toBe(SIGNER.address)
      expect(onChain.gas).toBeGreaterThan(51_000n)
      expect(proxy!.refused()).toBe(0)
    } finally {
      await proxy?.stop()
    }
  })

  it('a client retrying with the same idempotency key gets the same transaction; other fields are a conflict', async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.2 } })
    const body = { to: RECIPIENT, value: '42', idempotencyKey: 'order-42' }
    const [a, b] = await Promise.all([env.post('/broadcast_transaction', body), env.post('/broadcast_transaction', body)])
    expect(a.status).toBe(200)
    expect(b.status).toBe(200)
    expect(b.json.transactionId).toBe(a.json.transactionId)
    const gql = await env.graphql(`mutation($i: BroadcastTransactionInput!) { broadcastTransaction(input: $i) { id } }`, { i: body })
    expect(gql.json.data.broadcastTransaction.id).toBe(a.json.transactionId)
    const conflict = await env.post('/broadcast_transaction', { ...body, value: '43' })
    expect(conflict.status).toBe(409)
    expect(conflict.json.error).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', field: 'idempotencyKey' })
    await waitForStatus(env, a.json.transactionId, 'CONFIRMED')
    const { json } = await env.graphql(`{ transactions { edges { node { id } } } }`)
    expect(json.data.transactions.edges).toHaveLength(1)
    // A retry after the request's deadline, of a request stored before it (its answer lost): that transaction, not
    // 400 VALID_UNTIL_PASSED (which told the client nothing was stored). A new key past its deadline is refused.
    const timed = { to: RECIPIENT, value: '44', idempotencyKey: 'order-44', validUntil: new Date(Date.now() + 1_000).toISOString() }
    const first = await env.post('/broadcast_transaction', timed)
    expect(first.status).toBe(200)
    await new Promise((r) => setTimeout(r, 1_200))
    const again = await env.post('/broadcast_transaction', timed)
    expect([again.status, again.json.transactionId]).toEqual([200, first.json.transactionId])
    const againGql = await env.graphql(`mutation($i: BroadcastTransactionInput!) { broadcastTransaction(input: $i) { id } }`, { i: timed })
    expect(againGql.json.data?.broadcastTransaction?.id).toBe(first.json.transactionId)
    expect((await env.post('/broadcast_transaction', { ...timed, value: '45' })).json.error.code).toBe('IDEMPOTENCY_CONFLICT')
    const fresh = await env.post('/broadcast_transaction', { ...timed, idempotencyKey: 'order-46' })
    expect([fresh.status, fresh.json.error?.code]).toEqual([400, 'VALID_UNTIL_PASSED'])
  })

  it('validUntil: not sent by the deadline → FAILED EXPIRED; sent but not mined → replaced by a self-transfer, CANCELLED', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].fees = { bumpAfterMs: 500 }) })
    const anvil = chainControl(env)
    // Not sent: the signer cannot pay, so it waits in QUEUED past its deadline.
    await anvil.setBalance(SIGNER.address, 0n)
    const late = await submit(env, { to: RECIPIENT, value: '1', validUntil: new Date(Date.now() + 1500).toISOString() })
    await waitForStatus(env, late, (t) => t.error?.code === 'INSUFFICIENT_FUNDS')
    await new Promise((r) => setTimeout(r, 1600))
    await anvil.setBalance(SIGNER.address, 10n ** 20n)
    const expired = await waitForStatus(env, late, 'FAILED', 20_000)
    expect(expired.error.code).toBe('EXPIRED')
    expect(expired.attempts).toEqual([])
    // A retry would only expire again: refused, naming the deadline (it used to queue an execution that failed at once).
    const retried = await env.graphql(`mutation($id: ID!) { retryTransaction(id: $id) { id } }`, { id: late })
    expect(retried.json.errors[0].extensions).toMatchObject({ code: 'INVALID_STATE', field: 'id' })
    expect(retried.json.errors[0].message).toMatch(/validUntil .* has passed/)
    expect((await getTx(env, late)).execution).toBe(1)

    // Sent, but no block before the deadline: it must not execute late.
    const sent = await submit(env, { to: RECIPIENT, value: '2', validUntil: new Date(Date.now() + 3_000).toISOString() })
    await waitForStatus(env, sent, (t) => t.attempts[0]?.status === 'SENT')
    // Sent, not only stored: a block mined in between would hold the request's own bytes.
    await waitForStatus(env, sent, (t) => t.attempts.some((a: any) => a.purpose === 'CANCEL' && a.status === 'SENT'), 20_000)
    const t = await mineUntil(env, sent, 'CANCELLED')
    expect(t.status).toBe('CANCELLED')
    expect(t.error.code).toBe('EXPIRED')
    const onChain = await env.chain.getTransaction({ hash: t.hash })
    expect(onChain.value).toBe(0n)
    expect(getAddress(onChain.to!)).toBe(SIGNER.address)
  })

  it('validUntil: the replacement goes out as the deadline passes, not a bumpAfterMs later', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].fees = { bumpAfterMs: 60_000 }) })
    const sent = await submit(env, { to: RECIPIENT, value: '3', validUntil: new Date(Date.now() + 3_000).toISOString() })
    await waitForStatus(env, sent, (t) => t.attempts[0]?.status === 'SENT')
    // Before: only once the bump stage took it up, 60 s after its send, during which it could still execute.
    await waitForStatus(env, sent, (t) => t.attempts.some((a: any) => a.purpose === 'CANCEL'), 6_000)
    const t = await mineUntil(env, sent, 'CANCELLED')
    expect(t.error.code).toBe('EXPIRED')
  })

  it('validUntil at the fee cap: no valid cancel fits, it says it may still execute late, and a cancel at the cap takes the nonce once the request is dropped', async () => {
    env = await startTestEnv({
      anvil: { noMining: true },
      // The first attempt is signed at the cap: no replacement (+10 %) fits under it.
      config: (c) => (c.chains[0].fees = { bumpAfterMs: 500, maxFeePerGasCap: '1500000000' }),
    })
    const sent = await submit(env, { to: RECIPIENT, value: '4', validUntil: new Date(Date.now() + 3_000).toISOString() })
    await waitForStatus(env, sent, (t) => t.attempts[0]?.status === 'SENT')
    const flagged = await waitForStatus(env, sent, (t) => t.error?.code === 'EXPIRED', 10_000)
    expect(flagged.status).toBe('PENDING')
    expect(flagged.error.message).toMatch(/no replacement fits under the fee cap .* it may still execute late/)
    expect(flagged.events.some((e: any) => JSON.parse(e.detail ?? '{}').action === 'expired_at_fee_cap')).toBe(true)
    // The node drops the request (a restart, a full pool). Before: its own bytes went out again on every pass, and it
    // ran after its deadline. Now the cancel at the cap, refused while the node held the request, takes the nonce.
    const request = flagged.attempts.find((a: any) => a.purpose === 'REQUEST')
    await waitForStatus(env, sent, (t) => t.attempts.some((a: any) => a.purpose === 'CANCEL'), 10_000)
    await chainControl(env).drop(request.hash)
    await new Promise((r) => setTimeout(r, 1_500)) // a bump pass or two: the cancel is sent again
    const done = await mineUntil(env, sent, 'CANCELLED')
    expect([done.status, done.error.code]).toEqual(['CANCELLED', 'EXPIRED'])
    const onChain = await env.chain.getTransaction({ hash: done.hash })
    expect([onChain.value, getAddress(onChain.to!)]).toEqual([0n, SIGNER.address])
  })

  it('a cancel while every provider is down says why (UNAVAILABLE) and changes nothing; once they answer, it goes through', async () => {
    let proxy: FaultProxy | undefined
    ;({ env, proxy } = await startBehindFaultProxy({ noMining: true }, undefined, 'p'))
    try {
      const id = await submit(env, { to: RECIPIENT, value: '999001' })
      await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
      proxy!.setMode('http500')
      const cancel = () => env!.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { status error { code } } }`, { id })
      // Before: INTERNAL "Unexpected error." with no detail.
      const down = await cancel()
      expect(down.json.errors?.[0]?.extensions).toMatchObject({ code: 'UNAVAILABLE', field: 'id' })
      expect(down.json.errors[0].message).toMatch(/^The cancel could not be made, nothing changed: the fee market of chain 31337 could not be read \(.*500/)
      const unchanged = await getTx(env, id)
      expect([unchanged.attempts.length, unchanged.error]).toEqual([1, null])
      proxy!.setMode('ok')
      const up = await cancel()
      expect(up.json.data?.cancelTransaction).toEqual({ status: 'PENDING', error: { code: 'CANCELLED' } })
      expect((await mineUntil(env, id, 'CANCELLED')).status).toBe('CANCELLED')
    } finally {
      await proxy?.stop()
    }
  })

  it('validUntil passing while its gas is estimated: FAILED EXPIRED with no nonce, never sent (it was signed, sent and ran late)', async () => {
    let proxy: FaultProxy | undefined
    ;({ env, proxy } = await startBehindFaultProxy({ blockTimeSec: 0.2 }, (c) => (c.chains[0].rpc = { timeoutMs: 10_000 }), 'p'))
    try {
      // A slow estimate (a busy provider): the deadline passes after the batch was planned, before it is signed.
      proxy!.setMode('slow', { slowMethods: ['eth_estimateGas'], slowMs: 3_000 })
      const id = await submit(env, { to: RECIPIENT, value: '777002', validUntil: new Date(Date.now() + 1_500).toISOString() })
      const t = await waitForStatus(env, id, 'FAILED', 20_000)
      expect([t.error.code, t.nonce, t.attempts]).toEqual(['EXPIRED', null, []])
      expect(t.error.message).toMatch(/^validUntil .* passed before it was sent$/)
      await new Promise((r) => setTimeout(r, 1_000))
      expect(await transactionsFrom(env.chain, SIGNER.address)).toEqual([])
    } finally {
      await proxy?.stop()
    }
  })

  it('cancel and retry while the sign stage is estimating the request: it runs once, as the new execution, and confirms', async () => {
    let proxy: FaultProxy | undefined
    ;({ env, proxy } = await startBehindFaultProxy({ blockTimeSec: 0.5 }, undefined, 'p'))
    try {
      // A slow estimate (a busy provider, a big batch): the sign stage holds the row as it read it meanwhile.
      proxy!.setMode('slow', { slowMethods: ['eth_estimateGas'], slowMs: 2_500 })
      const id = await submit(env, { to: RECIPIENT, value: '777001' })
      await new Promise((r) => setTimeout(r, 500))
      const cancelled = await env.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { status } }`, { id })
      expect(cancelled.json.data.cancelTransaction.status).toBe('FAILED')
      const retried = await env.graphql(`mutation($id: ID!) { retryTransaction(id: $id) { status execution } }`, { id })
      expect(retried.json.data.retryTransaction).toEqual({ status: 'QUEUED', execution: 2 })
      await new Promise((r) => setTimeout(r, 3_000))
      proxy!.setMode('ok')
      // Before: signed from the row as first read (execution 1), it mined unseen, was then failed as "refused as
      // invalid", and a second retry ran it again.
      const done = await waitForStatus(env, id, (t) => t.status === 'CONFIRMED' || t.status === 'FAILED', 30_000)
      expect(done.status).toBe('CONFIRMED')
      expect(done.execution).toBe(2)
      expect((await transactionsFrom(env.chain, SIGNER.address)).filter((t) => t.value === 777001n)).toHaveLength(1)
    } finally {
      await proxy?.stop()
    }
  })

  it('a cancel of a request already mined (its receipt not read yet) does not show as CANCELLED while it is INCLUDED', async () => {
    let proxy: FaultProxy | undefined
    env = await startTestEnv({
      anvil: { noMining: true },
      setup: async (anvil) => {
        proxy = await startFaultProxy(anvil.url)
      },
      config: (c) => {
        c.chains[0].providers = [{ name: 'p', url: proxy!.url }]
        c.chains[0].confirmations = 3
      },
    })
    try {
      const anvil = chainControl(env)
      const id = await submit(env, { to: RECIPIENT, value: '888001' })
      await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
      // Mined, but the watcher cannot read the receipt yet: the admin still sees it PENDING and cancels it.
      proxy!.setMode('methodError', { errorMethods: ['eth_getTransactionReceipt', 'eth_getBlockReceipts'] })
      await anvil.mine(1)
      const cancelled = await env.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { status error { code } } }`, { id })
      expect(cancelled.json.data.cancelTransaction.error.code).toBe('CANCELLED')
      proxy!.setMode('ok')
      await anvil.mine(1)
      const included = await waitForStatus(env, id, (t) => t.status !== 'PENDING', 15_000)
      // Before: INCLUDED with error CANCELLED "cancelled by an admin", though the request itself had mined.
      expect(included.status).toBe('INCLUDED')
      expect(included.error).toBeNull()
      await anvil.mine(4)
      const done = await waitForStatus(env, id, 'CONFIRMED', 15_000)
      expect(done.error).toBeNull()
      expect((await transactionsFrom(env.chain, SIGNER.address)).filter((t) => t.value === 888001n)).toHaveLength(1)
    } finally {
      await proxy?.stop()
    }
  })
  it('retry checks what it can do before it answers: a REVERTED row off the chain, a signer gone, a filler (nor is it cancelled)', async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.2 } })
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      const anvil = chainControl(env)
      await anvil.setCode(TARGET, REVERTING_CODE)
      const retry = (id: string) => env!.graphql(`mutation($id: ID!) { retryTransaction(id: $id) { status execution } }`, { id })

      // REVERTED in a block that a reorg deeper than the confirmation depth replaced (the watcher has not settled it
      // again yet): its bytes may be mined again and succeed; a retry then ran the request twice.
      const reverted = await submit(env, { to: TARGET, data: '0xabcdef01', gasLimit: '100000' })
      const row = await waitForStatus(env, reverted, 'REVERTED')
      await sql`UPDATE transactions SET block_hash = ${'0x' + 'ee'.repeat(32)} WHERE id = ${reverted}`
      const refused = await retry(reverted)
      expect(refused.json.errors[0].extensions.code).toBe('NOT_YET')
      expect(refused.json.errors[0].message).toMatch(/no longer the chain's/)
      expect((await getTx(env, reverted)).status).toBe('REVERTED')
      await sql`UPDATE transactions SET block_hash = ${row.blockHash} WHERE id = ${reverted}`
      expect((await retry(reverted)).json.data.retryTransaction).toEqual({ status: 'QUEUED', execution: 2 })

      // FAILED under a signer this instance no longer has (a key rotated out): it stayed QUEUED for ever after a
      // successful answer. One that named no signer goes to a configured one; one that named its signer is refused.
      const gone = '0x000000000000000000000000000000000000dEaD'
      const failed = [await submit(env, { to: TARGET, data: '0xabcdef02' }), await submit(env, { to: TARGET, data: '0xabcdef03' })]
      for (const id of failed) await waitForStatus(env, id, 'FAILED')
      await sql`UPDATE transactions SET signer = ${gone}, signer_pinned = (id = ${failed[1]!}) WHERE id IN ${sql(failed)}`
      await anvil.setCode(TARGET, '0x00')
      expect((await retry(failed[0]!)).json.data.retryTransaction.status).toBe('QUEUED')
      const moved = await waitForStatus(env, failed[0]!, 'CONFIRMED')
      expect(getAddress((await env.chain.getTransaction({ hash: moved.hash })).from)).toBe(SIGNER.address)
      const pinned = await retry(failed[1]!)
      expect(pinned.json.errors[0].extensions.code).toBe('UNKNOWN_SIGNER')
      expect(pinned.json.errors[0].message).toContain(gone)
      expect((await getTx(env, failed[1]!)).status).toBe('FAILED')

      // A filler is not a request: the admin is told so, not that FAILED cannot be retried.
      await sql`UPDATE transactions SET kind = 'FILLER', signer = ${SIGNER.address} WHERE id = ${failed[1]!}`
      expect((await retry(failed[1]!)).json.errors[0].message).toMatch(/filler/)
      const cancel = await env.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { status } }`, { id: failed[1] })
      expect(cancel.json.errors[0].message).toMatch(/filler/)
    } finally {
      await sql.end()
    }
  })
})
