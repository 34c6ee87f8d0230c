import { Writable } from 'node:stream'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createLogger } from '../common/logger.ts'
import { createUnacceptedLog, type UnacceptedAttempt } from './unacceptedLog.ts'

const down = (i: number): UnacceptedAttempt => ({
  hash: `0x${i.toString(16).padStart(64, '0')}`,
  answers: [
    { name: 'alchemy', outcome: 'provider_error', error: 'fetch failed' },
    { name: 'quicknode', outcome: 'provider_error', error: `HTTP 503 (request ${i})` },
  ],
})

describe('createUnacceptedLog', () => {
  afterEach(() => void vi.useRealTimers())

  it('an outage of 1,000 pending attempts sent 5 times is two lines a minute, not 5,000; a new kind of answer is said at once', () => {
    vi.useFakeTimers()
    const lines: Array<Record<string, unknown>> = []
    const log = createLogger({ level: 'info', pretty: false, destination: new Writable({ write: (c, _e, done) => (lines.push(JSON.parse(c.toString())), done()) }) })
    const note = createUnacceptedLog(log, 1)
    const batch = Array.from({ length: 1000 }, (_, i) => down(i))
    for (let pass = 0; pass < 5; pass++) {
      note(batch)
      vi.advanceTimersByTime(5_000)
    }
    expect(lines.map((l) => l.msg)).toEqual(['no provider accepted the attempt'])
    expect(lines[0]!.answers).toEqual(['alchemy: provider_error: fetch failed', 'quicknode: provider_error: HTTP 503 (request 0)'])
    // Another kind (one provider answers "nonce too low") is said in full at once.
    note([{ hash: '0x01', answers: [{ name: 'alchemy', outcome: 'nonce_too_low', error: 'nonce too low' }, { name: 'quicknode', outcome: 'provider_error', error: 'x' }] }])
    expect(lines).toHaveLength(2)
    vi.advanceTimersByTime(60_000)
    expect(lines).toHaveLength(3)
    expect(lines[2]!.msg).toMatch(/^more attempts no provider accepted in the last 60 s/)
    expect(lines[2]!.byAnswers).toEqual({ 'alchemy: provider_error, quicknode: provider_error': 4999 })
    // Nothing more came: no more lines. After a quiet minute the same kind is news again, said in full.
    vi.advanceTimersByTime(120_000)
    expect(lines).toHaveLength(3)
    note([down(7)])
    expect(lines).toHaveLength(4)
    expect(lines[3]!.hash).toBe(down(7).hash)
  })
})
