import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPublicClient, http, type PublicClient } from 'viem'
import { startAnvil, type Anvil } from '../src/dev/startAnvil.ts'
import { submit } from './helpers/chainControl.ts'
import { RECIPIENT, SIGNER, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

const PER_CHAIN = 20

describe('two chains served by one instance', () => {
  let env: TestEnv
  let second: Anvil
  let chainB: PublicClient
  beforeAll(async () => {
    env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      setup: async () => {
        second = await startAnvil({ chainId: 31338, blockTimeSec: 0.3 })
      },
      config: (c) => {
        c.chains.push({ chainId: 31338, name: 'anvil-b', providers: [{ name: 'anvil-b', url: second.url }], confirmations: 2, blockTimeMs: 300 })
        // The same key on both chains: a nonce sequence per chain.
        c.signers[0].chainIds = [31337, 31338]
      },
    })
    chainB = createPublicClient({ transport: http(second.url) }) as PublicClient
  })
  afterAll(async () => {
    await env?.stop()
    await second?.stop()
  })

  it('confirms each transaction on the chain it names, with independent nonces', async () => {
    const accepted = await Promise.all(
      Array.from({ length: PER_CHAIN * 2 }, async (_, i) => {
        const chainId = i % 2 === 0 ? 31337 : 31338
        const value = String(100 + i)
        return { id: await submit(env, { chainId, to: RECIPIENT, value }), chainId, value }
      }),
    )
    const final = await waitFor(
      'all CONFIRMED',
      async () => {
        const all = await Promise.all(
          accepted.map(async (a) => {
            const { json } = await env.graphql(`query($id: ID!) { transaction(id: $id) { status chainId nonce hash } }`, { id: a.id })
            return { ...a, tx: json.data.transaction }
          }),
        )
        return all.every((a) => a.tx.status === 'CONFIRMED') && all
      },
      60_000,
      250,
    )
    for (const [chainId, client] of [
      [31337, env.chain],
      [31338, chainB],
    ] as const) {
      const mine = final.filter((a) => a.chainId === chainId)
      expect(mine.every((a) => a.tx.chainId === chainId)).toBe(true)
      const onChain = await Promise.all(mine.map((a) => client.getTransaction({ hash: a.tx.hash })))
      expect(onChain.every((tx) => tx.chainId === chainId)).toBe(true)
      expect(onChain.map((tx) => tx.nonce).sort((a, b) => a - b)).toEqual(Array.from({ length: PER_CHAIN }, (_, i) => i))
      onChain.forEach((tx, i) => expect(tx.value.toString()).toBe(mine[i]!.value))
      expect(await client.getTransactionCount({ address: SIGNER.address })).toBe(PER_CHAIN)
    }
    // Nothing of one chain ended up on the other.
    const onA = final.find((a) => a.chainId === 31337)!
    await expect(chainB.getTransaction({ hash: onA.tx.hash })).rejects.toThrow()

    const { json } = await env.graphql(`{ b: transactions(chainId: 31338, first: 100) { edges { node { chainId } } } providers { name chainId status } }`)
    expect(json.data.b.edges).toHaveLength(PER_CHAIN)
    expect(json.data.providers.map((p: any) => [p.name, p.chainId])).toEqual([
      ['anvil', 31337],
      ['anvil-b', 31338],
    ])
  })

  it('needs chainId when several chains are configured', async () => {
    const res = await env.post('/broadcast_transaction', { to: RECIPIENT, value: '1' })
    expect(res.status).toBe(400)
    expect(res.json.error).toMatchObject({ code: 'CHAIN_REQUIRED', field: 'chainId' })
  })
})

describe('start-up with a chain whose providers cannot be reached', () => {
  it('starts anyway: the other chain works at once, and the unreachable one catches up once its provider answers', async () => {
    const { startFaultProxy } = await import('./helpers/faultProxy.ts')
    const { capturedLogger } = await import('./helpers/testService.ts')
    const { log, lines } = capturedLogger('info')
    let second: Anvil | undefined
    let proxy: Awaited<ReturnType<typeof startFaultProxy>> | undefined
    const env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      log,
      setup: async () => {
        second = await startAnvil({ chainId: 31338, blockTimeSec: 0.2 })
        // Every connection to it is cut: an RPC outage at the moment of the (re)start.
        proxy = await startFaultProxy(second.url, 'close')
      },
      config: (c) => {
        c.chains.push({ chainId: 31338, name: 'anvil-b', providers: [{ name: 'b', url: proxy!.url }], confirmations: 1, blockTimeMs: 200, rpc: { downForMs: 500, maxDownForMs: 1000 } })
        c.signers[0].chainIds = [31337, 31338]
      },
    })
    try {
      expect(lines.join('')).toContain('chain 31338 (anvil-b): cannot reach any provider at start-up')
      // The signer's key is anvil's first dev key, whose private key is public: said for the chain that is not a dev chain.
      const warned = lines.map((l) => JSON.parse(l)).filter((l) => /well-known anvil\/hardhat dev key/.test(l.msg))
      expect(warned.map((l) => l.chainId)).toEqual([31338])
      // With the cause: viem's "HTTP request failed." alone did not say what happened to the connection.
      expect(JSON.parse(lines.find((l) => l.includes('cannot reach any provider'))!).providers).toEqual([expect.stringMatching(/^b: HTTP request failed\. \(.+\)$/)])
      const onB = await submit(env, { chainId: 31338, to: RECIPIENT, value: '5' })
      const onA = await submit(env, { chainId: 31337, to: RECIPIENT, value: '6' })
      const status = async (id: string) => (await env.graphql(`query($id: ID!) { transaction(id: $id) { status hash } }`, { id })).json.data.transaction
      await waitFor('chain A confirmed', async () => (await status(onA)).status === 'CONFIRMED', 30_000)
      expect((await status(onB)).status).toBe('QUEUED')
      // /readyz stays 200; the metrics say which provider of which chain is down.
      expect((await fetch(`${env.service.url}/readyz`)).status).toBe(200)
      const metrics = await (await fetch(`${env.service.url}/metrics`)).text()
      expect(metrics).toMatch(/txb_provider_status\{chain_id="31338",provider="b",status="down"\} 1\b/)
      expect(metrics).toMatch(/txb_provider_status\{chain_id="31337",provider="anvil",status="down"\} 0\b/)
      proxy!.setMode('ok')
      const done = await waitFor('chain B confirmed once its provider answers', async () => {
        const t = await status(onB)
        return t.status === 'CONFIRMED' && t
      }, 60_000)
      const chainB = createPublicClient({ transport: http(second!.url) }) as PublicClient
      expect((await chainB.getTransaction({ hash: done.hash })).value).toBe(5n)
    } finally {
      await env.stop()
      await proxy?.stop()
      await second?.stop()
    }
  }, 120_000)

  it('a chain without a base fee configured for EIP-1559 fees refuses the start, naming fees.model', async () => {
    let legacy: Anvil | undefined
    const failed = await startTestEnv({
      setup: async () => {
        legacy = await startAnvil({ chainId: 31339, extraArgs: ['--hardfork', 'berlin'] })
      },
      config: (c) => {
        c.chains.push({ chainId: 31339, name: 'old', providers: [{ name: 'old', url: legacy!.url }], confirmations: 1, blockTimeMs: 200 })
        c.signers[0].chainIds = [31337, 31339]
      },
    }).catch((e: Error) => e)
    await legacy?.stop()
    expect((failed as Error).message).toMatch(/chain 31339 \(old\): its blocks have no base fee .* set chains\[\]\.fees\.model to "legacy"/)
  })
})
