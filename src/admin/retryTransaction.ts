import type { ServiceContext } from '../context.ts'
import { ERROR_CODE, InputError } from '../core/errors.ts'
import { bossDb, QUEUE, signJobKey } from '../jobs/queues.ts'
import { clearMinedColumns } from '../store/minedColumns.ts'
import type { TransactionRow } from '../store/transactionRow.ts'

/**
 * FAILED or REVERTED → QUEUED as a new execution (admin). Its earlier attempts stay
 * in the history under their execution number. Safe: a FAILED one never consumed a
 * nonce, and a REVERTED one's nonce is spent, so nothing can execute twice by accident;
 * retrying a REVERTED call runs it again, which is what the admin asks for.
 */
export async function retryTransaction(ctx: ServiceContext, id: string, actor: string): Promise<TransactionRow> {
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
