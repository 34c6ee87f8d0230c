import type { Transaction } from 'viem'
import { describe, expect, it } from 'vitest'
import type { ChainClients } from './createChainClients.ts'
import { findSenderTransactions, MAX_BLOCKS_READ_IN_FULL } from './findSenderTransactions.ts'

const ME = '0x00000000000000000000000000000000000000aa'
const OTHER = '0x00000000000000000000000000000000000000bb'

/** A chain of `blocks` one-second blocks where ME sends its nonces in the blocks `at` gives; counts fail below `stateFrom`. */
function fakeChain(opts: { blocks: number; at: Map<number, number>; stateFrom?: number; headLag?: number; blocksFrom?: number; rateLimitCount?: number }) {
  const calls = { counts: 0, blocks: 0 }
  const txsIn = (b: number) =>
    [...opts.at].filter(([, block]) => block === b).map(([nonce]) => ({ from: ME, nonce, hash: `0x${nonce}` }) as unknown as Transaction)
  const countAt = (b: number) => [...opts.at.values()].filter((block) => block <= b).length
  const read = {
    getBlockNumber: async () => BigInt(opts.blocks - 1 - (opts.headLag ?? 0)),
    getTransactionCount: async ({ blockNumber }: { blockNumber: bigint }) => {
      calls.counts++
      if (calls.counts === opts.rateLimitCount) throw new Error('HTTP request failed. Status: 429. Details: too many requests')
      if (Number(blockNumber) < (opts.stateFrom ?? 0)) throw new Error('missing trie node 1f2e (path )')
      return countAt(Number(blockNumber))
    },
    getBlock: async ({ blockNumber, includeTransactions }: { blockNumber: bigint; includeTransactions?: boolean }) => {
      if (includeTransactions) calls.blocks++
      const b = Number(blockNumber)
      if (b < (opts.blocksFrom ?? 0)) throw new Error(`Block at number "${b}" could not be found.`)
      return { number: blockNumber, timestamp: BigInt(1_000_000 + b), transactions: [...txsIn(b), { from: OTHER, nonce: 0 } as unknown as Transaction] }
    },
  }
  return { chain: { read } as unknown as ChainClients, calls }
}
const at = (pairs: Array<[nonce: number, block: number]>) => new Map(pairs)
const since = (block: number) => new Date((1_000_000 + block) * 1000)

describe('findSenderTransactions', () => {
  it('finds each nonce sought in the block that holds it, reading counts at a few past blocks and only those blocks in full', async () => {
    const nonces = at([[0, 10], [1, 500], [2, 501], [3, 501], [4, 90_000], [5, 99_990]])
    const { chain, calls } = fakeChain({ blocks: 100_000, at: nonces })
    const search = await findSenderTransactions(chain, ME, 1, 5, since(0))
    expect(search.complete).toBe(true)
    expect(search.found.map((t) => t.nonce).sort()).toEqual([1, 2, 3, 4])
    expect(calls.blocks).toBe(3) // 500, 501, 90,000
    expect(calls.counts).toBeLessThan(120)
  })

  it('without past state, reads every block since `since` in full; too many of them: incomplete, not "none there"', async () => {
    const nonces = at([[0, 10], [1, 95_000], [2, 99_000]])
    const pruned = fakeChain({ blocks: 100_000, at: nonces, stateFrom: 99_900 })
    const search = await findSenderTransactions(pruned.chain, ME, 1, 3, since(94_000))
    expect(search).toMatchObject({ complete: true })
    expect(search.found.map((t) => t.nonce).sort()).toEqual([1, 2])
    expect(pruned.calls.blocks).toBe(5_999)
    const far = fakeChain({ blocks: 100_000, at: nonces, stateFrom: 99_900 })
    expect(await findSenderTransactions(far.chain, ME, 1, 3, since(99_999 - MAX_BLOCKS_READ_IN_FULL - 1))).toEqual({ found: [], complete: false })
    // A `since` after a nonce sought: the nonce is missed, and the search says so.
    const late = fakeChain({ blocks: 100_000, at: nonces, stateFrom: 99_900 })
    const missed = await findSenderTransactions(late.chain, ME, 1, 3, since(96_000))
    expect(missed.found.map((t) => t.nonce)).toEqual([2])
    expect(missed.complete).toBe(false)
  })

  it('a provider failing otherwise (a rate limit) throws, to be asked again: never taken for a node without old state', async () => {
    const { chain } = fakeChain({ blocks: 100_000, at: at([[0, 10], [1, 60_000], [2, 99_000]]), rateLimitCount: 5 })
    await expect(findSenderTransactions(chain, ME, 1, 3, since(0))).rejects.toThrow(/429/)
  })

  it('a node that keeps neither old state nor old blocks: the blocks since `since` are found going back from the head', async () => {
    const { chain } = fakeChain({ blocks: 100_000, at: at([[0, 10], [1, 99_500]]), stateFrom: 99_900, blocksFrom: 90_000 })
    const search = await findSenderTransactions(chain, ME, 1, 2, since(99_000))
    expect(search).toMatchObject({ complete: true })
    expect(search.found.map((t) => t.nonce)).toEqual([1])
  })

  it('a head behind the count asked about throws (asked again later), rather than answer for fewer nonces', async () => {
    const { chain } = fakeChain({ blocks: 1_000, at: at([[0, 10], [1, 999]]), headLag: 1 })
    await expect(findSenderTransactions(chain, ME, 0, 2, since(0))).rejects.toThrow(/not caught up/)
  })
})
