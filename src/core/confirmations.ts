import type { TxStatus } from './txStatus.ts'

/** The final statuses a transaction reaches from a block (FAILED never was in one of ours). */
const MINED_FINAL: readonly TxStatus[] = ['CONFIRMED', 'REVERTED', 'CANCELLED']

/**
 * Blocks on top of (and including) the one holding a transaction, as last seen: null until it is in a block;
 * while INCLUDED, counted from the highest block the chain's watcher has scanned (at least 1, at most the
 * chain's depth); once final, the depth it was finalized at. Any other status is null whatever the row's block:
 * a change-feed row carries the event's status over the row as it is now (a reorg's PENDING over a row since
 * included again), and showed PENDING with the full depth.
 */
export function confirmationsOf(t: { status: TxStatus; block_number: number | null }, scannedHead: number | null, depth: number): number | null {
  if (t.block_number === null) return null
  if (MINED_FINAL.includes(t.status)) return depth
  if (t.status !== 'INCLUDED') return null
  if (scannedHead === null) return 1
  return Math.min(depth, Math.max(1, scannedHead - t.block_number + 1))
}
