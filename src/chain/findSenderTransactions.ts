import type { Address, Transaction } from 'viem'
import type { ChainClients } from './createChainClients.ts'

/** Past this many blocks, a search that cannot read past counts gives up rather than read every block in full. */
export const MAX_BLOCKS_READ_IN_FULL = 20_000
/** Counts are read at most this far back from the head (about 48 days of 1 s blocks). */
const MAX_BACK = 1n << 22n
/** Reads in flight at once: a gap of thousands of nonces must not become thousands of calls at once. */
const CONCURRENT_READS = 8

export type SenderSearch = {
  found: Transaction[]
  /**
   * Every nonce sought was found. False when the chain could not be searched far enough: no provider answers counts
   * at past blocks and the blocks since `since` are too many to read in full, or the nonces lie further back than
   * the search goes. The caller decides what not knowing means.
   */
  complete: boolean
}

/**
 * The mined transactions of `address` at nonces in [fromNonce, toNonce), found without an index by sender. The
 * address's transaction count only rises, by one per transaction (the count at block b counts those mined up to
 * and including b): it is read at past blocks, going back from the head until it is at most `fromNonce`, the
 * blocks where it rose are found by halving, and only those are read in full (about log2(blocks) reads per block
 * holding one of them). A node without the state of past blocks (one that prunes it) cannot answer counts there:
 * then every block since `since` (found by its timestamp) is read in full, up to MAX_BLOCKS_READ_IN_FULL.
 *
 * Throws when a provider fails (asked again later): a search that could not run is never taken as "none there".
 */
export async function findSenderTransactions(chain: ChainClients, address: Address, fromNonce: number, toNonce: number, since: Date): Promise<SenderSearch> {
  if (toNonce <= fromNonce) return { found: [], complete: true }
  const read = limiter(CONCURRENT_READS)
  const head = await chain.read.getBlockNumber({ cacheTime: 0 })
  const atHead = await chain.read.getTransactionCount({ address, blockNumber: head })
  // The count came from a provider further on than this one's head: asked again once it has caught up.
  if (atHead < toNonce) throw new Error(`the provider's head (block ${head}) has ${address}'s count at ${atHead}, below ${toNonce}: not caught up yet`)
  let blocks: bigint[]
  try {
    blocks = await blocksWhereCountRose((b) => read(() => chain.read.getTransactionCount({ address, blockNumber: b })), fromNonce, toNonce, head, atHead)
  } catch (err) {
    // Only a node without that state: any other failure (a rate limit, a timeout) is asked again later, never taken
    // for "cannot be searched", which hands the nonces on unchecked.
    if (!isStateUnavailable(err)) throw err
    const lo = await blockAtOrBefore(chain, since, head)
    if (head - lo > BigInt(MAX_BLOCKS_READ_IN_FULL)) return { found: [], complete: false }
    blocks = Array.from({ length: Number(head - lo) }, (_, i) => lo + 1n + BigInt(i))
  }
  const mine = (tx: Transaction) => tx.from.toLowerCase() === address.toLowerCase() && tx.nonce >= fromNonce && tx.nonce < toNonce
  const found: Transaction[] = []
  for (let i = 0; i < blocks.length; i += 50) {
    const full = await Promise.all(blocks.slice(i, i + 50).map((blockNumber) => read(() => chain.read.getBlock({ blockNumber, includeTransactions: true }))))
    for (const block of full) found.push(...block.transactions.filter(mine))
  }
  const nonces = new Set(found.map((tx) => tx.nonce))
  let complete = true
  for (let n = fromNonce; n < toNonce && complete; n++) complete = nonces.has(n)
  return { found, complete }
}

/** The blocks up to `head` in which the count rose across a nonce in [fromNonce, toNonce). */
async function blocksWhereCountRose(count: (block: bigint) => Promise<number>, fromNonce: number, toNonce: number, head: bigint, atHead: number): Promise<bigint[]> {
  // A block before the first nonce sought: the window doubles back from the head.
  let lo = head
  let atLo = atHead
  for (let span = 64n; atLo > fromNonce && lo > 0n && span <= MAX_BACK; span *= 2n) {
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
  await split(lo, atLo, head, atHead)
  return blocks.sort((a, b) => (a < b ? -1 : 1))
}

/** What nodes answer for a block whose state they no longer keep (geth, Erigon, Nethermind, Reth and providers' words). */
const STATE_UNAVAILABLE = /missing trie node|header not found|state (is )?not available|no state (is )?available|state histor|historical state|pruned|not an archive|archive node|unknown block|block not found|could not be found/i

export function isStateUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { message, details, shortMessage } = e as { message?: string; details?: string; shortMessage?: string }
    if ([message, details, shortMessage].some((m) => typeof m === 'string' && STATE_UNAVAILABLE.test(m))) return true
  }
  return false
}

/**
 * The last block whose timestamp is at or before `time` (block 0 if none is): back from the head by doubling steps,
 * then halving, so only recent headers are read (a node may not serve old ones at all).
 */
async function blockAtOrBefore(chain: ChainClients, time: Date, head: bigint): Promise<bigint> {
  const t = BigInt(Math.floor(time.getTime() / 1000))
  const at = async (n: bigint) => (await chain.read.getBlock({ blockNumber: n })).timestamp
  let hi = head
  let step = 1n
  let lo = head
  for (;;) {
    lo = head > step ? head - step : 0n
    if (lo === 0n || (await at(lo)) <= t) break
    hi = lo
    step *= 2n
  }
  if (lo === 0n && (await at(0n)) > t) return 0n
  while (lo < hi) {
    const mid = (lo + hi + 1n) / 2n
    if ((await at(mid)) <= t) lo = mid
    else hi = mid - 1n
  }
  return lo
}

/** Runs at most `n` of the functions given to it at once, the others in turn. */
function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0
  const waiting: Array<() => void> = []
  return async (fn) => {
    while (active >= n) await new Promise<void>((resolve) => waiting.push(resolve))
    active++
    try {
      return await fn()
    } finally {
      active--
      waiting.shift()?.()
    }
  }
}
