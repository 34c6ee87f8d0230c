import { describe, expect, it } from 'vitest'
import { BULK_READ_MAX_TIMEOUT_MS, bulkReadTimeoutMs } from './createChainClients.ts'

describe('bulkReadTimeoutMs', () => {
  it("is the reads' timeout for small blocks and grows in doublings with the block's transactions", () => {
    expect(bulkReadTimeoutMs(3_000, 0)).toBe(3_000)
    expect(bulkReadTimeoutMs(3_000, 150)).toBe(6_000) // 3.3 s wanted
    expect(bulkReadTimeoutMs(3_000, 4_000)).toBe(12_000) // 11 s wanted
    expect(bulkReadTimeoutMs(1_000, 60)).toBe(2_000)
  })

  it('never exceeds the cap, and never goes below a longer configured timeout', () => {
    expect(bulkReadTimeoutMs(3_000, 10_000)).toBe(BULK_READ_MAX_TIMEOUT_MS)
    expect(bulkReadTimeoutMs(30_000, 10_000)).toBe(30_000)
  })
})
