import type { ServiceContext } from '../../context.ts'
import { confirmationsOf } from '../../core/confirmations.ts'
import { getAttemptsFor, getEventsFor, getScannedHeads } from '../../store/readTransactions.ts'
import type { AttemptView, EventRow, TransactionRow } from '../../store/transactionRow.ts'

/** A stored transaction in its REST shape, with its attempts, events and confirmations read now. */
export async function loadTransactionJson(service: ServiceContext, row: TransactionRow) {
  const { sql } = service.db
  const [[attempts], [events], [head]] = await Promise.all([
    getAttemptsFor(sql, [row.id]),
    getEventsFor(sql, [row.id]),
    row.status === 'INCLUDED' ? getScannedHeads(sql, [row.chain_id]) : [null],
  ])
  const depth = service.chains.get(row.chain_id)?.config.confirmations ?? 1
  return transactionJson(row, attempts!, events!, confirmationsOf(row, head!, depth))
}

/** The same for many rows with one query per kind (a batch of webhook deliveries), in the rows' order. */
export async function loadTransactionsJson(service: ServiceContext, rows: TransactionRow[]) {
  const { sql } = service.db
  const ids = rows.map((r) => r.id)
  const chainIds = [...new Set(rows.filter((r) => r.status === 'INCLUDED').map((r) => r.chain_id))]
  const [attempts, events, heads] = await Promise.all([getAttemptsFor(sql, ids), getEventsFor(sql, ids), chainIds.length ? getScannedHeads(sql, chainIds) : []])
  return rows.map((row, i) => {
    const head = row.status === 'INCLUDED' ? (heads[chainIds.indexOf(row.chain_id)] ?? null) : null
    const depth = service.chains.get(row.chain_id)?.config.confirmations ?? 1
    return transactionJson(row, attempts[i]!, events[i]!, confirmationsOf(row, head, depth))
  })
}

/** The REST shape of a transaction: the same fields and names as the GraphQL type. */
export function transactionJson(t: TransactionRow, attempts: AttemptView[], events: EventRow[], confirmations: number | null) {
  const latest = attempts.at(-1)
  return {
    id: t.id,
    status: t.status,
    chainId: t.chain_id,
    from: t.signer,
    to: t.to,
    data: t.data,
    value: t.value,
    nonce: t.nonce === null ? null : String(t.nonce),
    gasLimit: t.gas_limit ?? latest?.gas_limit ?? null,
    hash: t.mined_hash ?? latest?.hash ?? null,
    blockNumber: t.block_number === null ? null : String(t.block_number),
    blockHash: t.block_hash,
    confirmations,
    receiptStatus: t.receipt_status,
    revertReason: t.revert_reason,
    gasUsed: t.gas_used,
    effectiveGasPrice: t.effective_gas_price,
    contractAddress: t.contract_address,
    execution: t.execution,
    kind: t.kind,
    idempotencyKey: t.idempotency_key,
    validUntil: t.valid_until?.toISOString() ?? null,
    atFeeCap: t.at_fee_cap !== null,
    error: t.error_code ? { code: t.error_code, message: t.error_message ?? '' } : null,
    attempts: attempts.map((a) => ({
      hash: a.hash,
      nonce: String(a.nonce),
      gasLimit: a.gas_limit,
      maxFeePerGas: a.max_fee_per_gas,
      maxPriorityFeePerGas: a.max_priority_fee_per_gas,
      gasPrice: a.gas_price,
      status: a.status,
      receiptStatus: a.receipt_status,
      purpose: a.purpose,
      execution: a.execution,
      createdAt: a.created_at.toISOString(),
      sentAt: a.sent_at?.toISOString() ?? null,
      providers: a.providers,
    })),
    events: events.map((e) => ({ fromStatus: e.from_status, toStatus: e.to_status, actor: e.actor, detail: e.detail, at: e.at.toISOString() })),
    createdAt: t.created_at.toISOString(),
    updatedAt: t.updated_at.toISOString(),
    firstSentAt: t.first_sent_at?.toISOString() ?? null,
    includedAt: t.included_at?.toISOString() ?? null,
    finalAt: t.final_at?.toISOString() ?? null,
  }
}
