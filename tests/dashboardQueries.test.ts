import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chainControl, REVERTING_CODE, submit, waitForStatus } from './helpers/chainControl.ts'
import { RECIPIENT, SIGNER, startTestEnv, type TestEnv } from './helpers/testService.ts'

const TARGET = '0x00000000000000000000000000000000000c0de0'
const READER_KEY = 'test-reader-key-0123456789'
const ZERO = { QUEUED: 0, PENDING: 0, INCLUDED: 0, CONFIRMED: 0, REVERTED: 0, FAILED: 0, CANCELLED: 0 }

describe('dashboard queries: viewer, chains, transactionCounts', () => {
  let env: TestEnv
  beforeAll(async () => {
    env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      config: (c) => {
        c.chains[0].explorerUrl = 'https://explorer.example'
        c.apiKeys.push({ name: 'dash-reader', role: 'reader', key: READER_KEY })
      },
    })
  }, 60_000)
  afterAll(async () => {
    await env?.stop()
  })

  const asReader = async (query: string) => {
    const res = await fetch(`${env.service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${READER_KEY}` },
      body: JSON.stringify({ query }),
    })
    return (await res.json()) as any
  }
  const counts = async (args = '') => {
    const res = await env.graphql(`{ transactionCounts${args} { status count } }`)
    expect(res.json.errors).toBeUndefined()
    const list: Array<{ status: string; count: number }> = res.json.data.transactionCounts
    expect(list.map((c) => c.status)).toEqual(Object.keys(ZERO))
    return Object.fromEntries(list.map((c) => [c.status, c.count]))
  }

  it('viewer is the API key in use', async () => {
    const admin = await env.graphql(`{ viewer { name role } }`)
    expect(admin.json.errors).toBeUndefined()
    expect(admin.json.data.viewer).toEqual({ name: 'test-admin', role: 'admin' })
    const reader = await asReader(`{ viewer { name role } }`)
    expect(reader.errors).toBeUndefined()
    expect(reader.data.viewer).toEqual({ name: 'dash-reader', role: 'reader' })
  })

  it('chains lists the configured chains with their explorer and currency', async () => {
    const reader = await asReader(`{ chains { chainId name currencySymbol confirmations explorerUrl } }`)
    expect(reader.errors).toBeUndefined()
    expect(reader.data.chains).toEqual([{ chainId: 31337, name: 'anvil', currencySymbol: 'ETH', confirmations: 1, explorerUrl: 'https://explorer.example' }])
  })

  it('transactionCounts has every status, zeros included, and matches what was submitted', async () => {
    expect(await counts()).toEqual(ZERO)
    await chainControl(env).setCode(TARGET, REVERTING_CODE)
    const ok = await Promise.all([1, 2, 3].map((i) => submit(env, { to: RECIPIENT, value: String(1000 + i) })))
    const bad = await submit(env, { to: TARGET, data: '0xabcdef01' })
    await waitForStatus(env, bad, 'FAILED')
    for (const id of ok) await waitForStatus(env, id, 'CONFIRMED')

    const expected = { ...ZERO, CONFIRMED: 3, FAILED: 1 }
    expect(await counts()).toEqual(expected)
    expect(await counts(`(chainId: 31337)`)).toEqual(expected)
    expect(await counts(`(chainId: 1)`)).toEqual(ZERO)
    // Signers are stored checksummed: any case of the address finds them.
    expect(await counts(`(from: "${SIGNER.address.toLowerCase()}")`)).toEqual(expected)
    expect(await counts(`(chainId: 31337, from: "${SIGNER.address}")`)).toEqual(expected)
    expect(await counts(`(from: "${RECIPIENT}")`)).toEqual(ZERO)

    const reader = await asReader(`{ transactionCounts { status count } }`)
    expect(reader.errors).toBeUndefined()
    expect(reader.data.transactionCounts.find((c: any) => c.status === 'CONFIRMED').count).toBe(3)
  }, 60_000)
})
