import type { TransactionSql } from 'postgres'
import type { Address } from 'viem'
import type { ChainClients } from '../chain/createChainClients.ts'
import { readFeeMarketAt, type readFeeMarket } from '../chain/readFeeMarket.ts'
import { describeSendAnswer, toSendAnswer } from '../chain/toSendAnswer.ts'
import type { Sql } from '../db/connect.ts'
import type { Signer } from '../signers/loadSigners.ts'

export type SignerState = {
  market: Awaited<ReturnType<typeof readFeeMarket>>
  balance: bigint
  chainNonce: number
}

/**
 * What the signer's transactions at nonces from `chainNonce` on may spend (the latest attempt's gas × max fee +
 * value each): the balance read with that count has not paid for any of them, mined since or not. Counted as
 * free, a request the signer could not pay for after them got a nonce anyway, was refused by the node as short
 * of funds, and held every later (affordable) transaction behind it. Read under the signer's row lock, so it
 * includes every instance's batches committed before this one.
 */
export async function spendNotInBalance(sql: Sql | TransactionSql<{ int8: number }>, chainId: number, signer: string, chainNonce: number): Promise<bigint> {
  const [row] = await sql<{ wei: string }[]>`
    SELECT COALESCE(sum(a.gas_limit * COALESCE(a.max_fee_per_gas, a.gas_price) + t.value), 0)::text AS wei
    FROM transactions t
    JOIN LATERAL (SELECT gas_limit, max_fee_per_gas, gas_price FROM attempts WHERE transaction_id = t.id AND execution = t.execution ORDER BY id DESC LIMIT 1) a ON true
    WHERE t.chain_id = ${chainId} AND t.signer = ${signer} AND t.nonce >= ${chainNonce} AND t.nonce IS NOT NULL`
  return BigInt(row?.wei ?? '0')
}

/**
 * The signer's balance and mined transaction count, both of one block. Read each at `latest`, a node (or the
 * nodes behind one load-balanced URL) could answer them from two blocks: a balance from before a transaction of
 * ours was mined, with a count that already has it, counts its cost as not yet spent and not yet paid, and a
 * request the signer could not pay for got a nonce (and waited at it, holding every later one). A node that does
 * not have that block yet (it is behind the one that answered it) is asked for `latest`.
 */
function balanceAndCountAt(chain: ChainClients, address: Address, blockNumber: bigint): Promise<[bigint, number]> {
  const read = (at: { blockNumber: bigint } | { blockTag: 'latest' }) =>
    Promise.all([chain.read.getBalance({ address, ...at }), chain.read.getTransactionCount({ address, ...at })])
  return read({ blockNumber }).catch((err: unknown) => {
    // Only "no such block" (a node behind the one that answered it): any other failure (a timeout) is the read's,
    // not a reason to ask again at `latest`, which would also bring back reads from two blocks.
    if (!BLOCK_UNKNOWN.test(describeSendAnswer(toSendAnswer(err)) ?? '')) throw err
    return read({ blockTag: 'latest' })
  })
}

/** How nodes say they do not have a block (geth, Erigon, Besu, Nethermind, providers in front of them). */
const BLOCK_UNKNOWN = /header not found|block not found|unknown block|could not be found|not available|missing trie node/i

/** Per chain and signer: the last reads, so back-to-back batches do not ask the node again. */
const recentState = new WeakMap<ChainClients, Map<string, { at: number; state: Promise<SignerState>; refreshing?: Promise<SignerState> }>>()

/** Per chain and signer: the block of the last fee market read, the next read's balance and count are of. */
const recentBlocks = new WeakMap<ChainClients, Map<string, { at: number; blockNumber: bigint }>>()
/** A block older than this is not pinned to (a node prunes old state; a count that old says little). */
const PIN_MAX_AGE_MS = 30_000

/** How many times the fresh age a read may be served while a newer one is on its way (see readSignerState). */
const STALE_FACTOR = 5

/**
 * The fee market, the signer's balance and its mined transaction count (these two of one block, the last fee
 * market read's: balanceAndCountAt). While a backlog drains, batches
 * follow each other within milliseconds, and these reads queued behind the node's intake of the previous
 * batch's sends (tens of ms per batch): they are reused for half a block (at most 1 s). Nothing depends on
 * them being newer: the balance and count are of the latest block, which that window does not change by
 * more than one block, and the nonce is only ever raised to the count.
 *
 * Past that age a new read starts, but the batch does not wait for it while the last one is under
 * STALE_FACTOR times the age (at most 5 s): a node busy with a large block (anvil builds receipts for
 * seconds and answers nothing else meanwhile) used to stall signing for as long as it stalled the read.
 * A count a few blocks old is still only a floor, the balance check subtracts what every transaction at a
 * nonce from that count on may spend (spendNotInBalance), and fees a few blocks old are what the bump stage corrects.
 */
export function readSignerState(chain: ChainClients, signer: Signer): Promise<SignerState> {
  let bySigner = recentState.get(chain)
  if (!bySigner) recentState.set(chain, (bySigner = new Map()))
  const cache = bySigner
  const maxAgeMs = Math.min(1_000, chain.config.blockTimeMs / 2)
  let lastBlock = recentBlocks.get(chain)
  if (!lastBlock) recentBlocks.set(chain, (lastBlock = new Map()))
  const hit = cache.get(signer.address)
  const age = hit ? Date.now() - hit.at : Infinity
  if (hit && age < maxAgeMs) return hit.state
  const read = async (): Promise<SignerState> => {
    // Balance and count at the block of the last read's fee market, in the same batch as today's fee market: one
    // round trip, as when all three were read at `latest`. Without a recent one, that block is read first.
    const last = lastBlock.get(signer.address)
    const pin = last && Date.now() - last.at < PIN_MAX_AGE_MS ? last.blockNumber : null
    const [{ market, blockNumber }, pinned] = await Promise.all([
      readFeeMarketAt(chain.read, chain.config.fees.model),
      pin === null ? null : balanceAndCountAt(chain, signer.address, pin),
    ])
    lastBlock.set(signer.address, { at: Date.now(), blockNumber })
    const [balance, chainNonce] = pinned ?? (await balanceAndCountAt(chain, signer.address, blockNumber))
    return { market, balance, chainNonce }
  }
  if (hit && age < maxAgeMs * STALE_FACTOR) {
    // Serve the last read; refresh once in the background (a failed refresh is tried again by the next batch).
    if (!hit.refreshing) {
      const refreshing = read()
      hit.refreshing = refreshing
      refreshing.then(
        (fresh) => cache.get(signer.address) === hit && cache.set(signer.address, { at: Date.now(), state: Promise.resolve(fresh) }),
        () => cache.get(signer.address) === hit && (hit.refreshing = undefined),
      )
    }
    return hit.state
  }
  const state = hit?.refreshing ?? read()
  const entry = { at: Date.now(), state }
  cache.set(signer.address, entry)
  // A failed read is not reused.
  state.catch(() => cache.get(signer.address) === entry && cache.delete(signer.address))
  return state
}
