import { describe, it, expect } from 'vitest'
import { FINAL_STATUSES, IN_FLIGHT_STATUSES, TX_STATUSES, canTransition, holdsNonce, isFinal, type TxStatus } from './txStatus.ts'

/** Every allowed transition, with why; everything not listed here is forbidden. */
const ALLOWED: ReadonlyArray<[from: TxStatus, to: TxStatus, why: string]> = [
  ['QUEUED', 'PENDING', 'signed and broadcast'],
  ['QUEUED', 'FAILED', 'found invalid before a nonce was consumed'],
  ['PENDING', 'INCLUDED', 'mined'],
  ['PENDING', 'QUEUED', 'nonce went elsewhere: re-sign at a new nonce'],
  ['PENDING', 'FAILED', 'invalid after signing'],
  ['INCLUDED', 'CONFIRMED', 'enough confirmations'],
  ['INCLUDED', 'REVERTED', 'receipt status 0, confirmed'],
  ['INCLUDED', 'CANCELLED', 'a cancellation took the nonce'],
  ['INCLUDED', 'PENDING', 'reorg dropped the block'],
  ['REVERTED', 'QUEUED', 'retry'],
  ['FAILED', 'QUEUED', 'retry'],
  ['FAILED', 'PENDING', 'its signed bytes were mined after it was failed (mined_after_failed)'],
  ['CONFIRMED', 'PENDING', 'a reorg deeper than the confirmation depth took its block'],
  ['REVERTED', 'PENDING', 'a reorg deeper than the confirmation depth took its block'],
  ['CANCELLED', 'PENDING', 'a reorg deeper than the confirmation depth took its block'],
]

const isAllowed = (from: TxStatus, to: TxStatus) => ALLOWED.some(([f, t]) => f === from && t === to)
const ALL_PAIRS = TX_STATUSES.flatMap((from) => TX_STATUSES.map((to) => [from, to] as [TxStatus, TxStatus]))
const FORBIDDEN = ALL_PAIRS.filter(([from, to]) => !isAllowed(from, to))

describe('TX_STATUSES', () => {
  it('lists the seven statuses', () => {
    expect([...TX_STATUSES].sort()).toEqual(['CANCELLED', 'CONFIRMED', 'FAILED', 'INCLUDED', 'PENDING', 'QUEUED', 'REVERTED'])
  })

  it('splits into final and in-flight statuses with no overlap', () => {
    expect([...FINAL_STATUSES, ...IN_FLIGHT_STATUSES].sort()).toEqual([...TX_STATUSES].sort())
  })
})

describe('canTransition', () => {
  it.each(ALLOWED)('%s -> %s is allowed (%s)', (from, to) => {
    expect(canTransition(from, to)).toBe(true)
  })

  // Named cases the lifecycle depends on.
  it.each<[TxStatus, TxStatus]>([
    ['QUEUED', 'CONFIRMED'],
    ['QUEUED', 'INCLUDED'],
    ['QUEUED', 'REVERTED'],
    ['PENDING', 'CONFIRMED'],
    ['PENDING', 'CANCELLED'],
    ['INCLUDED', 'QUEUED'],
    ['INCLUDED', 'FAILED'],
    ['CONFIRMED', 'QUEUED'],
    ['CANCELLED', 'QUEUED'],
    ['FAILED', 'INCLUDED'],
  ])('%s -> %s is forbidden', (from, to) => {
    expect(canTransition(from, to)).toBe(false)
  })

  it.each(FORBIDDEN)('%s -> %s is forbidden (exhaustive)', (from, to) => {
    expect(canTransition(from, to)).toBe(false)
  })

  it.each(TX_STATUSES)('%s -> itself is forbidden', (status) => {
    expect(canTransition(status, status)).toBe(false)
  })

  it.each<TxStatus>(['CONFIRMED', 'CANCELLED'])('%s leaves only when a deep reorg takes its block (to PENDING)', (from) => {
    expect(TX_STATUSES.filter((to) => canTransition(from, to))).toEqual(['PENDING'])
  })

  it('REVERTED leaves by retry (to QUEUED) or a deep reorg (to PENDING); FAILED by retry or its bytes mined (to PENDING)', () => {
    expect(TX_STATUSES.filter((to) => canTransition('REVERTED', to))).toEqual(['QUEUED', 'PENDING'].sort((a, b) => TX_STATUSES.indexOf(a as TxStatus) - TX_STATUSES.indexOf(b as TxStatus)))
    expect(TX_STATUSES.filter((to) => canTransition('FAILED', to))).toEqual(['QUEUED', 'PENDING'].sort((a, b) => TX_STATUSES.indexOf(a as TxStatus) - TX_STATUSES.indexOf(b as TxStatus)))
  })
})

describe('isFinal', () => {
  it.each<[TxStatus, boolean]>([
    ['QUEUED', false],
    ['PENDING', false],
    ['INCLUDED', false],
    ['CONFIRMED', true],
    ['REVERTED', true],
    ['FAILED', true],
    ['CANCELLED', true],
  ])('%s -> %s', (status, expected) => {
    expect(isFinal(status)).toBe(expected)
  })
})

describe('holdsNonce', () => {
  it.each<[TxStatus, boolean]>([
    ['QUEUED', false],
    ['PENDING', true],
    ['INCLUDED', true],
    ['CONFIRMED', true],
    ['REVERTED', true],
    ['FAILED', false],
    ['CANCELLED', true],
  ])('%s -> %s', (status, expected) => {
    expect(holdsNonce(status)).toBe(expected)
  })
})
