import type { Address } from 'viem'
import type { ChainClients } from './createChainClients.ts'

/**
 * An address's transaction count (its next nonce) as of a block. A node without that block's state (pruned)
 * answers for the head instead: a count at least as high, which makes the callers (the watcher's receipt
 * sweep, the nonce reconciler) look at more transactions, never fewer.
 */
export function transactionCountAt(chain: ChainClients, address: Address, blockNumber: bigint): Promise<number> {
  return chain.read.getTransactionCount({ address, blockNumber }).catch(() => chain.read.getTransactionCount({ address, blockTag: 'latest' }))
}
