import { BaseError, type Address, type Hex } from 'viem'
import { describeRevertData } from '../core/revertReason.ts'
import type { ChainClients } from './createChainClients.ts'

export type MinedCall = { from: Address; to: Address | null; data: Hex; value: bigint; gas: bigint; blockNumber: bigint }

/**
 * Why a mined transaction reverted, found by running its call again (eth_call) on the state of its block: a
 * receipt says only "status 0". The state differs a little from the one it ran on (the block's later
 * transactions are in it), so this is the reason where it can be found: null when the replay did not revert,
 * or the node did not answer.
 */
export async function replayRevert(chain: ChainClients, call: MinedCall): Promise<string | null> {
  try {
    await chain.read.call({ account: call.from, to: call.to ?? undefined, data: call.data, value: call.value, gas: call.gas, blockNumber: call.blockNumber })
    return null
  } catch (err) {
    if (!(err instanceof BaseError)) return null
    const raw = err.walk((e) => (e as { data?: unknown }).data !== undefined) as { data?: Hex | { data?: Hex } } | null
    const data = typeof raw?.data === 'string' ? raw.data : raw?.data?.data
    if (data) return describeRevertData(data)
    // A revert without data still says so; anything else (a timeout, a provider error) says nothing.
    return /revert/i.test(err.message) ? describeRevertData(undefined) : null
  }
}
