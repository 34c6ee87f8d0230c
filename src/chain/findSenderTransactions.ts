import type { Address, Transaction } from 'viem'
import type { ChainClients } from './createChainClients.ts'

/** Past this many blocks, a search that cannot read past counts gives up rather than read every block in full. */
export const MAX_BLOCKS_READ_IN_FULL = 20_000
/** Counts are read at most this far back from the head (about 48 days of 1 s blocks). */
const MAX_BACK = 1n << 22n

/**
 * The mined transactions of `address` at nonces in [fromNonce, toNonce), found without an index by sender. The
 * address's transaction count only rises, by one per transaction: it is read at past blocks, going back from the
 * head until it is at most `fromNonce`, the blocks where it rose are found by halving, and only those are read in
 * full (about log2(blocks) reads per block holding one of them). A node without the state of past blocks (one
 * that prunes it) cannot answer counts there: then every block since `since` (found by its timestamp) is read in
 * full, up to MAX_BLOCKS_READ_IN_FULL.
 *
 * Throws when neither way can answer: the caller decides what not knowing means.
 */
export async function findSenderTransactions(chain: ChainClients, address: Address, fromNonce: number, toNonce: number, since: Date): Promise<Transaction[]> {
  if (toNonce <= fromNonce) return []
  const head = await chain.read.getBlockNumber({ cacheTime: 0 })
  let blocks: bigint[]
  try {
    blocks = await blocksWhereCountRose(chain, address, fromNonce, toNonce, head)
  } catch (err) {
    const lo = await blockAtOrBefore(chain, since, head)
    if (head - lo > BigInt(MAX_BLOCKS_READ_IN_FULL))
      throw new Error(`no provider answers ${address}'s transaction count at past blocks, and the ${head - lo} blocks since ${since.toISOString()} are too many to read in full`, { cause: err })
    blocks = Array.from({ length: Number(head - lo) }, (_, i) => lo + 1n + BigInt(i))
  }
  const mine = (tx: Transaction) => tx.from.toLowerCase() === address.toLowerCase() && tx.nonce >= fromNonce && tx.nonce < toNonce
  const found: Transaction[] = []
  for (let i = 0; i < blocks.length; i += 50) {
    const read = await Promise.all(blocks.slice(i, i + 50).map((blockNumber) => chain.read.getBlock({ blockNumber, includeTransactions: true })))
    for (const block of read) found.push(...block.transactions.filter(mine))
  }
  return found
}

/** The blocks up to `head` in which `address`'s count rose across a nonce in [fromNonce, toNonce). */
async function blocksWhereCountRose(chain: ChainClients, address: Address, fromNonce: number, toNonce: number, head: bigint): Promise<bigint[]> {
  const count = (blockNumber: bigint) => chain.read.getTransactionCount({ address, blockNumber })
  const atHead = await count(head)
  // A block before the first nonce sought: the window doubles back from the head.
  let lo = head
  let atLo = atHead
  for (let span = 64n; atLo > fromNonce && lo > 0n && span <= MAX_BACK * 2n; span *= 2n) {
    lo = head > span ? head - span : 0n
    atLo = await count(lo)
  }
  const blocks: bigint[] = []
  const split = async (a: bigint, atA: number, b: bigint, atB: number): Promise<void> => {
    if (atA >= atB || atB <= fromNonce || atA >= toNonce) return
    if (b - a === 1n) return void blocks.push(b)
    const mid = (a + b) / 2n
    const atMid = await count(mid)
    await Promise.all([split(a, atA, mid, atMid), split(mid, atMid, b, atB)])
  }
  // Nonces used in the genesis block (none on real chains) cannot be found this way: the window starts after lo.
  await split(lo, atLo, head, atHead)
  return blocks.sort((a, b) => (a < b ? -1 : 1))
}

/** The last block whose timestamp is at or before `time` (block 0 if none is), by halving over block headers. */
async function blockAtOrBefore(chain: ChainClients, time: Date, head: bigint): Promise<bigint> {
  const t = BigInt(Math.floor(time.getTime() / 1000))
  let lo = 0n
  let hi = head
  while (lo < hi) {
    const mid = (lo + hi + 1n) / 2n
    if ((await chain.read.getBlock({ blockNumber: mid })).timestamp <= t) lo = mid
    else hi = mid - 1n
  }
  return lo
}
