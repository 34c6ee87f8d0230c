import type { TransactionSql } from 'postgres'
import type { ChainClients } from '../chain/createChainClients.ts'
import { readFeeMarket } from '../chain/readFeeMarket.ts'
import type { Sql } from '../db/connect.ts'
import type { Signer } from '../signers/loadSigners.ts'

export type SignerState = {
  market: Awaited<ReturnType<typeof readFeeMarket>>
  balance: bigint
  chainNonce: number
}

/**
 * What the signer's transactions at nonces from `chainNonce` on may spend (each: the most any attempt of its
 * execution that a node may hold could cost, gas × max fee, plus the value for the request's own bytes): the
 * balance read with that count has not paid for any of them, mined since or not. The latest attempt alone
 * under-counted a request replaced by a cancel nodes refused (past its deadline at the fee cap): the request's own
 * bytes, held by the nodes, cost its whole gas limit and value, and a later request signed on that money was refused
 * as short of funds, with every nonce after it. Counted as
 * free, a request the signer could not pay for after them got a nonce anyway, was refused by the node as short
 * of funds, and held every later (affordable) transaction behind it. Read under the signer's row lock, so it
 * includes every instance's batches committed before this one.
 */
export async function spendNotInBalance(sql: Sql | TransactionSql<{ int8: number }>, chainId: number, signer: string, chainNonce: number): Promise<bigint> {
  // From the signer's attempts at those nonces (attempts_nonce_idx), each joined to its transaction by id: an
  // execution's attempts all carry its nonce, so these are the attempts of the transactions at those nonces. Also
  // counted (it was not before): an attempt of one that FAILED since (its nonce cleared) whose late "sent" answer made
  // it SENT; those bytes may still mine.
  // Read per transaction (a lateral lookup of its attempts each), it cost 20-37 µs a row on a busy database,
  // 30-50 ms under the signer's lock for each batch of a burst's drain with 1,300 signed and not yet mined. No
  // condition on the transactions' own columns: with a fresh table's statistics the planner took both sides
  // for one row and joined them by a nested loop over the whole range, quadratic (362 ms for 1,400).
  const [row] = await sql<{ wei: string }[]>`
    SELECT COALESCE(sum(m.wei), 0)::text AS wei FROM (
      SELECT max(a.gas_limit * COALESCE(a.max_fee_per_gas, a.gas_price) + CASE WHEN a.purpose = 'REQUEST' THEN t.value ELSE 0 END) AS wei
      FROM attempts a JOIN transactions t ON t.id = a.transaction_id AND t.execution = a.execution
      WHERE a.chain_id = ${chainId} AND a.signer = ${signer} AND a.nonce >= ${chainNonce} AND a.status <> 'REJECTED'
      GROUP BY a.transaction_id) m`
  return BigInt(row?.wei ?? '0')
}

/** Per chain and signer: the last reads, so back-to-back batches do not ask the node again. */
const recentState = new WeakMap<ChainClients, Cache>()

/** How many times the fresh age a read may be served while a newer one is on its way (see readSignerState). */
const STALE_FACTOR = 5

/** A move's read started this recently is shared by other moves (several short signers' at once, one target). */
const FRESH_MS = 250

/** Per chain and signer: the last fresh read (readSignerState's `fresh`), on its way or answered. */
const freshReads = new WeakMap<ChainClients, Map<string, { at: number; state: Promise<SignerState> }>>()

type Cache = Map<string, { at: number; state: Promise<SignerState>; refreshing?: Promise<SignerState> }>

function readFresh(chain: ChainClients, signer: Signer, cache: Cache, read: () => Promise<SignerState>): Promise<SignerState> {
  let inFlight = freshReads.get(chain)
  if (!inFlight) freshReads.set(chain, (inFlight = new Map()))
  const reads = inFlight
  const now = Date.now()
  // Not the sign stage's cached read, however young: it may be from just before the balance changed (a request
  // signed, then the wallet swept), which is what a move must not go by. Another move's read started since is shared.
  const going = reads.get(signer.address)
  if (going && now - going.at < FRESH_MS) return going.state
  const state = read()
  const entry = { at: now, state }
  reads.set(signer.address, entry)
  state.then(
    (answered) => {
      const current = cache.get(signer.address)
      if (!current || current.at < now) cache.set(signer.address, { at: now, state: Promise.resolve(answered) })
    },
    () => {},
  )
  // Answered, it is still shared for the rest of FRESH_MS (moves come with every sign batch of every short signer);
  // a failed one is not.
  state.catch(() => reads.get(signer.address) === entry && reads.delete(signer.address))
  return state
}

/**
 * The fee market, the signer's balance and its mined transaction count. While a backlog drains, batches
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
 *
 * `fresh`: a read started for it, or by another such caller at most FRESH_MS ago, for a decision another signer's
 * sign stage does not check again under its lock: moving a request to a signer on a balance read up to 5 s old,
 * from before that signer was drained, handed it to a signer that could not pay (moveToFundedSigner.ts). Kept for
 * the sign stage's batches once it is answered, not before: a node slow to answer it must not stall their signing
 * on the last read.
 */
export function readSignerState(chain: ChainClients, signer: Signer, { fresh = false }: { fresh?: boolean } = {}): Promise<SignerState> {
  let bySigner = recentState.get(chain)
  if (!bySigner) recentState.set(chain, (bySigner = new Map()))
  const cache = bySigner
  const maxAgeMs = Math.min(1_000, chain.config.blockTimeMs / 2)
  const read = (): Promise<SignerState> =>
    Promise.all([
      readFeeMarket(chain.read, chain.config.fees.model),
      chain.read.getBalance({ address: signer.address, blockTag: 'latest' }),
      chain.read.getTransactionCount({ address: signer.address, blockTag: 'latest' }),
    ]).then(([market, balance, chainNonce]) => ({ market, balance, chainNonce }))
  if (fresh) return readFresh(chain, signer, cache, read)
  const hit = cache.get(signer.address)
  const age = hit ? Date.now() - hit.at : Infinity
  if (hit && age < maxAgeMs) return hit.state
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
