import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseTransaction, type Hex } from 'viem'

type RpcCall = { jsonrpc?: string; id?: unknown; method: string; params?: unknown[] }
type RpcAnswer = { jsonrpc: '2.0'; id: unknown; result?: unknown; error?: { code: number; message: string } }

/**
 * A node of a chain that charges the L1 part of a transaction's cost in gas (Arbitrum, zkSync Era, Mantle), in
 * front of anvil: estimates are `l1Gas` higher, and a transaction whose gas limit does not cover 21000 plus
 * `l1Gas` is refused as Arbitrum's node refuses it, before it reaches the pool.
 */
export async function startL1GasProxy(upstream: string, l1Gas = 30_000n): Promise<{ url: string; refused: () => number; stop: () => Promise<void> }> {
  let refused = 0
  const forward = async (calls: RpcCall[]): Promise<RpcAnswer[]> => {
    if (calls.length === 0) return []
    const res = await fetch(upstream, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(calls) })
    return (await res.json()) as RpcAnswer[]
  }
  const answer = async (calls: RpcCall[]): Promise<RpcAnswer[]> => {
    const tooLow = (c: RpcCall) =>
      c.method === 'eth_sendRawTransaction' && (parseTransaction(c.params![0] as Hex).gas ?? 0n) < 21_000n + l1Gas
    const passed = await forward(calls.filter((c) => !tooLow(c)))
    const byId = new Map(passed.map((a) => [JSON.stringify(a.id), a]))
    return calls.map((c): RpcAnswer => {
      if (tooLow(c)) {
        refused++
        return { jsonrpc: '2.0', id: c.id ?? null, error: { code: -32000, message: 'intrinsic gas too low' } }
      }
      const a = byId.get(JSON.stringify(c.id))!
      if (c.method === 'eth_estimateGas' && typeof a.result === 'string') return { ...a, result: `0x${(BigInt(a.result) + l1Gas).toString(16)}` }
      return a
    })
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RpcCall | RpcCall[]
      answer(Array.isArray(body) ? body : [body]).then(
        (answers) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(Array.isArray(body) ? answers : answers[0])),
        (err: unknown) => res.writeHead(502).end(String(err)),
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    refused: () => refused,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
