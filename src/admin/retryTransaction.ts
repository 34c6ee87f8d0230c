import type { Address, Hex } from 'viem'
import { receiptOrNull } from '../chain/receiptOrNull.ts'
import { describeSendAnswer, toSendAnswer } from '../chain/toSendAnswer.ts'
import type { ServiceContext } from '../context.ts'
import { ERROR_CODE, InputError } from '../core/errors.ts'
import { bossDb, QUEUE, signJobKey } from '../jobs/queues.ts'
import { clearMinedColumns } from '../store/minedColumns.ts'
import type { TransactionRow } from '../store/transactionRow.ts'

/**
 * Why a FAILED request may not be retried yet, or null. Most FAILED requests were never signed. Those the
 * reconciler failed after their nonce was given (every provider refused them, SEND_REFUSED; or as invalid) hold
 * signed bytes that a node we do not ask (one marked down, a private pool) may still mine: a retry then ran the
 * request twice. Such a retry waits until another transaction of ours is final at that nonce (the zero-value
 * filler the reconciler sends) in a block that is still the chain's, and is refused for good once one of its
 * attempts was mined.
 */
async function signedBytesMayRun(ctx: ServiceContext, id: string): Promise<string | null> {
  const { sql } = ctx.db
  const attempts = await sql<{ hash: Hex; nonce: number; chain_id: number; signer: Address }[]>`
    SELECT a.hash, a.nonce::int AS nonce, t.chain_id, t.signer FROM attempts a JOIN transactions t ON t.id = a.transaction_id AND a.execution = t.execution
    WHERE t.id = ${id} AND t.status = 'FAILED'`
  if (attempts.length === 0) return null
  const { chain_id: chainId, signer } = attempts[0]!
  const chain = ctx.chains.get(chainId)
  if (!chain) return `its execution was signed, and its chain ${chainId} is not configured here to check that those bytes cannot still be mined`
  try {
    const receipts = await Promise.all(attempts.map((a) => receiptOrNull(chain, a.hash)))
    const mined = receipts.find((r) => r !== null)
    if (mined) return `its signed attempt ${mined.transactionHash} was mined in block ${mined.blockNumber} after it was failed: the request ran, and a retry would run it again`
    // Proof in the database, not a count: the nonce's count is met by the request's own bytes too, when its receipt
    // lookup lags. A final transaction of ours at that nonce (the filler, mined at the confirmation depth) is proof
    // that none of its attempts can be mined.
    const nonce = Math.min(...attempts.map((a) => a.nonce))
    const [filled] = await sql<{ id: string; block_number: number; block_hash: Hex }[]>`
      SELECT id, block_number, block_hash FROM transactions WHERE chain_id = ${chainId} AND signer = ${signer} AND nonce = ${nonce} AND id <> ${id}
        AND status IN ('CONFIRMED', 'REVERTED', 'CANCELLED')`
    const mayStill = `its execution was signed at nonce ${nonce}, and those bytes may still be mined until another transaction of ours is final at that nonce (the service fills it with a zero-value self-transfer): retry after that`
    if (!filled) return mayStill
    // And that one's block still the chain's: after a deep reorg its row may be stale, the request's own bytes mined
    // in its place.
    const block = await chain.read.getBlock({ blockNumber: BigInt(filled.block_number) })
    if (block.hash !== filled.block_hash) return mayStill
    return null
  } catch (err) {
    // The chain's providers did not answer: 503, as a cancel says it, not a state the transaction is in.
    throw new InputError(
      ERROR_CODE.UNAVAILABLE,
      `Not retried: could not check on chain ${chainId} that its signed bytes cannot still be mined (${chain.redact(describeSendAnswer(toSendAnswer(err)) ?? 'no answer')}); try again later`,
      'id',
      503,
    )
  }
}

/**
 * FAILED or REVERTED → QUEUED as a new execution (admin). Its earlier attempts stay
 * in the history under their execution number. A REVERTED one's nonce is spent by its own attempt: retrying the
 * call runs it again, which is what the admin asks for. A FAILED one either never consumed a nonce, or is
 * retried only once its signed bytes cannot be mined any more (signedBytesMayRun).
 */
export async function retryTransaction(ctx: ServiceContext, id: string, actor: string): Promise<TransactionRow> {
  const notYet = await signedBytesMayRun(ctx, id)
  if (notYet) throw new InputError(ERROR_CODE.INVALID_STATE, `Not retried: ${notYet}`, 'id', 409)
  const row = await ctx.db.sql.begin(async (tx) => {
    const [moved] = await tx<TransactionRow[]>`
      UPDATE transactions SET status = 'QUEUED', nonce = NULL, execution = execution + 1, error_code = NULL, error_message = NULL, waiting_since = NULL, refused_by = NULL,
        ${clearMinedColumns(ctx.db.sql)}, at_fee_cap = NULL, last_sent_at = NULL, first_sent_at = NULL, final_at = NULL, updated_at = now()
      WHERE id = ${id} AND status IN ('FAILED', 'REVERTED') AND kind = 'REQUEST' AND (valid_until IS NULL OR valid_until > now())
      RETURNING *`
    if (!moved) {
      const [current] = await tx<{ status: string; valid_until: Date | null }[]>`SELECT status, valid_until FROM transactions WHERE id = ${id}`
      if (!current) throw new InputError(ERROR_CODE.NOT_FOUND, `No transaction ${id}`, 'id', 404)
      // Retried, it would only expire again (it did, within seconds): the client's deadline stands.
      if ((current.status === 'FAILED' || current.status === 'REVERTED') && current.valid_until && current.valid_until.getTime() <= Date.now())
        throw new InputError(
          ERROR_CODE.INVALID_STATE,
          `Its validUntil (${current.valid_until.toISOString()}) has passed, so a retry would only expire again; submit a new request`,
          'id',
          409,
        )
      throw new InputError(ERROR_CODE.INVALID_STATE, `Only FAILED or REVERTED transactions can be retried; this one is ${current.status}`, 'id', 409)
    }
    const [previous] = await tx<{ to_status: string }[]>`
      SELECT to_status FROM transaction_events WHERE transaction_id = ${id} ORDER BY id DESC LIMIT 1`
    await tx`
      INSERT INTO transaction_events (transaction_id, from_status, to_status, actor, detail)
      VALUES (${id}, ${previous?.to_status ?? null}, 'QUEUED', ${actor}, ${tx.json({ action: 'retry', execution: moved.execution })}::jsonb)`
    const job = { chainId: moved.chain_id, signer: moved.signer }
    await ctx.boss.send(QUEUE.sign, job, { singletonKey: signJobKey(job), db: bossDb(tx) })
    return moved
  })
  ctx.kickSigner(row.chain_id, row.signer)
  return row
}
