import { ERROR_CODE, RetryLaterError, type ErrorCode } from '../core/errors.ts'

/** 429 with the seconds to wait (RetryLaterError's Retry-After and extensions.retryAfterSeconds). */
export class TooManyRequestsError extends RetryLaterError {
  override name = 'TooManyRequestsError'
  constructor(code: ErrorCode, message: string, retryAfterSeconds: number) {
    super(message, retryAfterSeconds, code, 429)
  }
}

export type RateLimiter = {
  /** Takes `count` tokens (one by default) from the key's bucket, all or none; throws TooManyRequestsError (429) when it holds fewer. */
  take: (keyName: string, count?: number) => void
}

export type RateLimits = { requestsPerSecond: number; burst: number }

/**
 * A token bucket per API key, in this instance's memory: `burst` requests at once,
 * refilled at `requestsPerSecond`. With N instances behind a balancer a key gets up
 * to N times the rate; the in-flight cap (inFlightLimit.ts) is the cross-instance bound.
 */
export function createRateLimiter(limits: RateLimits, now: () => number = () => performance.now()): RateLimiter {
  // Keys are API key names (a bounded set), so the map needs no eviction.
  const buckets = new Map<string, { tokens: number; at: number }>()
  const perMs = limits.requestsPerSecond / 1000
  return {
    take(keyName, count = 1) {
      const t = now()
      const b = buckets.get(keyName) ?? { tokens: limits.burst, at: t }
      b.tokens = Math.min(limits.burst, b.tokens + (t - b.at) * perMs)
      b.at = t
      buckets.set(keyName, b)
      if (b.tokens >= count) {
        b.tokens -= count
        return
      }
      const waitSeconds = Math.max(1, Math.ceil((Math.min(count, limits.burst) - b.tokens) / perMs / 1000))
      throw new TooManyRequestsError(
        ERROR_CODE.RATE_LIMITED,
        `Too many requests for key "${keyName}": at most ${limits.requestsPerSecond}/s (bursts of ${limits.burst}); retry in ${waitSeconds} s`,
        waitSeconds,
      )
    },
  }
}
