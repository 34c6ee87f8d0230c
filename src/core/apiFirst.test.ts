import { describe, expect, it } from 'vitest'
import { API_BUSY_IN_FLIGHT, API_BUSY_LOOP_UTILIZATION, apiIsBusy } from './apiFirst.ts'

describe('apiIsBusy', () => {
  it('needs both many requests in progress and a nearly full event loop', () => {
    expect(apiIsBusy({ inFlight: API_BUSY_IN_FLIGHT, loopUtilization: API_BUSY_LOOP_UTILIZATION })).toBe(true)
    expect(apiIsBusy({ inFlight: 500, loopUtilization: 0.99 })).toBe(true)
    // Many slow requests on an idle loop (waiting for Postgres): the pipeline is not what holds them up.
    expect(apiIsBusy({ inFlight: 500, loopUtilization: 0.3 })).toBe(false)
    // A loop busy with the pipeline itself and a quiet API: nothing to give way to.
    expect(apiIsBusy({ inFlight: 2, loopUtilization: 1 })).toBe(false)
    expect(apiIsBusy({ inFlight: 0, loopUtilization: 0 })).toBe(false)
  })
})
