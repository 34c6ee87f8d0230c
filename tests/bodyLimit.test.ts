import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Hex } from 'viem'
import { getTx, submit, transactionsFrom } from './helpers/chainControl.ts'
import { startFaultProxy, type FaultProxy } from './helpers/faultProxy.ts'
import { RECIPIENT, SIGNER, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

/** The node's request body limit: geth's and besu's default is 5 MiB; smaller here, so a few dozen requests cross it. */
const BODY_LIMIT_BYTES = 1.5 * 1024 * 1024
/** Calldata per request: 120 KB of hex in each eth_estimateGas and each raw transaction. */
const DATA_BYTES = 60 * 1024
/** Covers EIP-7623's calldata floor for DATA_BYTES non-zero bytes (21000 + 40 gas a byte). */
const GAS_LIMIT = '2500000'

/** Calldata that names its request, so the chain shows which ran. */
const calldata = (tag: number): Hex => `0x${tag.toString(16).padStart(8, '0')}${'ab'.repeat(DATA_BYTES - 4)}`

/** Waits for every one to be CONFIRMED; a time-out says where they stand and what the node answered. */
async function allConfirmed(env: TestEnv, proxy: FaultProxy, ids: string[]): Promise<void> {
  let seen: any[] = []
  await waitFor(
    `${ids.length} CONFIRMED`,
    async () => {
      seen = await Promise.all(ids.map((id) => getTx(env, id)))
      return seen.every((t) => t.status === 'CONFIRMED')
    },
    60_000,
    500,
  ).catch((err: Error) => {
    const byStatus = seen.reduce((n: Record<string, number>, t) => ({ ...n, [t.status]: (n[t.status] ?? 0) + 1 }), {})
    const answers = [...new Set(seen.flatMap((t) => t.attempts.flatMap((a: any) => a.providers.map((p: any) => `${p.outcome}: ${p.error}`))))]
    const errors = [...new Set(seen.map((t) => t.error && `${t.error.code}: ${t.error.message}`).filter(Boolean))]
    throw new Error(`${err.message}: ${JSON.stringify({ byStatus, answers, errors, answered413: proxy.stats.tooLarge })}`)
  })
}

describe('a node that refuses request bodies over a limit (HTTP 413), and a burst of large calldata', () => {
  let env: TestEnv
  let proxy: FaultProxy
  beforeAll(async () => {
    env = await startTestEnv({
      setup: async (anvil) => void (proxy = await startFaultProxy(anvil.url, 'ok', { maxBodyBytes: BODY_LIMIT_BYTES })),
      config: (c) => (c.chains[0].providers = [{ name: 'limited', url: proxy.url }]),
    })
  })
  afterAll(async () => {
    await env?.stop()
    await proxy?.stop()
  })

  it('sends: 30 signed together go out in pieces the node takes; all CONFIRMED, none answered 413', async () => {
    proxy.resetStats()
    const tags = Array.from({ length: 30 }, (_, i) => 0x1000 + i)
    const ids = await Promise.all(tags.map((tag) => submit(env, { to: RECIPIENT, data: calldata(tag), gasLimit: GAS_LIMIT })))
    await allConfirmed(env, proxy, ids)
    const mined = (await transactionsFrom(env.chain, SIGNER.address)).filter((t) => tags.includes(parseInt(t.input.slice(2, 10), 16)))
    expect(mined.map((t) => parseInt(t.input.slice(2, 10), 16)).sort((a, b) => a - b)).toEqual(tags)
    expect(proxy.stats.tooLarge).toBe(0)
    expect(proxy.stats.calls.eth_sendRawTransaction).toBeGreaterThanOrEqual(30)
  }, 90_000)

  it('estimates and sends: 30 at once, half with no gasLimit, all CONFIRMED, none answered 413', async () => {
    proxy.resetStats()
    const tags = Array.from({ length: 30 }, (_, i) => 0x2000 + i)
    const ids = await Promise.all(
      tags.map((tag, i) => submit(env, { to: RECIPIENT, data: calldata(tag), ...(i % 2 === 0 ? { gasLimit: GAS_LIMIT } : {}) })),
    )
    await allConfirmed(env, proxy, ids)
    const mined = (await transactionsFrom(env.chain, SIGNER.address)).filter((t) => tags.includes(parseInt(t.input.slice(2, 10), 16)))
    expect(mined.map((t) => parseInt(t.input.slice(2, 10), 16)).sort((a, b) => a - b)).toEqual(tags)
    expect(proxy.stats.tooLarge).toBe(0)
    expect(proxy.stats.calls.eth_estimateGas).toBeGreaterThanOrEqual(15)
    expect(proxy.stats.calls.eth_sendRawTransaction).toBeGreaterThanOrEqual(30)
  }, 90_000)
})

describe('a provider whose body limit is below one large transaction', () => {
  let env: TestEnv
  let open: FaultProxy
  let small: FaultProxy
  beforeAll(async () => {
    env = await startTestEnv({
      setup: async (anvil) => {
        open = await startFaultProxy(anvil.url)
        small = await startFaultProxy(anvil.url, 'ok', { maxBodyBytes: 64 * 1024 })
      },
      config: (c) => {
        c.chains[0].providers = [
          { name: 'open', url: open.url, weight: 2 },
          { name: 'small', url: small.url },
        ]
      },
    })
  })
  afterAll(async () => {
    await env?.stop()
    await open?.stop()
    await small?.stop()
  })

  it('its 413 is no verdict on the transaction and no fault of the provider: sent through the other, the provider stays up', async () => {
    const ids = await Promise.all([0, 1, 2].map((i) => submit(env, { to: RECIPIENT, data: calldata(0x3000 + i), gasLimit: GAS_LIMIT })))
    await allConfirmed(env, small, ids)
    expect(small.stats.tooLarge).toBeGreaterThan(0)
    for (const id of ids) {
      const answers = (await getTx(env, id)).attempts.flatMap((a: any) => a.providers)
      expect(answers.filter((a: any) => a.name === 'small')).toEqual([expect.objectContaining({ outcome: 'provider_error', error: expect.stringMatching(/^HTTP 413/) })])
      expect(answers.filter((a: any) => a.name === 'open').map((a: any) => a.outcome)).toEqual(['sent'])
    }
    const { json } = await env.graphql('{ providers(chainId: 31337) { name status errorsLastMinute } }')
    expect(json.data.providers.find((p: any) => p.name === 'small')).toMatchObject({ errorsLastMinute: 0, status: expect.not.stringMatching('DOWN') })
  }, 90_000)
})
