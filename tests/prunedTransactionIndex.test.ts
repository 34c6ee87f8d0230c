/**
 * Nodes keep an index of transactions by hash for a limited history (geth's `--history.transactions`, Nethermind's
 * TxLookupLimit, pruned Erigon and reth): past it, a mined transaction's receipt and the transaction itself are
 * `null` by hash, while its block still holds it. After a long stop or a restore from a backup, a PENDING row of
 * ours can be such a transaction: "no provider knows its hash" is then no proof that it did not run.
 */
import postgres from 'postgres'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { submit, transactionsFrom, waitForStatus } from './helpers/chainControl.ts'
import { startRewritingProxy } from './helpers/rewritingProxy.ts'
import { SIGNER, startTestEnv, type TestEnv } from './helpers/testService.ts'
import { clearMinedColumns } from '../src/store/minedColumns.ts'

describe('a provider that no longer finds old transactions by hash', () => {
  let env: TestEnv | undefined
  let proxy: Awaited<ReturnType<typeof startRewritingProxy>> | undefined
  afterEach(async () => {
    await env?.stop()
    await proxy?.stop()
    env = proxy = undefined
  })

  it('a request whose attempt is mined but unfound by hash is not signed again by the reconciler, nor retried by an admin (it ran twice)', async () => {
    const hidden = new Set<string>()
    const byHash = new Set(['eth_getTransactionReceipt', 'eth_getTransactionByHash'])
    env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      setup: async (a) => {
        proxy = await startRewritingProxy(a.url, {
          answer: (c, answer) => (byHash.has(c.method) && hidden.has(String(c.params?.[0]).toLowerCase()) ? { ...answer, result: null } : answer),
        })
      },
      config: (c) => (c.chains[0].providers = [{ name: 'pruned', url: proxy!.url }]),
    })
    const recipient = privateKeyToAccount(generatePrivateKey()).address
    const id = await submit(env, { to: recipient, value: '4242' })
    const done = await waitForStatus(env, id, 'CONFIRMED')
    // As a restored database has it: PENDING at its nonce with its attempt, the watcher long past its block. Its hash
    // is past the node's index.
    hidden.add((done.hash as Hex).toLowerCase())
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      await sql.begin(async (tx) => {
        await tx`UPDATE transactions SET status = 'PENDING', final_at = NULL, ${clearMinedColumns(sql)} WHERE id = ${id}`
        await tx`UPDATE attempts SET status = 'SENT' WHERE transaction_id = ${id}`
      })
      // The reconciler looks every second (blockTimeMs 200), and acts on what it sees on two passes in a row: before,
      // the request was queued again and sent at the next nonce within about five seconds.
      await new Promise((r) => setTimeout(r, 10_000))
      const [row] = await sql<{ status: string; execution: number }[]>`SELECT status, execution FROM transactions WHERE id = ${id}`
      expect(row).toEqual({ status: 'PENDING', execution: 1 })
      const paid = (await transactionsFrom(env.chain, SIGNER.address)).filter((t) => t.to?.toLowerCase() === recipient.toLowerCase())
      expect(paid).toHaveLength(1)
      expect(await env.chain.getBalance({ address: recipient })).toBe(4242n)

      // Failed after it was signed (every provider refused it), as far as this database knows: an admin's retry
      // looks at what was mined at its nonce. Before: no provider knew the hash, so it was retried, and ran again.
      await sql`UPDATE transactions SET status = 'FAILED', nonce = NULL, error_code = 'SEND_REFUSED', error_message = 'refused', final_at = now() WHERE id = ${id}`
      const retried = await env.graphql(`mutation($id: ID!) { retryTransaction(id: $id) { status execution } }`, { id })
      expect(retried.json.errors?.[0]?.extensions?.code).toBe('INVALID_STATE')
      expect(retried.json.errors[0].message).toContain(`its signed attempt ${done.hash} was mined`)
    } finally {
      await sql.end()
    }
  })
})
