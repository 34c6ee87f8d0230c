import { RetryLaterError } from '../core/errors.ts'

/** postgres.js's and the socket's codes for a connection that could not be made or was lost. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
])

/**
 * Whether an error is the database being out of reach (refused, timed out, dropped, shutting down, out of
 * connections), not a statement's own error: SQLSTATE class 08 (connection exception), 57P01-57P03 (shutdown,
 * starting up) and 53300 (too many connections).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return false
  return CONNECTION_CODES.has(code) || code.startsWith('08') || /^57P0[123]$/.test(code) || code === '53300'
}

/** What a client is told when the database is out of reach: retry soon, with the same idempotencyKey. */
export function databaseUnavailable(): RetryLaterError {
  return new RetryLaterError(
    'The service cannot reach its database; the request may not have been stored. Retry with the same idempotencyKey.',
    5,
  )
}
