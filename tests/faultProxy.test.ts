import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPublicClient, http, HttpRequestError, TimeoutError, type PublicClient } from 'viem'
import { startAnvil, type Anvil } from '../src/dev/startAnvil.ts'
import { startFaultProxy, type FaultProxy } from './helpers/faultProxy.ts'

/** The test helper itself: each mode does what the provider tests rely on. */
describe('fault proxy in front of anvil', () => {
  let anvil: Anvil
  let proxy: FaultProxy
  let client: PublicClient
  let direct: PublicClient
  beforeAll(async () => {
    anvil = await startAnvil()
    proxy = await startFaultProxy(anvil.url)
    // Credentials and a path are accepted and ignored, like a hosted provider's URL.
    client = createPublicClient({ transport: http(`http://user:pw@127.0.0.1:${proxy.port}/v2/abc`, { timeout: 500, retryCount: 0 }) }) as PublicClient
    direct = createPublicClient({ transport: http(anvil.url) }) as PublicClient
    await direct.request({ method: 'anvil_mine' as never, params: ['0xa'] as never })
  })
  afterAll(async () => {
    await proxy?.stop()
    await anvil?.stop()
  })

  const raw = (body: unknown) =>
    fetch(proxy.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json())

  it('ok: forwards single calls and batches', async () => {
    proxy.setMode('ok')
    expect(await client.getChainId()).toBe(31337)
    const answers = await raw([
      { jsonrpc: '2.0', id: 7, method: 'eth_chainId', params: [] },
      { jsonrpc: '2.0', id: 8, method: 'eth_blockNumber', params: [] },
    ])
    expect(answers.map((a: any) => a.id)).toEqual([7, 8])
    expect(answers[0].result).toBe('0x7a69')
    expect(BigInt(answers[1].result)).toBe(await direct.getBlockNumber({ cacheTime: 0 }))
  })

  it('http500: HTTP 500', async () => {
    proxy.setMode('http500')
    const err = await client.getBlockNumber({ cacheTime: 0 }).catch((e) => e)
    expect(err.walk((e: unknown) => e instanceof HttpRequestError)?.status).toBe(500)
  })

  it('hang: never answers, so the client times out', async () => {
    proxy.setMode('hang')
    const started = Date.now()
    const err = await client.getBlockNumber({ cacheTime: 0 }).catch((e) => e)
    expect(err.walk((e: unknown) => e instanceof TimeoutError)).toBeTruthy()
    expect(Date.now() - started).toBeLessThan(2_000)
  })

  it('close: the socket is destroyed without an answer', async () => {
    proxy.setMode('close')
    const err = await client.getBlockNumber({ cacheTime: 0 }).catch((e) => e)
    const httpErr = err.walk((e: unknown) => e instanceof HttpRequestError)
    expect(httpErr).toBeTruthy()
    expect(httpErr.status).toBeUndefined()
  })

  it('wrongChain: eth_chainId answers another chain, the rest is forwarded', async () => {
    proxy.setMode('wrongChain', { wrongChainId: 5 })
    expect(await client.getChainId()).toBe(5)
    const [chainId, block] = await raw([
      { jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] },
      { jsonrpc: '2.0', id: 2, method: 'eth_getBlockByNumber', params: ['0x1', false] },
    ])
    expect(chainId.result).toBe('0x5')
    expect(block.result.number).toBe('0x1')
  })

  it('lag: head - N, and newer blocks and receipts are not found', async () => {
    proxy.setMode('ok')
    const hash = await direct.request({
      method: 'eth_sendTransaction' as never,
      params: [{ from: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266', to: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', value: '0x1' }] as never,
    })
    // Automine answers with the hash before the block is built: wait for it, so the head stays put.
    await direct.waitForTransactionReceipt({ hash: hash as `0x${string}`, pollingInterval: 20 })
    const head = await direct.getBlockNumber({ cacheTime: 0 })
    proxy.setMode('lag', { lagBlocks: 3 })
    expect(await client.getBlockNumber({ cacheTime: 0 })).toBe(head - 3n)
    expect((await client.getBlock({ blockTag: 'latest' })).number).toBe(head - 3n)
    const [newer, older, receipt] = await raw([
      { jsonrpc: '2.0', id: 1, method: 'eth_getBlockByNumber', params: [`0x${head.toString(16)}`, false] },
      { jsonrpc: '2.0', id: 2, method: 'eth_getBlockByNumber', params: [`0x${(head - 3n).toString(16)}`, false] },
      { jsonrpc: '2.0', id: 3, method: 'eth_getTransactionReceipt', params: [hash] },
    ])
    expect(newer.result).toBeNull()
    expect(BigInt(older.result.number)).toBe(head - 3n)
    expect(receipt.result).toBeNull()
    proxy.setMode('ok')
    expect((await client.getTransactionReceipt({ hash: hash as `0x${string}` })).status).toBe('success')
  })

  it('flap: alternates between forwarding and failing', async () => {
    proxy.setMode('flap', { flapWith: 'close' })
    const results = []
    for (let i = 0; i < 6; i++) results.push(await client.getChainId().then(() => 'ok', () => 'fail'))
    expect(results).toEqual(['ok', 'fail', 'ok', 'fail', 'ok', 'fail'])
    proxy.setMode('flap', { flapEvery: 2 })
    const paired = []
    for (let i = 0; i < 6; i++) paired.push(await client.getChainId().then(() => 'ok', () => 'fail'))
    expect(paired).toEqual(['ok', 'ok', 'fail', 'fail', 'ok', 'ok'])
  })

  it('maxBodyBytes: a body over it gets a plain-text HTTP 413, in any mode, and no call reaches the node', async () => {
    proxy.resetStats()
    proxy.setMode('ok', { maxBodyBytes: 1_000 })
    const small = { jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }
    const big = { jsonrpc: '2.0', id: 2, method: 'eth_call', params: [{ data: `0x${'ab'.repeat(600)}` }, 'latest'] }
    expect((await raw(small)).result).toBe('0x7a69')
    const res = await fetch(proxy.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([small, big]) })
    expect(res.status).toBe(413)
    expect(await res.text()).toMatch(/^content length too large \(\d+>1000\)/)
    expect(proxy.stats).toMatchObject({ httpRequests: 2, tooLarge: 1, faulted: 1, calls: { eth_chainId: 1 } })
    // viem's view: an HttpRequestError with the status, as from geth.
    const err = await client.call({ data: `0x${'ab'.repeat(600)}` }).catch((e) => e)
    expect(err.walk((e: unknown) => e instanceof HttpRequestError)?.status).toBe(413)
    proxy.setMode('ok', {})
  })

  it('counts requests and calls, and stops even with a request hanging', async () => {
    proxy.resetStats()
    proxy.setMode('ok')
    await raw([
      { jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] },
      { jsonrpc: '2.0', id: 2, method: 'eth_chainId', params: [] },
    ])
    expect(proxy.stats.httpRequests).toBe(1)
    expect(proxy.stats.calls).toEqual({ eth_chainId: 2 })
    const other = await startFaultProxy(anvil.url, 'hang')
    const pending = fetch(other.url, { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId' }) }).catch(() => 'closed')
    await new Promise((r) => setTimeout(r, 50))
    await other.stop()
    expect(await pending).toBe('closed')
  })
})
