import { describe, expect, it } from 'vitest'
import { confirmationsOf } from './confirmations.ts'
import type { TxStatus } from './txStatus.ts'

describe('confirmationsOf', () => {
  const depth = 12
  const cases: Array<[TxStatus, number | null, number | null, number | null]> = [
    // status, block_number, scanned head, confirmations
    ['PENDING', null, 100, null],
    ['INCLUDED', 100, 100, 1],
    ['INCLUDED', 100, 104, 5],
    ['INCLUDED', 100, 200, depth],
    ['INCLUDED', 100, 99, 1], // the watcher's head behind the receipt's block
    ['INCLUDED', 100, null, 1],
    ['CONFIRMED', 100, null, depth],
    ['REVERTED', 100, null, depth],
    ['CANCELLED', 100, null, depth],
    // A change-feed row: the event's status over the row as it is now, which has a block again.
    ['PENDING', 100, 150, null],
    ['QUEUED', 100, 150, null],
    ['FAILED', 100, 150, null],
  ]
  it.each(cases)('%s in block %s, head %s: %s', (status, block_number, head, expected) => {
    expect(confirmationsOf({ status, block_number }, head, depth)).toBe(expected)
  })
})
