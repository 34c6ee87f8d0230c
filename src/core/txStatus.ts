/**
 * The lifecycle of DESIGN.md as data: which status may follow which. It describes; what enforces it is each
 * UPDATE's `WHERE status = ...` (compare and set).
 */
export const TX_STATUS = {
  QUEUED: 'QUEUED',
  PENDING: 'PENDING',
  INCLUDED: 'INCLUDED',
  CONFIRMED: 'CONFIRMED',
  REVERTED: 'REVERTED',
  FAILED: 'FAILED',
  CANCELLED: 'CANCELLED',
} as const
export type TxStatus = (typeof TX_STATUS)[keyof typeof TX_STATUS]
export const TX_STATUSES = Object.values(TX_STATUS) as TxStatus[]

const NEXT: Record<TxStatus, readonly TxStatus[]> = {
  // FAILED from QUEUED: found invalid before a nonce was consumed.
  QUEUED: ['PENDING', 'FAILED'],
  // PENDING -> QUEUED: the nonce went elsewhere and no attempt of ours can still be mined (re-sign at a new nonce).
  PENDING: ['INCLUDED', 'QUEUED', 'FAILED'],
  // INCLUDED -> PENDING: reorg dropped the block.
  INCLUDED: ['CONFIRMED', 'REVERTED', 'CANCELLED', 'PENDING'],
  // -> PENDING: a reorg deeper than the confirmation depth took its block away (reconcile: the same bytes again).
  CONFIRMED: ['PENDING'],
  // retryTransaction: a new execution.
  REVERTED: ['QUEUED', 'PENDING'],
  // -> QUEUED: retryTransaction. -> PENDING: its signed bytes were mined after it was failed (mined_after_failed).
  FAILED: ['QUEUED', 'PENDING'],
  CANCELLED: ['PENDING'],
}

export const FINAL_STATUSES: readonly TxStatus[] = ['CONFIRMED', 'REVERTED', 'FAILED', 'CANCELLED']
export const IN_FLIGHT_STATUSES: readonly TxStatus[] = ['QUEUED', 'PENDING', 'INCLUDED']

export function canTransition(from: TxStatus, to: TxStatus): boolean {
  return NEXT[from].includes(to)
}

export function isFinal(status: TxStatus): boolean {
  return FINAL_STATUSES.includes(status)
}

/** Statuses that hold a nonce (mirrors the CHECK constraint in the database). */
export function holdsNonce(status: TxStatus): boolean {
  return status === 'PENDING' || status === 'INCLUDED' || status === 'CONFIRMED' || status === 'REVERTED' || status === 'CANCELLED'
}
