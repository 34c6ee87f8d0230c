import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import type { Address, Hex } from 'viem'
import { isLoopbackHost, round, sleep } from './stats.ts'

/** JSON-RPC over fetch: one call or a batch array in one HTTP request. */
export function rpcClient(url: string) {
  if (!isLoopbackHost(new URL(url).hostname)) throw new Error(`the bench only talks to RPC on a loopback address, not ${url}`)
  let id = 0
  async function post(body: unknown, timeoutMs = 30_000): Promise<unknown> {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    })
    const text = await res.text()
    if (!res.ok) throw new Error(`RPC HTTP ${res.status}: ${text.slice(0, 300)}`)
    return JSON.parse(text) as unknown
  }
  type Answer = { id: number; result?: unknown; error?: { code: number; message: string } }
  return {
    async call<T>(method: string, params: unknown[] = []): Promise<T> {
      const a = (await post({ jsonrpc: '2.0', id: ++id, method, params })) as Answer
      if (a.error) throw new Error(`${method}: ${a.error.message}`)
      return a.result as T
    },
    /** Answers in request order; an error answer is returned, not thrown. */
    async batch(calls: { method: string; params: unknown[] }[]): Promise<Answer[]> {
      const first = id + 1
      const answers = (await post(calls.map((c) => ({ jsonrpc: '2.0', id: ++id, method: c.method, params: c.params })), 60_000)) as Answer[]
      if (!Array.isArray(answers)) throw new Error(`batch answer is not an array: ${JSON.stringify(answers).slice(0, 300)}`)
      const byId = new Map(answers.map((a) => [a.id, a]))
      return calls.map((_, i) => byId.get(first + i) ?? { id: first + i, error: { code: -1, message: 'no answer in batch' } })
    },
  }
}
export type RpcClient = ReturnType<typeof rpcClient>

export type BaselineResult = {
  count: number
  from: Address
  batchSize: number
  signMs: number
  /** The bench's own signing speed with viem (one core): the service signs the same way. */
  signPerSec: number
  sendMs: number
  /** From the first eth_sendRawTransaction batch until the account's mined nonce covers all of them. */
  minedMs: number
  rejected: number
  rejectedExamples: string[]
  mined: number
  complete: boolean
  txPerSec: number
  blocks: { number: number; txs: number; gasUsed: number }[]
}

/** `count` value transfers of 1 wei to `to` at consecutive nonces from `startNonce`, signed with viem. */
export async function signTransfers(
  account: PrivateKeyAccount,
  t: { chainId: number; to: Address; startNonce: number; count: number; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint },
): Promise<Hex[]> {
  const raws: Hex[] = []
  for (let i = 0; i < t.count; i++)
    raws.push(
      await account.signTransaction({
        type: 'eip1559',
        chainId: t.chainId,
        nonce: t.startNonce + i,
        to: t.to,
        value: 1n,
        gas: 21_000n,
        maxFeePerGas: t.maxFeePerGas,
        maxPriorityFeePerGas: t.maxPriorityFeePerGas,
      }),
    )
  return raws
}

/** Sends raw transactions in JSON-RPC batches of `batchSize`, one batch after another; returns the error messages of those refused. */
export async function sendRawTransactions(rpc: RpcClient, raws: Hex[], batchSize: number): Promise<string[]> {
  const refused: string[] = []
  for (let i = 0; i < raws.length; i += batchSize) {
    const answers = await rpc.batch(raws.slice(i, i + batchSize).map((raw) => ({ method: 'eth_sendRawTransaction', params: [raw] })))
    for (const a of answers) if (a.error) refused.push(a.error.message)
  }
  return refused
}

/**
 * The practical ceiling: pre-signed value transfers sent straight to anvil in JSON-RPC
 * batches (no database, no service), timed until they are all mined.
 */
export async function runBaseline(opts: {
  rpc: RpcClient
  chainId: number
  privateKey: Hex
  to: Address
  count: number
  batchSize?: number
  timeoutMs: number
}): Promise<BaselineResult> {
  const { rpc, count } = opts
  const batchSize = opts.batchSize ?? 500
  const account = privateKeyToAccount(opts.privateKey)
  const startNonce = Number(BigInt(await rpc.call<Hex>('eth_getTransactionCount', [account.address, 'latest'])))
  const latest = await rpc.call<{ baseFeePerGas?: Hex; number: Hex }>('eth_getBlockByNumber', ['latest', false])
  const baseFee = BigInt(latest.baseFeePerGas ?? '0x3b9aca00')
  const maxPriorityFeePerGas = 1_000_000_000n
  // Room for the base fee to rise over many full blocks.
  const maxFeePerGas = baseFee * 4n + maxPriorityFeePerGas

  const signStart = performance.now()
  const raws = await signTransfers(account, { chainId: opts.chainId, to: opts.to, startNonce, count, maxFeePerGas, maxPriorityFeePerGas })
  const signMs = performance.now() - signStart

  const startBlock = Number(BigInt(await rpc.call<Hex>('eth_blockNumber')))
  const t0 = performance.now()
  const refused = await sendRawTransactions(rpc, raws, batchSize)
  const rejected = refused.length
  const rejectedExamples = refused.slice(0, 5)
  const sendMs = performance.now() - t0

  const target = startNonce + count - rejected
  const deadline = t0 + opts.timeoutMs
  let nonce = startNonce
  while (performance.now() < deadline) {
    nonce = Number(BigInt(await rpc.call<Hex>('eth_getTransactionCount', [account.address, 'latest'])))
    if (nonce >= target) break
    await sleep(25)
  }
  const minedMs = performance.now() - t0
  const mined = nonce - startNonce
  const endBlock = Number(BigInt(await rpc.call<Hex>('eth_blockNumber')))
  const blocks: BaselineResult['blocks'] = []
  for (let n = startBlock + 1; n <= endBlock && blocks.length < 500; n++) {
    const b = await rpc.call<{ transactions: unknown[]; gasUsed: Hex }>('eth_getBlockByNumber', [`0x${n.toString(16)}`, false])
    if (b.transactions.length) blocks.push({ number: n, txs: b.transactions.length, gasUsed: Number(BigInt(b.gasUsed)) })
  }
  return {
    count,
    from: account.address,
    batchSize,
    signMs: round(signMs),
    signPerSec: round(count / (signMs / 1000)),
    sendMs: round(sendMs),
    minedMs: round(minedMs),
    rejected,
    rejectedExamples,
    mined,
    complete: nonce >= target,
    txPerSec: round(mined / (minedMs / 1000)),
    blocks,
  }
}
