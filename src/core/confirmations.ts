import type { TxStatus } from './txStatus.ts'

/**
 * Blocks on top of (and including) the one holding a transaction, as last seen: null until it is in a block;
 * while INCLUDED, counted from the highest block the chain's watcher has scanned (at least 1, at most the
 * chain's depth); once final, the depth it was finalized at.
 */
export function confirmationsOf(t: { status: TxStatus; block_number: number | null }, scannedHead: number | null, depth: number): number | null {
  if (t.block_number === null) return null
  if (t.status !== 'INCLUDED') return depth
  if (scannedHead === null) return 1
  return Math.min(depth, Math.max(1, scannedHead - t.block_number + 1))
}
