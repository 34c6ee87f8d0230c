import type { TxStatus } from '../core/txStatus.ts'

/** A `transactions` row as postgres.js returns it (numeric as decimal strings, int8 as numbers). */
export type TransactionRow = {
  id: string
  seq: number
  chain_id: number
  signer: string
  signer_pinned: boolean
  to: string | null
  data: string
  value: string
  gas_limit: string | null
  status: TxStatus
  nonce: number | null
  execution: number
  error_code: string | null
  error_message: string | null
  api_key_name: string
  idempotency_key: string | null
  valid_until: Date | null
  kind: 'REQUEST' | 'FILLER'
  waiting_since: Date | null
  refused_by: string | null
  last_sent_at: Date | null
  at_fee_cap: Date | null
  mined_hash: string | null
  block_number: number | null
  block_hash: string | null
  receipt_status: string | null
  gas_used: string | null
  effective_gas_price: string | null
  contract_address: string | null
  revert_reason: string | null
  created_at: Date
  updated_at: Date
  first_sent_at: Date | null
  included_at: Date | null
  final_at: Date | null
}

/**
 * A row as lists and the change feed read it: `data` only when it is short (INLINE_DATA_CHARS), else null and
 * read on its own when asked for (a list of 500 rows of 127 KiB calldata was 130 MB read for nothing).
 */
export type ListedTransactionRow = Omit<TransactionRow, 'data'> & { data: string | null }

export type ProviderAnswer = { name: string; outcome: string; error: string | null; at: string }

/** An attempt as it is shown: without its signed bytes (`raw`), which no answer carries. */
export type AttemptView = Omit<AttemptRow, 'raw'>

export type AttemptRow = {
  id: number
  transaction_id: string
  execution: number
  chain_id: number
  signer: string
  nonce: number
  hash: string
  raw: string
  gas_limit: string
  max_fee_per_gas: string | null
  max_priority_fee_per_gas: string | null
  gas_price: string | null
  purpose: 'REQUEST' | 'CANCEL'
  status: 'SIGNED' | 'SENT' | 'MINED' | 'REPLACED' | 'REJECTED'
  providers: ProviderAnswer[]
  created_at: Date
  sent_at: Date | null
  /** Read with it (getAttemptsFor), not a column: 'success' or 'reverted' for a MINED attempt, else null. */
  receipt_status: string | null
}

export type EventRow = {
  id: number
  transaction_id: string
  from_status: TxStatus | null
  to_status: TxStatus
  actor: string
  detail: Record<string, unknown> | null
  at: Date
}
