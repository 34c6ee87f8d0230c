import type { Hex } from 'viem'
import { broadcastAttempts } from '../broadcast/broadcastAttempts.ts'
import { readFeeMarket } from '../chain/readFeeMarket.ts'
import { describeSendAnswer, toSendAnswer } from '../chain/toSendAnswer.ts'
import type { ServiceContext } from '../context.ts'
import { ERROR_CODE, InputError } from '../core/errors.ts'
import { feeCapFor, nextBumpFees, percentToBps } from '../core/fees.ts'
import { buildAttempt, feesOf } from '../sign/buildAttempt.ts'
import { selfTransferGas } from '../chain/selfTransferGas.ts'
import { RemoteSignerError } from '../signers/remoteSigner.ts'
import type { AttemptRow, TransactionRow } from '../store/transactionRow.ts'

const CANCELLED_MESSAGE = 'cancelled by an admin'

/**
 * Admin cancel.
 * - QUEUED (no nonce yet): FAILED with code CANCELLED at once; nothing was sent.
 * - PENDING: a zero-value self-transfer at the same nonce, with fees raised like a
 *   bump so nodes take it as a replacement. The transaction stays PENDING and ends
 *   CANCELLED only if that replacement is what mines; if the original mines first,
 *   it ends CONFIRMED as usual (the chain decides, never us).
 */
export async function cancelTransaction(ctx: ServiceContext, id: string, actor: string): Promise<TransactionRow> {
  const { sql } = ctx.db
  const [current] = await sql<TransactionRow[]>`SELECT * FROM transactions WHERE id = ${id}`
  if (!current) throw new InputError(ERROR_CODE.NOT_FOUND, `No transaction ${id}`, 'id', 404)
  if (current.kind !== 'REQUEST')
    throw new InputError(ERROR_CODE.INVALID_STATE, 'Only requests can be cancelled; this one is a filler (a zero-value self-transfer the service sent to fill a nonce)', 'id', 409)
  // Already cancelled (an admin's call sent again after its answer was lost, or a second admin): the row as it is.
  // A 409 read as "could not cancel it" for one that was.
  if (current.status === 'CANCELLED' || (current.status === 'FAILED' && current.error_code === 'CANCELLED')) return current
  if (current.status === 'QUEUED') {
    const row = await sql.begin(async (tx) => {
      const [moved] = await tx<TransactionRow[]>`
        UPDATE transactions SET status = 'FAILED', error_code = 'CANCELLED', error_message = ${CANCELLED_MESSAGE}, final_at = now(), updated_at = now()
        WHERE id = ${id} AND status = 'QUEUED' RETURNING *`
      if (moved)
        await tx`INSERT INTO transaction_events (transaction_id, from_status, to_status, actor, detail)
                 VALUES (${id}, 'QUEUED', 'FAILED', ${actor}, '{"action":"cancel"}'::jsonb)`
      return moved
    })
    if (row) return row
    return cancelTransaction(ctx, id, actor) // it was signed meanwhile: cancel it as PENDING
  }
  if (current.status !== 'PENDING')
    throw new InputError(ERROR_CODE.INVALID_STATE, `Only QUEUED or PENDING transactions can be cancelled; this one is ${current.status}`, 'id', 409)
  const chain = ctx.chains.get(current.chain_id)
  const signer = ctx.signers.get(current.chain_id, current.signer)
  if (!chain) throw new InputError(ERROR_CODE.UNKNOWN_CHAIN, `Its chain ${current.chain_id} is not configured on this instance`, 'id', 409)
  if (!signer) throw new InputError(ERROR_CODE.UNKNOWN_SIGNER, `Its signer ${current.signer} is not configured for chain ${current.chain_id} on this instance: only it can sign a replacement at its nonce`, 'id', 409)
  // The replacement's fees follow the market: without a reading (every provider down) nothing is signed, and the
  // admin is told why (it was an INTERNAL error with no detail).
  const market = await readFeeMarket(chain.read, chain.config.fees.model).catch((err: unknown) => {
    const why = chain.redact(describeSendAnswer(toSendAnswer(err)) ?? 'no answer')
    throw new InputError(ERROR_CODE.UNAVAILABLE, `The cancel could not be made, nothing changed: the fee market of chain ${chain.chainId} could not be read (${why})`, 'id', 503)
  })

  const gas = await selfTransferGas(chain, signer.address)

  const result = await sql.begin(async (tx) => {
    const [row] = await tx<TransactionRow[]>`SELECT * FROM transactions WHERE id = ${id} AND status = 'PENDING' FOR UPDATE`
    if (!row) return { row: null, attempt: null }
    const [latest] = await tx<AttemptRow[]>`
      SELECT * FROM attempts WHERE transaction_id = ${id} AND execution = ${row.execution} ORDER BY id DESC LIMIT 1`
    if (!latest) throw new InputError(ERROR_CODE.NOT_YET, 'It has no signed attempt yet (it is being signed): try again in a moment', 'id', 409)
    if (latest.purpose === 'CANCEL') return { row, attempt: null }
    const cap = feeCapFor(chain.config.fees, gas)
    const decision = nextBumpFees(feesOf(latest), market, percentToBps(chain.config.fees.bumpPercent), cap)
    if (decision.kind === 'at_cap') {
      const raise = cap < chain.config.fees.maxFeePerGasCap ? `maxTxFeeWei (${chain.config.fees.maxTxFeeWei} wei for its ${gas} gas)` : 'maxFeePerGasCap'
      throw new InputError(ERROR_CODE.FEE_CAP_REACHED, `A replacement would need fees above the chain fee cap (${cap} wei per gas); raise ${raise} to cancel it (nodes refuse a transaction whose gas × max fee is over their own cap, rpc.txfeecap)`, 'id', 409)
    }
    let built: Awaited<ReturnType<typeof buildAttempt>>
    try {
      built = await buildAttempt({ signer, chainId: row.chain_id, tx: row, nonce: latest.nonce, gas, fees: decision.fees, purpose: 'CANCEL' })
    } catch (err) {
      // Said to the admin in the signer's words (it was an INTERNAL error with no detail); nothing changed.
      if (!(err instanceof RemoteSignerError)) throw err
      throw new InputError(err.refused ? ERROR_CODE.SIGNER_REFUSED : ERROR_CODE.SIGNER_UNAVAILABLE, `The cancel could not be signed, nothing changed: ${err.message}`, 'id', err.refused ? 409 : 503)
    }
    await tx`INSERT INTO attempts ${tx([built.row])}`
    const [updated] = await tx<TransactionRow[]>`
      UPDATE transactions SET error_code = 'CANCELLED', error_message = ${CANCELLED_MESSAGE}, last_sent_at = now(), updated_at = now(),
        -- Its request stuck at its cap, the cancel (less gas, a higher cap) under its own: no longer at the cap.
        at_fee_cap = ${decision.reachedCap ? tx`at_fee_cap` : tx`NULL`}
      WHERE id = ${id} RETURNING *`
    await tx`INSERT INTO transaction_events (transaction_id, from_status, to_status, actor, detail)
             VALUES (${id}, 'PENDING', 'PENDING', ${actor}, ${tx.json({ action: 'cancel', hash: built.hash })}::jsonb)`
    return { row: updated!, attempt: { transactionId: id, nonce: latest.nonce, hash: built.hash as Hex, raw: built.raw as Hex } }
  })
  if (!result.row) {
    // Changed since it was read: back in the queue (the reconciler requeues a request no node took), it is
    // cancelled as QUEUED; a 409 here read as "too late" while the request was about to be signed again.
    const [now] = await sql<{ status: string }[]>`SELECT status FROM transactions WHERE id = ${id}`
    if (now?.status === 'QUEUED') return cancelTransaction(ctx, id, actor)
    throw new InputError(ERROR_CODE.INVALID_STATE, `It is no longer PENDING (now ${now?.status})`, 'id', 409)
  }
  // Committed: the cancel stands whatever the providers answer now (the timeout stage sends it again).
  if (result.attempt) ctx.metrics?.attempts.inc({ chain_id: String(chain.chainId), kind: 'bump' })
  if (result.attempt)
    await broadcastAttempts(ctx, chain, [result.attempt]).catch((err: unknown) =>
      ctx.log.warn({ err, txId: id }, 'the cancel was stored but its first send failed; it is sent again after bumpAfterMs'),
    )
  return result.row
}
