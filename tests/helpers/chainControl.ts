import type { Hex } from 'viem'
import { waitFor, type TestEnv } from './testService.ts'

/** anvil's own RPC methods: the fault injection every lifecycle test uses. */
export function chainControl(env: TestEnv) {
  const rpc = (method: string, params: unknown[] = []) => env.chain.request({ method: method as never, params: params as never })
  return {
    rpc,
    mine: (blocks = 1) => rpc('anvil_mine', [`0x${blocks.toString(16)}`]),
    setNextBaseFee: (wei: bigint) => rpc('anvil_setNextBlockBaseFeePerGas', [`0x${wei.toString(16)}`]),
    dropAll: () => rpc('anvil_dropAllTransactions'),
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
