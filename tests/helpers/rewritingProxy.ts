import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

export type RpcCall = { jsonrpc?: string; id?: unknown; method: string; params?: unknown[] }
export type RpcAnswer = { jsonrpc: '2.0'; id: unknown; result?: unknown; error?: { code: number; message: string } }

export type Rewrite = {
  /** An error message to answer this call with, without forwarding it; null forwards it. */
  refuse?: (call: RpcCall) => string | null
  /** The answer the client gets for a forwarded call (default: the upstream's). */
  answer?: (call: RpcCall, upstream: RpcAnswer) => RpcAnswer
}

/**
 * A JSON-RPC proxy in front of anvil that plays a node anvil is not: it refuses some calls in that node's
 * words and changes some answers (see l1GasProxy.ts, and the stale-balance node in providers.test.ts).
 * Batches stay batches; the calls it refuses are not forwarded.
 */
export async function startRewritingProxy(upstream: string, rewrite: Rewrite): Promise<{ url: string; refused: () => number; stop: () => Promise<void> }> {
  let refused = 0
  const forward = async (calls: RpcCall[]): Promise<RpcAnswer[]> => {
    if (calls.length === 0) return []
    const res = await fetch(upstream, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(calls) })
    return (await res.json()) as RpcAnswer[]
  }
  const answer = async (calls: RpcCall[]): Promise<RpcAnswer[]> => {
    const refusals = calls.map((c) => rewrite.refuse?.(c) ?? null)
    const passed = await forward(calls.filter((_, i) => refusals[i] === null))
    const byId = new Map(passed.map((a) => [JSON.stringify(a.id), a]))
    return calls.map((c, i): RpcAnswer => {
      const refusal = refusals[i]
      if (refusal !== null) {
        refused++
        return { jsonrpc: '2.0', id: c.id ?? null, error: { code: -32000, message: refusal! } }
      }
      const a = byId.get(JSON.stringify(c.id))!
      return rewrite.answer ? rewrite.answer(c, a) : a
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
    // Its connections cut too: close() alone waits for the keep-alive connections of a service that is still
    // running (the test stops the proxy before the service), and a request in flight at that moment kept one
    // busy for good: the test hung until its timeout (seen under load, about one run in four).
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
