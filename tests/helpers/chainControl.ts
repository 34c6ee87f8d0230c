import { getAddress, type Address, type Hex, type PublicClient } from 'viem'
import { waitFor, type TestEnv } from './testService.ts'

/** One JSON-RPC call straight to a node by its URL (a test with its own anvil and no TestEnv); its `result`. */
export async function anvilRpc(url: string, method: string, params: unknown[] = []): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
  const body = (await res.json()) as { result?: unknown; error?: { message: string } }
  if (body.error) throw new Error(`${method}: ${body.error.message}`)
  return body.result
}

/** anvil's own RPC methods: the fault injection every lifecycle test uses. */
export function chainControl(env: TestEnv) {
  const rpc = (method: string, params: unknown[] = []) => env.chain.request({ method: method as never, params: params as never })
  return {
    rpc,
    mine: (blocks = 1) => rpc('anvil_mine', [`0x${blocks.toString(16)}`]),
    setNextBaseFee: (wei: bigint) => rpc('anvil_setNextBlockBaseFeePerGas', [`0x${wei.toString(16)}`]),
    dropAll: () => rpc('anvil_dropAllTransactions'),
    drop: (hash: Hex) => rpc('anvil_dropTransaction', [hash]),
    reorg: (depth: number) => rpc('anvil_reorg', [depth, []]),
    setBalance: (address: string, wei: bigint) => rpc('anvil_setBalance', [address, `0x${wei.toString(16)}`]),
    setCode: (address: string, code: Hex) => rpc('anvil_setCode', [address, code]),
    setAutomine: (on: boolean) => rpc('evm_setAutomine', [on]),
  }
}

export const TX_FIELDS = `id status nonce hash execution atFeeCap blockNumber blockHash error { code message }
  attempts { hash nonce purpose status maxFeePerGas maxPriorityFeePerGas providers { name outcome error } }
  events { fromStatus toStatus actor detail }`

export async function getTx(env: TestEnv, id: string): Promise<any> {
  const { json } = await env.graphql(`query($id: ID!) { transaction(id: $id) { ${TX_FIELDS} } }`, { id })
  if (json.errors) throw new Error(JSON.stringify(json.errors))
  return json.data.transaction
}

export async function waitForStatus(env: TestEnv, id: string, status: string | ((t: any) => boolean), timeoutMs = 30_000): Promise<any> {
  const ok = typeof status === 'string' ? (t: any) => t.status === status : status
  return waitFor(`transaction ${id} ${typeof status === 'string' ? status : 'condition'}`, async () => {
    const t = await getTx(env, id)
    return ok(t) && t
  }, timeoutMs, 100)
}

export async function submit(env: TestEnv, body: Record<string, unknown>): Promise<string> {
  const res = await env.post('/broadcast_transaction', body)
  if (res.status !== 200) throw new Error(`submit failed: ${res.status} ${JSON.stringify(res.json)}`)
  return res.json.transactionId
}

/** Mines a block every `everyMs` until the transaction reaches `status` (as a real chain keeps producing blocks). */
export async function mineUntil(env: TestEnv, id: string, status: string, opts: { maxBlocks?: number; everyMs?: number } = {}): Promise<any> {
  const anvil = chainControl(env)
  let t = await getTx(env, id)
  for (let i = 0; i < (opts.maxBlocks ?? 40) && t.status !== status; i++) {
    await anvil.mine()
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 250))
    t = await getTx(env, id)
  }
  return t
}

/**
 * Runtime code that always reverts with Error("nope"): CODECOPY the 100-byte
 * revert payload that follows the 12 code bytes, then REVERT with it.
 */
export const REVERTING_CODE = ('0x6064600c60003960646000fd08c379a0' +
  '0000000000000000000000000000000000000000000000000000000000000020' +
  '0000000000000000000000000000000000000000000000000000000000000004' +
  '6e6f706500000000000000000000000000000000000000000000000000000000') as Hex

/** Every transaction `from` has on chain, from block 0 to the head, in block order: what a test checks ran once. */
export async function transactionsFrom(chain: PublicClient, from: Address): Promise<{ nonce: number; to: string | null; input: Hex; value: bigint; hash: Hex }[]> {
  // Not viem's cached head (kept for its polling interval, 4 s): blocks mined since a call just before would be missed.
  const head = await chain.getBlockNumber({ cacheTime: 0 })
  const out: { nonce: number; to: string | null; input: Hex; value: bigint; hash: Hex }[] = []
  for (let n = 0n; n <= head; n++) {
    const block = await chain.getBlock({ blockNumber: n, includeTransactions: true })
    for (const tx of block.transactions)
      if (getAddress(tx.from) === getAddress(from)) out.push({ nonce: tx.nonce, to: tx.to, input: tx.input, value: tx.value, hash: tx.hash })
  }
  return out
}
