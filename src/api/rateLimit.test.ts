import { describe, expect, it } from 'vitest'
import { createRateLimiter, TooManyRequestsError } from './rateLimit.ts'

describe('createRateLimiter (token bucket per key)', () => {
  const setup = (limits = { requestsPerSecond: 10, burst: 5 }) => {
    let t = 0
    const limiter = createRateLimiter(limits, () => t)
    const take = (key = 'a') => {
      try {
        limiter.take(key)
        return 'ok'
      } catch (err) {
        expect(err).toBeInstanceOf(TooManyRequestsError)
        return (err as TooManyRequestsError).retryAfterSeconds
      }
    }
    return { take, advance: (ms: number) => (t += ms) }
  }

  it('lets a burst through, then refuses with a Retry-After of at least 1 s', () => {
    const { take } = setup()
    expect(Array.from({ length: 5 }, () => take())).toEqual(['ok', 'ok', 'ok', 'ok', 'ok'])
    expect(take()).toBe(1)
  })

  it('refills at the rate, never above the burst', () => {
    const { take, advance } = setup()
    for (let i = 0; i < 5; i++) take()
    advance(100) // one token at 10/s
    expect(take()).toBe('ok')
    expect(take()).toBe(1)
    advance(60_000)
    expect(Array.from({ length: 6 }, () => take())).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 1])
  })

  it('keys do not share a bucket', () => {
    const { take } = setup()
    for (let i = 0; i < 5; i++) take('a')
    expect(take('a')).toBe(1)
    expect(take('b')).toBe('ok')
  })

  it('a slow rate asks for a longer wait', () => {
    const { take } = setup({ requestsPerSecond: 0.1, burst: 1 })
    expect(take()).toBe('ok')
    expect(take()).toBe(10)
  })

  it('the error is a 429 with code RATE_LIMITED and retryAfterSeconds in its extensions', () => {
    const limiter = createRateLimiter({ requestsPerSecond: 1, burst: 1 }, () => 0)
    limiter.take('k')
    try {
      limiter.take('k')
      expect.unreachable()
    } catch (err) {
      const e = err as TooManyRequestsError
      expect(e.httpStatus).toBe(429)
      expect(e.extensions).toEqual({ code: 'RATE_LIMITED', retryAfterSeconds: 1 })
    }
  })
})
