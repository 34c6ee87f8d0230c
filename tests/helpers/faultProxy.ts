import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/**
 * How the proxy treats the next HTTP request:
 * - `ok`: forwards it to the upstream node as it is;
 * - `http500`: answers HTTP 500 with a plain-text body;
 * - `hang`: never answers (the socket stays open until the client gives up or the proxy stops);
 * - `close`: destroys the socket without an answer;
 * - `wrongChain`: forwards, but answers `eth_chainId` / `net_version` with `wrongChainId`;
 * - `lag`: a node `lagBlocks` behind: `eth_blockNumber` answers head - N, `latest` means head - N,
 *   and blocks, receipts and transactions in newer blocks are not found (null);
 * - `flap`: alternates `flapEvery` requests forwarded (`ok`), then `flapEvery` answered with `flapWith`;
 * - `slow`: a request holding any call to one of `slowMethods` (with `slowParamsInclude` in its params, if given) is forwarded after `slowMs` (a node busy
 *   with something else); other requests pass at once;
 * - `methodError`: calls to `errorMethods` (only those whose params contain `errorParamsInclude`, if given) get a
 *   JSON-RPC error answer (-32603), after being forwarded anyway with `forwardErrored`; the rest are forwarded.
 * In every mode, a body over `maxBodyBytes` is answered HTTP 413 in plain text, as geth and besu answer one over
 * their 5 MiB default.
 */
export type FaultMode = 'ok' | 'http500' | 'hang' | 'close' | 'wrongChain' | 'lag' | 'flap' | 'slow' | 'methodError'

export type FaultOptions = {
  /** The chain id `wrongChain` claims (default 999). */
  wrongChainId?: number
  /** How far behind `lag` stays (default 5). */
  lagBlocks?: number
  /** What the failing half of `flap` does (default http500). */
  flapWith?: Exclude<FaultMode, 'flap' | 'ok'>
  /** Requests per half of a `flap` cycle (default 1: every other request fails). */
  flapEvery?: number
  /** The methods `slow` holds back (default: the balance and nonce reads). */
  slowMethods?: string[]
  /** How long `slow` holds them (default 3000 ms). */
  slowMs?: number
  /** `slow` holds only requests with such a call whose params, as JSON, contain this text (one transaction's calldata). */
  slowParamsInclude?: string
  /** The methods `methodError` fails (default: the receipt reads). */
  errorMethods?: string[]
  /** The error `methodError` answers with (default -32603 "proxy: internal error"). */
  error?: { code: number; message: string }
  /** `methodError` fails only calls whose params, as JSON, contain this text (e.g. one transaction's calldata). */
  errorParamsInclude?: string
  /** `methodError` forwards the failed calls too (the node takes them) and answers the error anyway. */
  forwardErrored?: boolean
  /** `methodError` answers `null` instead of an error (a receipt backend lagging its blocks). */
  answerNull?: boolean
  /** `methodError` fails only the first this many matching calls, then forwards them (a node that caught up). */
  failFirst?: number
  /** `methodError` forwards eth_getTransactionReceipt and answers the receipt with this blockHash (a node on another fork). */
  receiptBlockHash?: string
  /** The largest request body taken, in any mode (default: no limit); a bigger one gets geth's HTTP 413. */
  maxBodyBytes?: number
}

export type FaultProxyStats = {
  /** HTTP requests received (a JSON-RPC batch is one). */
  httpRequests: number
  /** JSON-RPC calls received, by method (batch members counted one by one). */
  calls: Record<string, number>
  /** HTTP requests that got a fault instead of the upstream's answer. */
  faulted: number
  /** HTTP requests answered 413 for a body over `maxBodyBytes` (also counted in `faulted`). */
  tooLarge: number
}

export type FaultProxy = {
  /** `http://127.0.0.1:<port>`; any path and any `user:pass@` are accepted and ignored. */
  url: string
  port: number
  mode: () => FaultMode
  setMode: (mode: FaultMode, options?: FaultOptions) => void
  stats: FaultProxyStats
  resetStats: () => void
  stop: () => Promise<void>
}

type RpcCall = { jsonrpc?: string; id?: unknown; method: string; params?: unknown[] }
type RpcAnswer = { jsonrpc: '2.0'; id: unknown; result?: unknown; error?: { code: number; message: string } }

const BLOCK_TAGS = new Set(['latest', 'pending', 'safe', 'finalized'])
/** Methods whose block argument sits at this index; `lag` pins tags to its lagged head. */
const BLOCK_PARAM_INDEX: Record<string, number> = {
  eth_getBlockByNumber: 0,
  eth_getBalance: 1,
  eth_getTransactionCount: 1,
  eth_getCode: 1,
  eth_call: 1,
  eth_getStorageAt: 2,
}

const toHex = (n: bigint | number) => `0x${n.toString(16)}`

/** An HTTP JSON-RPC proxy on 127.0.0.1 in front of a node (anvil), with faults switchable at run time. */
export async function startFaultProxy(upstream: string, mode: FaultMode = 'ok', options: FaultOptions = {}): Promise<FaultProxy> {
  let current = mode
  let opts: Required<FaultOptions> = withDefaults(options)
  let flapCounter = 0
  /** Calls `methodError` has failed since the mode was set (for `failFirst`). */
  let failedCalls = 0
  const stats: FaultProxyStats = { httpRequests: 0, calls: {}, faulted: 0, tooLarge: 0 }
  const sockets = new Set<Socket>()

  async function rpc(calls: RpcCall[]): Promise<RpcAnswer[]> {
    if (calls.length === 0) return []
    const res = await fetch(upstream, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(calls) })
    const answers = (await res.json()) as RpcAnswer[]
    // Upstream answers a batch in any order; put them back in request order.
    const byId = new Map(answers.map((a) => [JSON.stringify(a.id), a]))
    return calls.map(
      (c) => byId.get(JSON.stringify(c.id)) ?? { jsonrpc: '2.0', id: c.id ?? null, error: { code: -32603, message: 'proxy: no answer from upstream' } },
    )
  }

  /** Answers the calls `own` answers itself, forwards the rest, and returns every answer in the calls' order. */
  async function answerSome(calls: RpcCall[], own: (c: RpcCall) => RpcAnswer | undefined): Promise<RpcAnswer[]> {
    const owned = calls.map(own)
    const answers = await rpc(calls.filter((_, k) => !owned[k]))
    let i = 0
    return owned.map((a) => a ?? answers[i++]!)
  }

  async function forward(calls: RpcCall[], effective: FaultMode): Promise<RpcAnswer[]> {
    if (effective === 'wrongChain')
      return answerSome(calls, (c) =>
        c.method === 'eth_chainId'
          ? { jsonrpc: '2.0', id: c.id ?? null, result: toHex(opts.wrongChainId) }
          : c.method === 'net_version'
            ? { jsonrpc: '2.0', id: c.id ?? null, result: String(opts.wrongChainId) }
            : undefined,
      )
    if (effective === 'methodError') {
      const matches = (c: RpcCall) =>
        opts.errorMethods.includes(c.method) && (opts.errorParamsInclude === '' || JSON.stringify(c.params ?? []).includes(opts.errorParamsInclude))
      const fails = (c: RpcCall) => matches(c) && failedCalls++ < opts.failFirst
      const failed = (id: unknown): RpcAnswer => (opts.answerNull ? { jsonrpc: '2.0', id, result: null } : { jsonrpc: '2.0', id, error: opts.error })
      const forked = (c: RpcCall, a: RpcAnswer): RpcAnswer =>
        opts.receiptBlockHash && c.method === 'eth_getTransactionReceipt' && a.result && typeof a.result === 'object'
          ? { ...a, result: { ...a.result, blockHash: opts.receiptBlockHash } }
          : a
      if (opts.forwardErrored) {
        const answers = await rpc(calls)
        return answers.map((a, k) => (fails(calls[k]!) ? failed(a.id) : forked(calls[k]!, a)))
      }
      const answers = await answerSome(calls, (c) => (fails(c) ? failed(c.id ?? null) : undefined))
      return answers.map((a, k) => forked(calls[k]!, a))
    }
    if (effective !== 'lag') return rpc(calls)
    const [headAnswer] = await rpc([{ jsonrpc: '2.0', id: 'proxy-head', method: 'eth_blockNumber', params: [] }])
    const head = BigInt(headAnswer!.result as string)
    const lagged = head > BigInt(opts.lagBlocks) ? head - BigInt(opts.lagBlocks) : 0n
    const rewritten = calls.map((c) => {
      const at = BLOCK_PARAM_INDEX[c.method]
      if (at === undefined || !Array.isArray(c.params)) return c
      const params = [...c.params]
      if (typeof params[at] === 'string' && BLOCK_TAGS.has(params[at] as string)) params[at] = toHex(lagged)
      return { ...c, params }
    })
    const answers = await rpc(rewritten.filter((c) => c.method !== 'eth_blockNumber'))
    let i = 0
    const newer = (n: unknown) => typeof n === 'string' && BigInt(n) > lagged
    return rewritten.map((c) => {
      if (c.method === 'eth_blockNumber') return { jsonrpc: '2.0', id: c.id ?? null, result: toHex(lagged) }
      const a = answers[i++]!
      if (a.result === null || typeof a.result !== 'object') {
        if (c.method === 'eth_getBlockByNumber' && newer((c.params as unknown[])[0])) return { ...a, result: null }
        return a
      }
      const r = a.result as Record<string, unknown>
      if ((c.method === 'eth_getBlockByNumber' || c.method === 'eth_getBlockByHash') && newer(r.number)) return { ...a, result: null }
      if (c.method === 'eth_getTransactionReceipt' && newer(r.blockNumber)) return { ...a, result: null }
      if (c.method === 'eth_getTransactionByHash' && newer(r.blockNumber))
        return { ...a, result: { ...r, blockHash: null, blockNumber: null, transactionIndex: null } }
      return a
    })
  }

  function effectiveMode(): FaultMode {
    if (current !== 'flap') return current
    const i = flapCounter++
    return Math.floor(i / opts.flapEvery) % 2 === 0 ? 'ok' : opts.flapWith
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    stats.httpRequests++
    const bytes = Buffer.concat(chunks)
    if (bytes.length > opts.maxBodyBytes) {
      // geth's words (node/rpcstack.go), before it parses anything: none of the calls reach the node.
      stats.faulted++
      stats.tooLarge++
      res.writeHead(413, { 'content-type': 'text/plain; charset=utf-8' }).end(`content length too large (${bytes.length}>${opts.maxBodyBytes})\n`)
      return
    }
    let body: RpcCall | RpcCall[]
    try {
      body = JSON.parse(bytes.toString('utf8')) as RpcCall | RpcCall[]
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }))
      return
    }
    const calls = Array.isArray(body) ? body : [body]
    for (const c of calls) stats.calls[c.method] = (stats.calls[c.method] ?? 0) + 1
    const effective = effectiveMode()
    switch (effective) {
      case 'http500':
        stats.faulted++
        res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error')
        return
      case 'hang':
        // Never answer; the client's timeout (or stop()) ends it.
        stats.faulted++
        return
      case 'close':
        stats.faulted++
        req.socket.destroy()
        return
    }
    if (effective === 'wrongChain' || effective === 'lag' || effective === 'methodError') stats.faulted++
    if (effective === 'slow' && calls.some((c) => opts.slowMethods.includes(c.method) && JSON.stringify(c.params ?? []).includes(opts.slowParamsInclude))) {
      stats.faulted++
      await new Promise((resolve) => setTimeout(resolve, opts.slowMs))
    }
    let answers: RpcAnswer[]
    try {
      answers = await forward(calls, effective)
    } catch (err) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`proxy: upstream failed: ${(err as Error).message}`)
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(Array.isArray(body) ? answers : answers[0]))
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502).end()
      else res.destroy()
    })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stats,
    mode: () => current,
    setMode(mode, options) {
      current = mode
      if (options) opts = withDefaults(options)
      flapCounter = 0
      failedCalls = 0
    },
    resetStats() {
      stats.httpRequests = 0
      stats.faulted = 0
      stats.tooLarge = 0
      stats.calls = {}
    },
    async stop() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function withDefaults(o: FaultOptions): Required<FaultOptions> {
  return {
    wrongChainId: o.wrongChainId ?? 999,
    lagBlocks: o.lagBlocks ?? 5,
    flapWith: o.flapWith ?? 'http500',
    flapEvery: Math.max(1, o.flapEvery ?? 1),
    slowMethods: o.slowMethods ?? ['eth_getBalance', 'eth_getTransactionCount'],
    slowMs: o.slowMs ?? 3_000,
    slowParamsInclude: o.slowParamsInclude ?? '',
    errorMethods: o.errorMethods ?? ['eth_getTransactionReceipt', 'eth_getBlockReceipts'],
    error: o.error ?? { code: -32603, message: 'proxy: internal error' },
    errorParamsInclude: o.errorParamsInclude ?? '',
    forwardErrored: o.forwardErrored ?? false,
    answerNull: o.answerNull ?? false,
    failFirst: o.failFirst ?? Infinity,
    receiptBlockHash: o.receiptBlockHash ?? '',
    maxBodyBytes: o.maxBodyBytes ?? Infinity,
  }
}
