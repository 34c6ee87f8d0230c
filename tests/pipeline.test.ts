import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getAddress } from 'viem'
import { RECIPIENT, SIGNER, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'
import { REVERTING_CODE } from './helpers/chainControl.ts'

const REVERTER = '0x00000000000000000000000000000000000b0b00'

const TX_FIELDS = 'id status chainId from to value nonce hash blockNumber error { code message } attempts { hash nonce sentAt providers { name outcome } }'

describe('accept → sign → broadcast → confirm, on a real anvil and Postgres', () => {
  let env: TestEnv
  beforeAll(async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.2 } })
  })
  afterAll(async () => {
    await env?.stop()
  })

  async function status(id: string) {
    const { json } = await env.graphql(`query($id: ID!) { transaction(id: $id) { ${TX_FIELDS} } }`, { id })
    return json.data.transaction
  }

  it('confirms 50 concurrent requests (half GraphQL, half REST) with nonces 0..49 each used once on chain', async () => {
    const requests = Array.from({ length: 50 }, (_, i) => {
      const value = String(1000 + i)
      if (i % 2 === 0)
        return env
          .graphql(`mutation($input: BroadcastTransactionInput!) { broadcastTransaction(input: $input) { id status } }`, {
            input: { to: RECIPIENT.toLowerCase(), value },
          })
          .then((r) => {
            expect(r.json.errors).toBeUndefined()
            expect(r.json.data.broadcastTransaction.status).toBe('QUEUED')
            return { id: r.json.data.broadcastTransaction.id as string, value }
          })
      return env.post('/broadcast_transaction', { to: RECIPIENT, value }).then((r) => {
        expect(r.status).toBe(200)
        expect(r.json.status).toBe('QUEUED')
        return { id: r.json.transactionId as string, value }
      })
    })
    const accepted = await Promise.all(requests)
    expect(new Set(accepted.map((a) => a.id)).size).toBe(50)

    const final = await waitFor(
      'all 50 CONFIRMED',
      async () => {
        const all = await Promise.all(accepted.map((a) => status(a.id)))
        return all.every((t) => t.status === 'CONFIRMED') && all
      },
      60_000,
      250,
    )

    // Check against the chain, not only the database.
    const onChain = await Promise.all(final.map((t: any) => env.chain.getTransaction({ hash: t.hash })))
    const nonces = onChain.map((tx) => tx.nonce).sort((a, b) => a - b)
    expect(nonces).toEqual(Array.from({ length: 50 }, (_, i) => i))
    for (const [i, tx] of onChain.entries()) {
      expect(getAddress(tx.from)).toBe(SIGNER.address)
      expect(getAddress(tx.to!)).toBe(RECIPIENT)
      expect(tx.value.toString()).toBe(accepted[i]!.value)
    }
    expect(await env.chain.getTransactionCount({ address: SIGNER.address })).toBe(50)
    const receipts = await Promise.all(final.map((t: any) => env.chain.getTransactionReceipt({ hash: t.hash })))
    expect(receipts.every((r) => r.status === 'success')).toBe(true)
    // The API reports what the chain holds.
    for (const [i, t] of final.entries()) {
      expect(t.blockNumber).toBe(receipts[i]!.blockNumber.toString())
      expect(t.from).toBe(SIGNER.address)
      expect(t.attempts[0].providers[0]).toEqual({ name: 'anvil', outcome: 'sent' })
    }
  })

  it('fails a transaction whose gas estimation reverts, with the reason, and gives its nonce to the next one', async () => {
    await env.anvil.process.pid // keep anvil referenced
    await env.chain.request({ method: 'anvil_setCode' as any, params: [REVERTER, REVERTING_CODE] as any })
    const before = await env.chain.getTransactionCount({ address: SIGNER.address })
    const bad = await env.post('/broadcast_transaction', { to: REVERTER, data: '0x12345678' })
    expect(bad.status).toBe(200)
    const good = await env.post('/broadcast_transaction', { to: RECIPIENT, value: '7' })
    const failed = await waitFor('FAILED', async () => {
      const t = await status(bad.json.transactionId)
      return t.status === 'FAILED' && t
    })
    expect(failed.error).toEqual({ code: 'GAS_ESTIMATION_REVERTED', message: 'execution reverted: nope' })
    expect(failed.nonce).toBeNull()
    expect(failed.attempts).toEqual([])
    const confirmed = await waitFor('CONFIRMED', async () => {
      const t = await status(good.json.transactionId)
      return t.status === 'CONFIRMED' && t
    })
    expect(confirmed.nonce).toBe(String(before))
    const onChain = await env.chain.getTransaction({ hash: confirmed.hash })
    expect(onChain.nonce).toBe(before)

    const rest = await env.get(`/transactions/${bad.json.transactionId}`)
    expect(rest.status).toBe(200)
    expect(rest.json.status).toBe('FAILED')
    expect(rest.json.error.code).toBe('GAS_ESTIMATION_REVERTED')
    expect(rest.json.events.map((e: any) => e.toStatus)).toEqual(['QUEUED', 'FAILED'])
  })

  it('a call that reverts on chain (gas given, so no estimate) ends REVERTED with its receipt and its reason, and its timeline passes INCLUDED', async () => {
    await env.chain.request({ method: 'anvil_setCode' as any, params: [REVERTER, REVERTING_CODE] as any })
    const sent = await env.post('/broadcast_transaction', { to: REVERTER, data: '0x12345678', gasLimit: '100000' })
    expect(sent.status).toBe(200)
    const reverted = await waitFor('REVERTED, with its reason', async () => {
      const t = await status(sent.json.transactionId)
      return (['CONFIRMED', 'FAILED'].includes(t.status) || (t.status === 'REVERTED' && t.error?.message !== 'mined with status 0 (reverted)')) && t
    })
    expect(reverted.status).toBe('REVERTED')
    // The receipt says only "status 0"; the reason comes from replaying the call at its block. Before: that plain message.
    expect(reverted.error).toEqual({ code: 'EXECUTION_REVERTED', message: 'execution reverted: nope' })
    const receipt = await env.chain.getTransactionReceipt({ hash: reverted.hash })
    expect(receipt.status).toBe('reverted')
    expect(reverted.blockNumber).toBe(receipt.blockNumber.toString())
    const rest = await env.get(`/transactions/${sent.json.transactionId}`)
    expect(rest.json.error).toEqual({ code: 'EXECUTION_REVERTED', message: 'execution reverted: nope' })
    expect(rest.json.events.map((e: any) => [e.fromStatus, e.toStatus])).toEqual([
      [null, 'QUEUED'],
      ['QUEUED', 'PENDING'],
      ['PENDING', 'INCLUDED'],
      ['INCLUDED', 'REVERTED'],
      // The reason, found by the replay after the status was stored: an event of its own, so pages and subscribers hear of it.
      ['REVERTED', 'REVERTED'],
    ])
    expect(rest.json.events.at(-1).detail).toEqual({ revertReason: 'nope' })
  })

  it('finds a transaction by hash and lists newest first with filters and cursors', async () => {
    const { json } = await env.graphql(`{ transactions(first: 2, status: [CONFIRMED]) { edges { cursor node { id status hash } } pageInfo { hasNextPage endCursor } } }`)
    const edges = json.data.transactions.edges
    expect(edges).toHaveLength(2)
    expect(json.data.transactions.pageInfo.hasNextPage).toBe(true)
    const next = await env.graphql(`query($after: String) { transactions(first: 2, status: [CONFIRMED], after: $after) { edges { node { id } } } }`, {
      after: json.data.transactions.pageInfo.endCursor,
    })
    const ids = next.json.data.transactions.edges.map((e: any) => e.node.id)
    expect(ids).toHaveLength(2)
    expect(ids).not.toContain(edges[0].node.id)
    expect(ids).not.toContain(edges[1].node.id)

    const byHash = await env.graphql(`query($h: Hex!) { transactionByHash(hash: $h) { id } }`, { h: edges[0].node.hash })
    expect(byHash.json.data.transactionByHash.id).toBe(edges[0].node.id)
    const failed = await env.graphql(`{ transactions(status: [FAILED]) { edges { node { status error { code } } } } }`)
    expect(failed.json.data.transactions.edges.map((e: any) => e.node.status)).toEqual(['FAILED'])
  })
})

describe('pg-boss jobs sent inside our own transactions (bossDb adapter)', () => {
  it('store their data as an object, not a JSON string, so workers can read it', async () => {
    const env = await startTestEnv()
    try {
      const { bossDb, QUEUE, signJobKey } = await import('../src/jobs/queues.ts')
      const job = { chainId: 31337, signer: SIGNER.address }
      const { sql, } = env.service.ctx.db
      await sql.begin(async (tx) => {
        // A key no drain would use, so no worker takes the job before we read it.
        await env.service.ctx.boss.send(QUEUE.sign, job, { singletonKey: `${signJobKey(job)}:test`, startAfter: 3600, db: bossDb(tx) })
      })
      const rows = await sql`SELECT data FROM pgboss.job WHERE name = ${QUEUE.sign} AND singleton_key = ${`${signJobKey(job)}:test`}`
      expect(rows).toHaveLength(1)
      expect(rows[0]!.data).toEqual(job)
    } finally {
      await env.stop()
    }
  })
})
