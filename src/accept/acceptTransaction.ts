import type { ServiceContext } from '../context.ts'
import { ERROR_CODE, InputError } from '../core/errors.ts'
import { bossDb, QUEUE, signJobKey } from '../jobs/queues.ts'
import type { TransactionRow } from '../store/transactionRow.ts'
import type { BroadcastRequest } from './validateBroadcastRequest.ts'

export type AcceptResult = { transaction: TransactionRow; created: boolean }

/** Round-robin position per chain, so load spreads over a chain's signers. */
const nextSignerIndex = new Map<number, number>()

function pickSigner(ctx: ServiceContext, chainId: number): string {
  const signers = ctx.signers.forChain(chainId)
  if (signers.length === 0) throw new InputError(ERROR_CODE.NO_SIGNER, `chainId: no signer is configured for chain ${chainId}`, 'chainId')
  const i = nextSignerIndex.get(chainId) ?? 0
  nextSignerIndex.set(chainId, (i + 1) % signers.length)
  return signers[i % signers.length]!.address
}

/**
 * The request path: insert the row, its first event and the signer's sign job in
 * one Postgres transaction. Success is reported only after the commit, so an
 * accepted request survives any crash that follows.
 */
export async function acceptTransaction(ctx: ServiceContext, req: BroadcastRequest, apiKeyName: string): Promise<AcceptResult> {
  const signer = pickSigner(ctx, req.chainId)
  const result = await ctx.db.sql.begin(async (tx) => {
    const inserted = await tx<TransactionRow[]>`
      INSERT INTO transactions (chain_id, signer, "to", data, value, gas_limit, api_key_name, idempotency_key, valid_until)
      VALUES (${req.chainId}, ${signer}, ${req.to}, ${req.data}, ${req.value.toString()}, ${req.gasLimit?.toString() ?? null},
              ${apiKeyName}, ${req.idempotencyKey}, ${req.validUntil})
      ON CONFLICT (api_key_name, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING *`
    if (inserted.length === 0) {
      // A client retrying with the same idempotency key gets the transaction it already has.
      const [existing] = await tx<TransactionRow[]>`
        SELECT * FROM transactions WHERE api_key_name = ${apiKeyName} AND idempotency_key = ${req.idempotencyKey}`
      if (!existing) throw new Error('idempotency conflict without a row')
      if (!sameRequest(existing, req))
        throw new InputError(
          ERROR_CODE.IDEMPOTENCY_CONFLICT,
          `idempotencyKey: already used for transaction ${existing.id} with different fields`,
          'idempotencyKey',
          409,
        )
      return { transaction: existing, created: false }
    }
    const row = inserted[0]!
    await tx`INSERT INTO transaction_events (transaction_id, from_status, to_status, actor) VALUES (${row.id}, NULL, 'QUEUED', ${apiKeyName || 'system'})`
    await ctx.boss.send(QUEUE.sign, { chainId: req.chainId, signer }, { singletonKey: signJobKey({ chainId: req.chainId, signer }), db: bossDb(tx) })
    return { transaction: row, created: true }
  })
  if (result.created) ctx.kickSigner(req.chainId, signer)
  return result
}

function sameRequest(row: TransactionRow, req: BroadcastRequest): boolean {
  return (
    row.chain_id === req.chainId &&
    row.to === req.to &&
    row.data === req.data &&
    row.value === req.value.toString() &&
    (row.gas_limit ?? null) === (req.gasLimit?.toString() ?? null)
  )
}
