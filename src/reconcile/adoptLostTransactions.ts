import { keccak256, serializeTransaction, type Address, type Hex, type Transaction, type TransactionSerializable } from 'viem'
import type { ChainClients } from '../chain/createChainClients.ts'
import { findSenderTransactions, type SenderSearch } from '../chain/findSenderTransactions.ts'
import type { ServiceContext } from '../context.ts'

/** A search failing this long is given up: its nonces are handed on unchecked, with an error in the log. */
export const SEARCH_PATIENCE_MS = 10 * 60_000
/** When each search (chain, signer, first nonce) started failing; cleared when it succeeds or is given up. */
const failingSince = new Map<string, number>()

/** Block timestamps and this machine's clock may disagree by this much. */
const CLOCK_MARGIN_MS = 10 * 60_000

/**
 * The exact bytes of a mined transaction, rebuilt from its fields and signature; null for a type this service
 * never signs (it signs legacy and EIP-1559 only), or when the rebuilt bytes do not hash to it.
 */
export function rawOf(tx: Transaction, chainId: number): Hex | null {
  const base = { chainId, nonce: tx.nonce, gas: tx.gas, to: tx.to ?? null, value: tx.value, data: tx.input }
  let serializable: TransactionSerializable
  if (tx.type === 'eip1559') serializable = { ...base, type: 'eip1559', maxFeePerGas: tx.maxFeePerGas, maxPriorityFeePerGas: tx.maxPriorityFeePerGas, accessList: tx.accessList }
  else if (tx.type === 'legacy') serializable = { ...base, type: 'legacy', gasPrice: tx.gasPrice }
  else return null
  try {
    const raw = serializeTransaction(serializable, { r: tx.r, s: tx.s, v: tx.v, yParity: tx.yParity })
    return keccak256(raw) === tx.hash ? raw : null
  } catch {
    return null
  }
}

/**
 * Nonces of a signer the chain has used that this database has no transaction of ours at: the key used outside
 * the service, or our own transactions that this database forgot (restored from a backup, or commits lost in a
 * failover to a replica that lagged). Before the service hands those nonces on (the sign stage signing past them,
 * or the reconciler queueing again a request whose nonce was taken), it looks at what was mined there: a
 * transaction of this signer that is one of our unfinished requests (the same to, value and data, and gas limit
 * if it asked for one) is taken as that request's execution. A request QUEUED here (on this signer, or on any if
 * it named none) becomes PENDING at that nonce, a PENDING one gets the mined transaction as an attempt (a fee
 * raise this database never saw), and the watcher settles either from its receipt. Without this a restored
 * request was signed and executed a second time.
 *
 * Returns how many were taken, whether every nonce was looked at, and the hashes of every transaction found at those
 * nonces (lower case): a caller
 * that holds an attempt among them knows that attempt ran, even where no provider can find it by its hash any
 * more (a node that keeps no index of old transactions). Throws when a provider fails (the caller hands nothing on this time), for up to
 * SEARCH_PATIENCE_MS; a search the chain cannot answer in full (no old state, too many blocks), or failing past
 * that, is logged, and the nonces are handed on.
 */
export async function adoptLostTransactions(
  ctx: ServiceContext,
  chain: ChainClients,
  signer: Address,
  fromNonce: number,
  toNonce: number,
  /** No transaction of ours at those nonces was signed before this (with a margin for clocks): where a search that cannot read past counts starts. */
  signedAfter: Date,
): Promise<{ adopted: number; minedHashes: ReadonlySet<string>; complete: boolean }> {
  const { sql } = ctx.db
  if (toNonce <= fromNonce) return { adopted: 0, minedHashes: new Set(), complete: true }
  const key = `${chain.chainId}:${signer}:${fromNonce}`
  let search: SenderSearch
  try {
    search = await findSenderTransactions(chain, signer, fromNonce, toNonce, new Date(signedAfter.getTime() - CLOCK_MARGIN_MS))
    failingSince.delete(key)
  } catch (err) {
    // A provider failing the same search for this long may never answer it (one that refuses counts at past blocks
    // in words we do not know): the signer must not wait for ever. Handed on unchecked, said below.
    const first = failingSince.get(key) ?? Date.now()
    failingSince.set(key, first)
    if (Date.now() - first < SEARCH_PATIENCE_MS) throw err
    failingSince.delete(key)
    ctx.log.error({ err, chainId: chain.chainId, signer, fromNonce, toNonce }, `the search for this signer's nonces failed for ${SEARCH_PATIENCE_MS / 60_000} minutes`)
    search = { found: [], complete: false }
  }
  if (!search.complete)
    // Not knowing must not stop a signer for good (a node without old state, the key used by hand during a long
    // stop): the nonces are handed on as before, and the operator is told what could not be checked.
    ctx.log.error(
      { chainId: chain.chainId, signer, fromNonce, toNonce, found: search.found.length },
      'could not look at every nonce this signer used beyond what this database recorded (a provider without the state of past blocks, ' +
        'and too many blocks to read in full): they are handed on unchecked; if this database was restored from a backup, configure an archive provider and restart',
    )
  let adopted = 0
  const minedHashes = new Set(search.found.map((tx) => tx.hash.toLowerCase()))
  for (const tx of search.found) {
    const raw = rawOf(tx, chain.chainId)
    if (!raw) {
      // Not of a kind this service signs (or bytes it cannot rebuild): not one of ours, said in case it was.
      ctx.log.info({ chainId: chain.chainId, signer, nonce: tx.nonce, hash: tx.hash, type: tx.type }, 'a transaction of this signer beyond our record is not one this service could have signed')
      continue
    }
    const taken = await sql.begin(async (q) => {
      // PENDING at that very nonce first (its raise was forgotten), else the oldest QUEUED one (signed in seq order),
      // of this signer or of none in particular: a request that named no signer may have moved to this one after
      // the backup (moveToFundedSigner.ts), and the restored row still names the one it left.
      const [row] = await q<{ id: string; status: string; execution: number; signer: string }[]>`
        SELECT id, status, execution, signer FROM transactions
        WHERE chain_id = ${chain.chainId} AND kind = 'REQUEST'
          AND ((status = 'PENDING' AND signer = ${signer} AND nonce = ${tx.nonce}) OR (status = 'QUEUED' AND (signer = ${signer} OR NOT signer_pinned)))
          AND lower(coalesce("to", '')) = ${(tx.to ?? '').toLowerCase()} AND lower(data) = ${tx.input.toLowerCase()} AND value = ${tx.value.toString()}
          AND (gas_limit IS NULL OR gas_limit = ${tx.gas.toString()})
        ORDER BY status = 'PENDING' DESC, signer = ${signer} DESC, seq LIMIT 1 FOR UPDATE`
      if (!row) return null
      // Ours and known (another instance, or the sign stage beside the reconciler, took it first: the row lock above
      // waited for it).
      if ((await q`SELECT 1 FROM attempts WHERE hash = ${tx.hash}`).length) return null
      if (row.status === 'QUEUED') {
        // Another row of ours holding the nonce is the reconciler's to judge, not this.
        if ((await q`SELECT 1 FROM transactions WHERE chain_id = ${chain.chainId} AND signer = ${signer} AND nonce = ${tx.nonce}`).length) return null
        await q`
          UPDATE transactions SET status = 'PENDING', signer = ${signer}, nonce = ${tx.nonce}, error_code = NULL, error_message = NULL, waiting_since = NULL, refused_by = NULL,
            first_sent_at = coalesce(first_sent_at, now()), last_sent_at = now(), updated_at = now()
          WHERE id = ${row.id} AND status = 'QUEUED'`
      }
      await q`
        INSERT INTO attempts (transaction_id, execution, chain_id, signer, nonce, hash, raw, gas_limit, max_fee_per_gas, max_priority_fee_per_gas, gas_price, status, sent_at)
        VALUES (${row.id}, ${row.execution}, ${chain.chainId}, ${signer}, ${tx.nonce}, ${tx.hash}, ${raw}, ${tx.gas.toString()},
                ${tx.type === 'eip1559' ? tx.maxFeePerGas.toString() : null}, ${tx.type === 'eip1559' ? tx.maxPriorityFeePerGas.toString() : null},
                ${tx.type === 'legacy' ? tx.gasPrice.toString() : null}, 'SENT', now())`
      await q`
        INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
        VALUES (${row.id}, ${row.status}, 'PENDING', ${q.json({ reason: 'found_on_chain', nonce: tx.nonce, hash: tx.hash, ...(row.signer !== signer ? { from: row.signer, to: signer } : {}) })}::jsonb)`
      return row
    })
    if (!taken) continue
    adopted++
    ctx.log.warn(
      { chainId: chain.chainId, signer, nonce: tx.nonce, hash: tx.hash, txId: taken.id, was: taken.status },
      'a transaction of this signer mined at a nonce this database did not record is one of its requests (restored from a backup, or commits lost): taken as its execution, not sent again',
    )
  }
  return { adopted, minedHashes, complete: search.complete }
}

/** Per chain's clients (one set per service): the check below under way, and the signers it has done. */
const checkedAtStart = new WeakMap<ChainClients, { running: Promise<void> | null; done: Set<string>; complete: boolean }>()
/** Signers looked at in parallel by the check below. */
const CHECK_CONCURRENCY = 4

/**
 * Once per process and chain, before the chain's first sign batch: every signer's nonces beyond this database's
 * record (adoptLostTransactions), for signers no longer configured too (a request that named none may have been
 * mined on one). A restored request that named no signer may have been mined on a signer that has nothing
 * waiting of its own, whose own checks would come too late: the signer the request waits on here could sign it
 * again first. Signers are looked at a few at a time; those done stay done, and one that failed (a provider
 * error) is looked at again at the next batch, none of the chain's batches signing meanwhile.
 */
export async function adoptLostOnChainOnce(ctx: ServiceContext, chain: ChainClients): Promise<void> {
  let state = checkedAtStart.get(chain)
  if (!state) checkedAtStart.set(chain, (state = { running: null, done: new Set(), complete: false }))
  if (state.complete) return
  const s = state
  s.running ??= (async () => {
    const rows = await ctx.db.sql<{ signer: Address; next_nonce: number; updated_at: Date }[]>`
      SELECT signer, next_nonce, updated_at FROM signer_nonces WHERE chain_id = ${chain.chainId}`
    const todo = rows.filter((r) => !s.done.has(r.signer))
    const failures: unknown[] = []
    for (let i = 0; i < todo.length; i += CHECK_CONCURRENCY)
      await Promise.all(
        todo.slice(i, i + CHECK_CONCURRENCY).map(async (r) => {
          try {
            const latest = await chain.read.getTransactionCount({ address: r.signer, blockTag: 'latest' })
            if (latest > r.next_nonce) await adoptLostTransactions(ctx, chain, r.signer, r.next_nonce, latest, r.updated_at)
            s.done.add(r.signer)
          } catch (err) {
            failures.push(err)
          }
        }),
      )
    if (failures.length) throw failures[0]
    s.complete = true
  })().finally(() => {
    s.running = null
  })
  await s.running
}
