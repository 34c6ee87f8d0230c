import { RetryLaterError } from '../core/errors.ts'

/**
 * Codes of a connection that could not be made (postgres.js's, the socket's, and SQLSTATE 57P03 "cannot connect
 * now", 53300 "too many connections"): no statement of the request reached Postgres, so nothing of it was stored.
 * Not a connection lost during a statement (ECONNRESET, CONNECTION_CLOSED, 57P01 admin shutdown, SQLSTATE 08...):
 * its commit may have landed before the answer was lost, and a 503 invites a retry that, without an
 * idempotencyKey, would store and run the request a second time. Those stay 500s.
 */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', '57P03', '53300'])

/** Whether an error is the database out of reach before anything of the request was sent to it. */
export function isDatabaseUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && NOT_CONNECTED.has(code)
}

/** What a client is told when the database is out of reach: nothing was stored; retry soon. */
export function databaseUnavailable(): RetryLaterError {
  return new RetryLaterError('The service cannot reach its database; nothing was stored. Retry in a few seconds.', 5)
}
