import { describe, expect, it } from 'vitest'
import { capturedLogger } from '../../tests/helpers/testService.ts'
import { bossErrorLog } from './startStages.ts'

describe('bossErrorLog', () => {
  it("logs pg-boss's repeated errors once per kind, not once per worker's fetch", () => {
    const { log, lines } = capturedLogger('info')
    const onError = bossErrorLog(log)
    // A database outage: each worker's fetch fails every second or so (before: one error line each).
    for (let i = 0; i < 500; i++) onError(new Error(`connect ECONNREFUSED 127.0.0.1:${5432 + (i % 3)}`))
    // Through a restart two kinds alternate: each is said once.
    for (let i = 0; i < 100; i++) {
      onError(new Error('Connection terminated unexpectedly'))
      onError(new Error('connect ECONNREFUSED 127.0.0.1:5432'))
    }
    const said = lines.map((l) => JSON.parse(l) as { msg: string; err?: { message: string } })
    expect(said.map((l) => [l.msg, l.err?.message])).toEqual([
      ['pg-boss error', 'connect ECONNREFUSED 127.0.0.1:5432'],
      ['pg-boss error', 'Connection terminated unexpectedly'],
    ])
  })
})
