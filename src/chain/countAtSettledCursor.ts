import type { Address } from 'viem'
import type { Sql } from '../db/connect.ts'
import type { ChainClients } from './createChainClients.ts'

/**
 * The signer's transaction count at the deepest block the chain's watcher has scanned to that is also at the
 * chain's confirmation depth (chain_cursors: the watcher may run in another instance); null before any watcher
 * has run, or when no provider answers. A nonce another transaction took in a block a reorg can still take back
 * is not gone yet: re-signed at a new nonce then, the request ran twice once the reorg brought back its first
 * attempt. Up to that block the watcher has also settled every attempt of ours it found mined, but for a moment
 * after it jumped ahead (watchChain.ts, JUMP_AFTER_BLOCKS): the receipt sweep settles those on the same tick, at
 * most SWEEP_MAX_TRANSACTIONS per signer per sweep. Callers check receipts before they act on a count.
 */
export async function countAtSettledCursor(sql: Sql, chain: ChainClients, address: Address): Promise<number | null> {
  const [cursor] = await sql<{ block_number: number }[]>`SELECT block_number FROM chain_cursors WHERE chain_id = ${chain.chainId}`
  if (!cursor) return null
  const settled = Math.max(0, cursor.block_number - (chain.config.confirmations - 1))
  // No fallback to the head's count here (transactionCountAt's): that would undo the depth rule. No answer, no count.
  return chain.read.getTransactionCount({ address, blockNumber: BigInt(settled) }).catch(() => null)
}
