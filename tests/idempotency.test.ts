import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { acceptTransaction } from '../src/accept/acceptTransaction.ts'
import { validateBroadcastRequest } from '../src/accept/validateBroadcastRequest.ts'
import { createLogger } from '../src/common/logger.ts'
import { ANVIL_DEV_ACCOUNTS, startAnvil } from '../src/dev/startAnvil.ts'
import { startService } from '../src/service.ts'
import { ADMIN_KEY, RECIPIENT, SIGNER, startTestEnv, testConfig, type TestEnv } from './helpers/testService.ts'

/** A service started again on the test's database, with its config changed (the first one stopped). */
function restartOn(databaseUrl: string, providerUrl: string, configure: Parameters<typeof testConfig>[1]) {
  return startService({
    config: testConfig(providerUrl, configure),
    databaseUrl,
    port: 0,
    host: '127.0.0.1',
    log: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false }),
  })
}

/** POST /broadcast_transaction to a service started apart (after a restart), with the admin key. */
async function postBroadcast(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}/broadcast_transaction`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
    body: JSON.stringify(body),
  })
  return { status: res.status, json: await res.json() }
}

describe('idempotency keys under concurrent commits', () => {
  let env: TestEnv | undefined
  afterEach(async () => {
    await env?.stop()
    env = undefined
  })

  it('a batch that deadlocks with another commit taking the same keys in the other order is committed again: each request is answered with its one row', async () => {
    env = await startTestEnv()
    const ctx = env.service.ctx
    const sql = postgres(env.databaseUrl, { max: 2, onnotice: () => {} })
    try {
      const fields = { to: RECIPIENT, value: '5', gasLimit: '21000' }
      const stored = new Map<string, string>()
      /** The row another instance's batch stores for `key`: the same request, as a client resending it to both would make. */
      const insert = async (tx: postgres.TransactionSql, key: string) => {
        const id = randomUUID()
        stored.set(key, id)
        await tx`
          INSERT INTO transactions (id, chain_id, signer, signer_pinned, "to", data, value, gas_limit, api_key_name, idempotency_key)
          VALUES (${id}, 31337, ${SIGNER.address}, false, ${RECIPIENT}, '0x', 5, 21000, 'test-admin', ${key})`
      }
      // The other commit takes k2 first and holds it uncommitted; it takes k1 once this service's batch waits on k2.
      let takeK1!: () => void
      const ourBatchWaits = new Promise<void>((resolve) => (takeK1 = resolve))
      let tookK2!: () => void
      const k2Taken = new Promise<void>((resolve) => (tookK2 = resolve))
      const other = sql.begin(async (tx) => {
        await insert(tx, 'k2')
        tookK2()
        await ourBatchWaits
        await insert(tx, 'k1')
      })
      await k2Taken
      // One batch (both in the same tick): it stores k1, then waits for the other commit's k2.
      const ours = Promise.allSettled(['k1', 'k2'].map((key) => acceptTransaction(ctx, validateBroadcastRequest({ ...fields, idempotencyKey: key }, ctx.config), 'test-admin')))
      // Well under Postgres's deadlock_timeout (1 s): our batch, waiting longer, is the one that finds the deadlock and is aborted.
      await new Promise((r) => setTimeout(r, 300))
      takeK1()
      await other
      const answers = await ours
      // Before: Postgres's "deadlock detected" answered both requests as a 500, though both are stored (by the other commit).
      expect(answers.map((a) => (a.status === 'fulfilled' ? { id: a.value.transaction.id, created: a.value.created } : String(a.reason)))).toEqual([
        { id: stored.get('k1'), created: false },
        { id: stored.get('k2'), created: false },
      ])
      const rows = await sql<{ id: string }[]>`SELECT id FROM transactions WHERE idempotency_key IN ('k1', 'k2') ORDER BY idempotency_key`
      expect(rows.map((r) => r.id)).toEqual([stored.get('k1'), stored.get('k2')])
    } finally {
      await sql.end()
    }
  })

  it('a retry of a stored request is answered with it after the config changed to refuse it (policy, signer): not refused as never stored', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].policy = { maxValue: '10' }) })
    const request = { to: RECIPIENT, value: '5', from: SIGNER.address, idempotencyKey: 'order-42' }
    const first = await env.post('/broadcast_transaction', request)
    expect(first.status).toBe(200)
    // Its answer lost, the client retries, after the operator lowered maxValue and rotated the signer out.
    await env.service.stop()
    const restarted = await restartOn(env.databaseUrl, env.anvil.url, (c) => {
      c.chains[0].policy = { maxValue: '1' }
      c.signers = [{ name: 'anvil-1', chainIds: [31337], privateKey: ANVIL_DEV_ACCOUNTS[1].privateKey }]
    })
    try {
      const post = (body: unknown) => postBroadcast(restarted.url, body)
      // Before: 400 VALUE_TOO_HIGH, which tells the client it was never stored, though it may run.
      const retry = await post(request)
      expect(retry).toMatchObject({ status: 200, json: { transactionId: first.json.transactionId } })
      // A new request is refused as before, by the policy and for its signer.
      expect((await post({ ...request, idempotencyKey: 'order-43' })).json.error.code).toBe('VALUE_TOO_HIGH')
      expect((await post({ ...request, value: '1', idempotencyKey: 'order-44' })).json.error.code).toBe('UNKNOWN_SIGNER')
      // The same key with other fields is still a conflict.
      expect((await post({ ...request, value: '6' })).status).toBe(409)
    } finally {
      await restarted.stop()
    }
  })

  it('a retry of a stored request is answered with it after a second chain was added (it names none) or the gas floor turned on: not refused as never stored', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].calldataFloor = false) })
    // Named no chain: the one chain served then. 4 non-zero calldata bytes: 21064 gas without the calldata floor.
    const noChain = { to: RECIPIENT, value: '5', idempotencyKey: 'order-no-chain' }
    const underFloor = { chainId: 31337, to: RECIPIENT, data: '0x12345678', gasLimit: '21064', idempotencyKey: 'order-under-floor' }
    const first = [await env.post('/broadcast_transaction', noChain), await env.post('/broadcast_transaction', underFloor)]
    expect(first.map((r) => r.status)).toEqual([200, 200])
    // Their answers lost, the client retries after the operator added a chain and turned the calldata floor on.
    await env.service.stop()
    const second = await startAnvil({ chainId: 31338, noMining: true })
    const restarted = await restartOn(env.databaseUrl, env.anvil.url, (c) => {
      c.chains[0].calldataFloor = true
      c.chains.push({ chainId: 31338, name: 'anvil-b', providers: [{ name: 'anvil-b', url: second.url }], confirmations: 2, blockTimeMs: 1000 })
      c.signers[0].chainIds = [31337, 31338]
    })
    try {
      const post = (body: unknown) => postBroadcast(restarted.url, body)
      // Before: 400 CHAIN_REQUIRED and 400 VALUE_OUT_OF_RANGE, which tell the client they were never stored.
      expect(await post(noChain)).toMatchObject({ status: 200, json: { transactionId: first[0]!.json.transactionId } })
      expect(await post(underFloor)).toMatchObject({ status: 200, json: { transactionId: first[1]!.json.transactionId } })
      // So over GraphQL.
      const res = await fetch(`${restarted.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
        body: JSON.stringify({ query: `mutation($input: BroadcastTransactionInput!) { broadcastTransaction(input: $input) { id } }`, variables: { input: noChain } }),
      })
      expect(await res.json()).toEqual({ data: { broadcastTransaction: { id: first[0]!.json.transactionId } } })
      // New requests are refused as the config says now.
      expect(await post({ ...noChain, idempotencyKey: 'order-no-chain-2' })).toMatchObject({ status: 400, json: { error: { code: 'CHAIN_REQUIRED', field: 'chainId' } } })
      expect(await post({ ...underFloor, idempotencyKey: 'order-under-floor-2' })).toMatchObject({ status: 400, json: { error: { code: 'VALUE_OUT_OF_RANGE', field: 'gasLimit' } } })
      expect(await post({ ...noChain, chainId: 5, idempotencyKey: 'order-unknown-chain' })).toMatchObject({ status: 400, json: { error: { code: 'UNKNOWN_CHAIN' } } })
      // The same key with other fields, or naming the other chain, is still a conflict.
      expect((await post({ ...noChain, value: '6' })).status).toBe(409)
      expect((await post({ ...noChain, chainId: 31338 })).status).toBe(409)
    } finally {
      await restarted.stop()
      await second.stop()
    }
  })

  it('a retry naming no chain is answered with the stored request after the only chain was replaced by another', async () => {
    env = await startTestEnv({ anvil: { noMining: true } })
    const noChain = { to: RECIPIENT, value: '5', idempotencyKey: 'order-only-chain' }
    const first = await env.post('/broadcast_transaction', noChain)
    expect(first.status).toBe(200)
    await env.service.stop()
    const other = await startAnvil({ chainId: 31338, noMining: true })
    const restarted = await restartOn(env.databaseUrl, other.url, (c) => {
      c.chains = [{ chainId: 31338, name: 'anvil-b', providers: [{ name: 'anvil-b', url: other.url }], confirmations: 2, blockTimeMs: 1000 }]
      c.signers[0].chainIds = [31338]
    })
    try {
      // Before: 409 IDEMPOTENCY_CONFLICT (taken as naming the new chain), though every field is the same.
      expect(await postBroadcast(restarted.url, noChain)).toMatchObject({ status: 200, json: { transactionId: first.json.transactionId } })
    } finally {
      await restarted.stop()
      await other.stop()
    }
  })
})
