import { describe, expect, it } from 'vitest'
import { leastLoaded } from './signerLoad.ts'

describe('leastLoaded', () => {
  const backlog = new Map([
    ['a', 5],
    ['b', 0],
    ['c', 0],
  ])
  it('takes the smallest backlog, the earliest in the order on a tie', () => {
    expect(leastLoaded(['a', 'b', 'c'], backlog)).toBe('b')
    expect(leastLoaded(['c', 'a', 'b'], backlog)).toBe('c')
  })
  it('leaves out a signer short of funds while another can take the request', () => {
    expect(leastLoaded(['b', 'c', 'a'], backlog, new Set(['b']))).toBe('c')
    expect(leastLoaded(['b', 'c', 'a'], backlog, new Set(['b', 'c']))).toBe('a')
  })
  it('every signer short: the least loaded of all, as without the hint', () => {
    expect(leastLoaded(['a', 'b', 'c'], backlog, new Set(['a', 'b', 'c']))).toBe('b')
  })
})
