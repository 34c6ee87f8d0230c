import type { Address, Hex } from 'viem'
import { heldOrAbsent } from '../chain/askEachProvider.ts'
import { countAtSettledCursor } from '../chain/countAtSettledCursor.ts'
import { findSenderTransactions } from '../chain/findSenderTransactions.ts'
import { receiptOrNull } from '../chain/receiptOrNull.ts'
import { describeSendAnswer, toSendAnswer } from '../chain/toSendAnswer.ts'
import { pickSigner } from '../accept/acceptTransaction.ts'
import type { ChainClients } from '../chain/createChainClients.ts'
import type { ServiceContext } from '../context.ts'
import { ERROR_CODE, InputError } from '../core/errors.ts'
import { bossDb, QUEUE, signJobKey } from '../jobs/queues.ts'
import { clearMinedColumns } from '../store/minedColumns.ts'
import type { TransactionRow } from '../store/transactionRow.ts'

/**
 * Why a FAILED request may not be retried yet, or null. Most FAILED requests were never signed. Those the
 * reconciler failed after their nonce was given (every provider refused them, SEND_REFUSED; or as invalid) hold
 * signed bytes that a node we do not ask (one marked down, a private pool) may still mine: a retry then ran the
 * request twice. Such a retry waits until another transaction is final at that nonce (the zero-value filler
 * the reconciler sends, in a block that is still the chain's; or one sent from the key outside the service), and
 * is refused for good once one of its attempts was mined.
 */
/** A reason a retry is refused for good (its bytes ran), as opposed to one it may be asked again after (a string). */
class Never {
  constructor(readonly text: string) {}
}

async function signedBytesMayRun(ctx: ServiceContext, chain: ChainClients, row: TransactionRow): Promise<string | Never | null> {
  const { sql } = ctx.db
  const { id, signer } = row
  const attempts = await sql<{ hash: Hex; nonce: number; created_at: Date }[]>`
    SELECT a.hash, a.nonce::int AS nonce, a.created_at FROM attempts a JOIN transactions t ON t.id = a.transaction_id AND a.execution = t.execution
    WHERE t.id = ${id} AND t.status = 'FAILED'`
  if (attempts.length === 0) return null
  return checkOnChain(chain, async () => {
    const receipts = await Promise.all(attempts.map((a) => receiptOrNull(chain, a.hash)))
    const mined = receipts.find((r) => r !== null)
    if (mined) return new Never(`its signed attempt ${mined.transactionHash} was mined in block ${mined.blockNumber} after it was failed: the request ran, and a retry would run it again`)
    // Proof in the database, not a count: the nonce's count is met by the request's own bytes too, when its receipt
    // lookup lags. A final transaction of ours at that nonce (the filler, mined at the confirmation depth) is proof
    // that none of its attempts can be mined.
    const nonce = Math.min(...attempts.map((a) => a.nonce))
    const [filled] = await sql<{ id: string; block_number: number; block_hash: Hex }[]>`
      SELECT id, block_number, block_hash FROM transactions WHERE chain_id = ${chain.chainId} AND signer = ${signer} AND nonce = ${nonce} AND id <> ${id}
        AND status IN ('CONFIRMED', 'REVERTED', 'CANCELLED')`
    const mayStill = `its execution was signed at nonce ${nonce}, and those bytes may still be mined until another transaction of this key is final at that nonce (the service fills it with a zero-value self-transfer): retry after that`
    if (!filled) {
      const used = await nonceUsedByAnother(ctx, chain, signer, nonce, attempts)
      return used === false ? mayStill : used
    }
    // And that one's block still the chain's: after a deep reorg its row may be stale, the request's own bytes mined
    // in its place.
    const block = await chain.read.getBlock({ blockNumber: BigInt(filled.block_number) })
    if (block.hash !== filled.block_hash) return mayStill
    return null
  })
}

/**
 * Whether a transaction that is none of ours took the nonce: the key was used outside the service (or the filler
 * mined but is not settled yet). No filler of ours is ever final there then, and the retry waited for one for ever.
 * The same proof the reconciler asks before it signs a PENDING request again at a new nonce: the chain's count at
 * the confirmation depth, up to where the watcher has settled what it found of ours, is past the nonce, and no
 * provider has any of the request's attempts, mined or pooled (a receipt can lag; a hash every node denies is gone).
 * Null when another took it (the retry may go), Never when the one mined there is its own, false when unproven.
 */
async function nonceUsedByAnother(ctx: ServiceContext, chain: ChainClients, signer: string, nonce: number, attempts: { hash: Hex; created_at: Date }[]): Promise<false | null | Never> {
  const settled = await countAtSettledCursor(ctx.db.sql, chain, signer as Address)
  if (settled === null || settled <= nonce) return false
  const held = await Promise.all(attempts.map((a) => heldOrAbsent(chain, a.hash)))
  if (!held.every((h) => h === 'absent')) return false
  // "No provider has it by its hash" is no proof where nodes keep no index of old transactions: the one mined at
  // that nonce is looked at, and if it is one of its attempts, the request ran.
  const since = new Date(Math.min(...attempts.map((a) => a.created_at.getTime())) - 10 * 60_000)
  const { found, complete } = await findSenderTransactions(chain, signer as Address, nonce, nonce + 1, since)
  const ours = found.find((tx) => attempts.some((a) => a.hash.toLowerCase() === tx.hash.toLowerCase()))
  if (ours) return new Never(`its signed attempt ${ours.hash} was mined in block ${ours.blockNumber} after it was failed: the request ran, and a retry would run it again`)
  // The blocks since it was signed could not be searched (a node without past state): not proven.
  return complete ? null : false
}

/**
 * Why a REVERTED request may not be retried yet, or null. Its nonce is spent by its own attempt, in the block
 * stored with it, as long as that block is the chain's: after a reorg deeper than the confirmation depth (a
 * depth of 1 is one block) its bytes go back to the nodes' pools and may be mined again, and may succeed there.
 * Retried meanwhile, the request ran twice; the watcher settles the row again where it is mined.
 */
async function revertedBlockGone(chain: ChainClients, row: TransactionRow): Promise<string | null> {
  if (row.block_number === null) return null
  return checkOnChain(chain, async () => {
    const block = await chain.read.getBlock({ blockNumber: BigInt(row.block_number!) })
    if (block.hash === row.block_hash) return null
    return `its block ${row.block_number} (${row.block_hash}) is no longer the chain's: its bytes may be mined again (and succeed), and the watcher settles it where they are; retry after that`
  })
}

/** A check on the chain; its providers not answering is a 503, as a cancel says it, not a state the transaction is in. */
async function checkOnChain<T>(chain: ChainClients, check: () => Promise<T>): Promise<T> {
  try {
    return await check()
  } catch (err) {
    throw new InputError(
      ERROR_CODE.UNAVAILABLE,
      `Not retried: could not check on chain ${chain.chainId} that its signed bytes cannot still be mined (${chain.redact(describeSendAnswer(toSendAnswer(err)) ?? 'no answer')}); try again later`,
      'id',
      503,
    )
  }
}

/** Why this row cannot be retried at all, from the row alone (checked before anything is asked of the chain). */
function refuseUnlessRetriable(row: TransactionRow): void {
  if (row.kind !== 'REQUEST')
    throw new InputError(ERROR_CODE.INVALID_STATE, 'Only requests can be retried; this one is a filler (a zero-value self-transfer the service sent to fill a nonce)', 'id', 409)
  if (row.status !== 'FAILED' && row.status !== 'REVERTED')
    throw new InputError(ERROR_CODE.INVALID_STATE, `Only FAILED or REVERTED transactions can be retried; this one is ${row.status}`, 'id', 409)
  // Retried, it would only expire again (it did, within seconds): the client's deadline stands.
  if (row.valid_until && row.valid_until.getTime() <= Date.now())
    throw new InputError(
      ERROR_CODE.INVALID_STATE,
      `Its validUntil (${row.valid_until.toISOString()}) has passed, so a retry would only expire again; submit a new request (with a new idempotencyKey, if it had one: the same key answers with this transaction)`,
      'id',
      409,
    )
}

/**
 * The signer the new execution is signed by: its own, while this instance has it; else, for a request that named
 * no signer, the chain's least loaded one. Queued for a signer nothing here signs for, it stayed QUEUED for ever
 * after a successful answer (a key rotated out, a chain removed).
 */
async function signerForRetry(ctx: ServiceContext, row: TransactionRow): Promise<{ chain: ChainClients; signer: string }> {
  const chain = ctx.chains.get(row.chain_id)
  if (!chain) throw new InputError(ERROR_CODE.UNKNOWN_CHAIN, `Not retried: its chain ${row.chain_id} is not configured on this instance`, 'id', 409)
  if (ctx.signers.get(row.chain_id, row.signer)) return { chain, signer: row.signer }
  if (row.signer_pinned)
    throw new InputError(
      ERROR_CODE.UNKNOWN_SIGNER,
      `Not retried: its signer ${row.signer} (named in its from) is not configured for chain ${row.chain_id} on this instance`,
      'id',
      409,
    )
  if (ctx.signers.forChain(row.chain_id).length === 0)
    throw new InputError(ERROR_CODE.NO_SIGNER, `Not retried: no signer is configured for chain ${row.chain_id} on this instance`, 'id', 409)
  return { chain, signer: await pickSigner(ctx, row.chain_id, null) }
}

/**
 * Whether the retry of `execution` an admin asks for was already made: the row is past it. A retry sent again after
 * its answer was lost (a timeout, a reload) would otherwise, once the new execution had ended FAILED or REVERTED,
 * start one more: another paid run. An execution the row has not reached is a mistake, not a retry to skip.
 */
function sameRetryDone(row: TransactionRow, execution: number): boolean {
  if (execution > row.execution)
    throw new InputError(ERROR_CODE.INVALID_INPUT, `Transaction ${row.id} has had ${row.execution} execution(s); there is no execution ${execution} to retry`, 'execution', 400)
  return execution < row.execution
}

/**
 * FAILED or REVERTED → QUEUED as a new execution (admin). Its earlier attempts stay
 * in the history under their execution number. A REVERTED one's nonce is spent by its own attempt: retrying the
 * call runs it again, which is what the admin asks for. A FAILED one either never consumed a nonce, or is
 * retried only once its signed bytes cannot be mined any more (signedBytesMayRun).
 */
export async function retryTransaction(ctx: ServiceContext, id: string, actor: string, execution?: number): Promise<TransactionRow> {
  const [current] = await ctx.db.sql<TransactionRow[]>`SELECT * FROM transactions WHERE id = ${id}`
  if (!current) throw new InputError(ERROR_CODE.NOT_FOUND, `No transaction ${id}`, 'id', 404)
  if (execution !== undefined && sameRetryDone(current, execution)) return current
  refuseUnlessRetriable(current)
  const { chain, signer } = await signerForRetry(ctx, current)
  const notYet = current.status === 'FAILED' ? await signedBytesMayRun(ctx, chain, current) : await revertedBlockGone(chain, current)
  // NOT_YET for what passes (a client may ask again later), INVALID_STATE for good: both were INVALID_STATE.
  if (notYet instanceof Never) throw new InputError(ERROR_CODE.INVALID_STATE, `Not retried: ${notYet.text}`, 'id', 409)
  if (notYet) throw new InputError(ERROR_CODE.NOT_YET, `Not retried yet: ${notYet}`, 'id', 409)
  const row = await ctx.db.sql.begin(async (tx) => {
    // The execution and block it was checked at: a row that changed meanwhile (settled again by the watcher,
    // retried by another admin) is looked at afresh.
    const [moved] = await tx<TransactionRow[]>`
      UPDATE transactions SET status = 'QUEUED', signer = ${signer}, nonce = NULL, execution = execution + 1, error_code = NULL, error_message = NULL, waiting_since = NULL, refused_by = NULL,
        ${clearMinedColumns(ctx.db.sql)}, at_fee_cap = NULL, last_sent_at = NULL, first_sent_at = NULL, final_at = NULL, updated_at = now()
      WHERE id = ${id} AND status = ${current.status} AND execution = ${current.execution} AND block_hash IS NOT DISTINCT FROM ${current.block_hash}
        AND kind = 'REQUEST' AND (valid_until IS NULL OR valid_until > now())
      RETURNING *`
    if (!moved) {
      const [now] = await tx<TransactionRow[]>`SELECT * FROM transactions WHERE id = ${id}`
      // Deleted by retention while it was checked (a TypeError and a 500 before).
      if (!now) throw new InputError(ERROR_CODE.NOT_FOUND, `No transaction ${id} (retention deleted it)`, 'id', 404)
      // Another admin (or this call, sent twice) retried the execution this one names meanwhile: that is this retry.
      if (execution !== undefined && sameRetryDone(now, execution)) return now
      refuseUnlessRetriable(now)
      throw new InputError(ERROR_CODE.NOT_YET, `Not retried yet: it changed while it was checked (now ${now.status}); try again`, 'id', 409)
    }
    const [previous] = await tx<{ to_status: string }[]>`
      SELECT to_status FROM transaction_events WHERE transaction_id = ${id} ORDER BY id DESC LIMIT 1`
    await tx`
      INSERT INTO transaction_events (transaction_id, from_status, to_status, actor, detail)
      VALUES (${id}, ${previous?.to_status ?? null}, 'QUEUED', ${actor}, ${tx.json({ action: 'retry', execution: moved.execution, ...(moved.signer !== current.signer ? { from: current.signer, to: moved.signer } : {}) })}::jsonb)`
    const job = { chainId: moved.chain_id, signer: moved.signer }
    await ctx.boss.send(QUEUE.sign, job, { singletonKey: signJobKey(job), db: bossDb(tx) })
    return moved
  })
  ctx.kickSigner(row.chain_id, row.signer)
  return row
}
