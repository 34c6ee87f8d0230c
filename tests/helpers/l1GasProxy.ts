import { parseTransaction, type Hex } from 'viem'
import { startRewritingProxy } from './rewritingProxy.ts'

/**
 * A node of a chain that charges the L1 part of a transaction's cost in gas (Arbitrum, zkSync Era, Mantle), in
 * front of anvil: estimates are `l1Gas` higher, and a transaction whose gas limit does not cover 21000 plus
 * `l1Gas` is refused as Arbitrum's node refuses it, before it reaches the pool.
 */
export function startL1GasProxy(upstream: string, l1Gas = 30_000n) {
  return startRewritingProxy(upstream, {
    refuse: (c) =>
      c.method === 'eth_sendRawTransaction' && (parseTransaction(c.params![0] as Hex).gas ?? 0n) < 21_000n + l1Gas ? 'intrinsic gas too low' : null,
    answer: (c, a) => (c.method === 'eth_estimateGas' && typeof a.result === 'string' ? { ...a, result: `0x${(BigInt(a.result) + l1Gas).toString(16)}` } : a),
  })
}
