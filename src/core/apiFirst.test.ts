import { describe, expect, it } from 'vitest'
import { API_BUSY_LOOP_UTILIZATION, API_BUSY_REQUESTS_PER_SEC, apiIsBusy } from './apiFirst.ts'

describe('apiIsBusy', () => {
  it('needs both a high request rate and a nearly full event loop', () => {
    expect(apiIsBusy({ requestsPerSec: API_BUSY_REQUESTS_PER_SEC, loopUtilization: API_BUSY_LOOP_UTILIZATION })).toBe(true)
    expect(apiIsBusy({ requestsPerSec: 3_000, loopUtilization: 0.99 })).toBe(true)
    // Many requests on a loop with room to spare: nothing to give way to.
    expect(apiIsBusy({ requestsPerSec: 3_000, loopUtilization: 0.5 })).toBe(false)
    // A loop busy with the pipeline itself at the design's sustained rate: the pipeline keeps going.
    expect(apiIsBusy({ requestsPerSec: 200, loopUtilization: 1 })).toBe(false)
    expect(apiIsBusy({ requestsPerSec: 0, loopUtilization: 0 })).toBe(false)
  })
})
