import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { formatEther, parseTransaction, type Hex } from 'viem'
import { chainControl, getTx, mineUntil, submit, waitForStatus } from './helpers/chainControl.ts'
import { startRewritingProxy } from './helpers/rewritingProxy.ts'
import { RECIPIENT, startTestEnv, type TestEnv } from './helpers/testService.ts'

const GWEI = 1_000_000_000n
/** The node's cap on a transaction's whole fee (geth's rpc.txfeecap), here 0.001 coin. */
const NODE_CAP = 1_000_000_000_000_000n

describe('a node that caps a transaction\'s whole fee (geth\'s rpc.txfeecap)', () => {
  let env: TestEnv | undefined
  afterEach(async () => {
    await env?.stop()
    env = undefined
  })

  let node: Awaited<ReturnType<typeof startRewritingProxy>> | undefined
  let db: postgres.Sql | undefined
  afterEach(async () => {
    await db?.end()
    await node?.stop()
    db = node = undefined
  })

  /**
   * A service whose only provider refuses, in geth's words, any transaction whose gas limit × max fee is over its
   * cap; and a request of 500000 gas sent at a 1 gwei base fee. 2 × 1 gwei + a 1 gwei tip is 3 gwei; its cap is
   * 0.001 coin / 500000 gas = 2 gwei.
   */
  async function sentUnderNodeCap() {
    env = await startTestEnv({
      anvil: { noMining: true },
      setup: async (a) => {
        node = await startRewritingProxy(a.url, {
          refuse: (c) => {
            if (c.method !== 'eth_sendRawTransaction') return null
            const tx = parseTransaction(c.params![0] as Hex)
            const fee = tx.gas! * (tx.maxFeePerGas ?? tx.gasPrice!)
            return fee > NODE_CAP ? `tx fee (${Number(formatEther(fee)).toFixed(2)} ether) exceeds the configured cap (${Number(formatEther(NODE_CAP)).toFixed(2)} ether)` : null
          },
        })
      },
      config: (c) => {
        c.chains[0].providers = [{ name: 'capped', url: node!.url }]
        c.chains[0].fees = { bumpAfterMs: 1000, maxTxFeeWei: NODE_CAP.toString() }
      },
    })
    db = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    const anvil = chainControl(env)
    await anvil.setNextBaseFee(GWEI)
    await anvil.mine()
    const id = await submit(env, { to: RECIPIENT, data: '0xc0ffee', gasLimit: '500000' })
    // Before: this first attempt (3 gwei × 500000 gas) was refused in words the service does not act on, and
    // the transaction never went out.
    const sent = await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT', 15_000)
    expect(BigInt(sent.attempts[0].maxFeePerGas)).toBe(2n * GWEI)
    // Over the market it can pay: not flagged.
    expect(sent.atFeeCap).toBe(false)
    // The base fee passes its cap: a raise would be refused, so the same bytes go out and it says it is stuck.
    // Before: raised to 7 gwei, refused, and never flagged.
    await anvil.setNextBaseFee(3n * GWEI)
    await anvil.mine()
    const capped = await waitForStatus(env, id, (t) => t.atFeeCap === true, 15_000)
    const events = capped.events.map((e: any) => JSON.parse(e.detail ?? '{}')).filter((d: any) => d.action === 'at_fee_cap')
    expect(events).toEqual([{ action: 'at_fee_cap', cap: (2n * GWEI).toString() }])
    return { id, anvil }
  }

  const everyAttemptUnderNodeCap = async (id: string) => {
    const attempts = await db!<{ gas_limit: string; max_fee_per_gas: string }[]>`
      SELECT gas_limit::text, max_fee_per_gas::text FROM attempts WHERE transaction_id = ${id}`
    expect(attempts.length).toBeGreaterThanOrEqual(1)
    for (const a of attempts) expect(BigInt(a.gas_limit) * BigInt(a.max_fee_per_gas)).toBeLessThanOrEqual(NODE_CAP)
    expect(node!.refused()).toBe(0)
  }

  it('a transaction with much gas is signed and raised only up to maxTxFeeWei / gas, and shows atFeeCap there', async () => {
    const { id, anvil } = await sentUnderNodeCap()
    await everyAttemptUnderNodeCap(id)
    // Fees fall: it is mined with the bytes at its cap.
    await anvil.setNextBaseFee(GWEI)
    const done = await mineUntil(env!, id, 'CONFIRMED', { maxBlocks: 30, everyMs: 300 })
    expect(done.status).toBe('CONFIRMED')
    expect((await env!.chain.getTransactionReceipt({ hash: done.hash })).status).toBe('success')
    expect((await getTx(env!, id)).attempts).toHaveLength(1)
    await everyAttemptUnderNodeCap(id)
  })

  it('its cancel (21000 gas, a far higher cap) is raised past the request\'s cap, and it no longer shows atFeeCap', async () => {
    const { id, anvil } = await sentUnderNodeCap()
    const cancelled = await env!.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { id atFeeCap } }`, { id })
    expect(cancelled.json.errors).toBeUndefined()
    // Before: still flagged at the request's cap, though the cancel was raised to today's market.
    expect(cancelled.json.data.cancelTransaction.atFeeCap).toBe(false)
    const t = await waitForStatus(env!, id, (t) => t.attempts.some((a: any) => a.purpose === 'CANCEL' && a.status === 'SENT'))
    expect(BigInt(t.attempts.find((a: any) => a.purpose === 'CANCEL').maxFeePerGas)).toBeGreaterThan(3n * GWEI)
    const done = await mineUntil(env!, id, 'CANCELLED', { maxBlocks: 10, everyMs: 300 })
    expect([done.status, done.atFeeCap]).toEqual(['CANCELLED', false])
    await everyAttemptUnderNodeCap(id)
  })
})
