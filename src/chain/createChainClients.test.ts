import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../config/loadConfig.ts'
import { createChainClients } from './createChainClients.ts'

/** A node that answers every call with 0 and counts the HTTP requests that carry balance reads (not ranking pings). */
let server: Server
let requests = 0
let url = ''
beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      if (text.includes('eth_getBalance')) requests++
      const body = JSON.parse(text) as { id: unknown } | { id: unknown }[]
      const answer = (c: { id: unknown }) => ({ jsonrpc: '2.0', id: c.id, result: '0x0' })
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(Array.isArray(body) ? body.map(answer) : answer(body)))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

const clientsWith = (providers: number) =>
  createChainClients(
    parseConfig(
      {
        chains: [{ chainId: 31337, name: 'local', providers: Array.from({ length: providers }, (_, i) => ({ name: `p${i}`, url })) }],
        signers: [{ name: 's', chainIds: [31337], privateKey: '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80' }],
      },
      {},
    ).chains[0]!,
  )

describe('createChainClients: reads made together share a JSON-RPC batch', () => {
  it.each([1, 2, 3])('with %i provider(s)', async (providers) => {
    const chain = clientsWith(providers)
    requests = 0
    const addresses = Array.from({ length: 50 }, (_, i) => `0x${(i + 1).toString(16).padStart(40, '0')}` as const)
    const balances = await Promise.all(addresses.map((address) => chain.read.getBalance({ address })))
    expect(balances).toEqual(addresses.map(() => 0n))
    // Before: with two or more providers, each read was its own HTTP request (50), as viem's fallback made the
    // provider's transport, and its batches, anew for every request.
    expect(requests).toBe(1)
  })
})
