/**
 * Stable error codes. They reach clients as `extensions.code` (GraphQL) and
 * `error.code` (REST), and the dashboard; never rename one.
 */
export const ERROR_CODE = {
  // request validation (400)
  INVALID_JSON: 'INVALID_JSON',
  INVALID_INPUT: 'INVALID_INPUT',
  UNKNOWN_FIELD: 'UNKNOWN_FIELD',
  INVALID_ADDRESS: 'INVALID_ADDRESS',
  INVALID_HEX: 'INVALID_HEX',
  INVALID_BIGINT: 'INVALID_BIGINT',
  INVALID_DATETIME: 'INVALID_DATETIME',
  INVALID_ID: 'INVALID_ID',
  VALUE_OUT_OF_RANGE: 'VALUE_OUT_OF_RANGE',
  DATA_TOO_LARGE: 'DATA_TOO_LARGE',
  CHAIN_REQUIRED: 'CHAIN_REQUIRED',
  UNKNOWN_CHAIN: 'UNKNOWN_CHAIN',
  NO_SIGNER: 'NO_SIGNER',
  /** `from` names no signer configured for the chain (400, field "from"). */
  UNKNOWN_SIGNER: 'UNKNOWN_SIGNER',
  VALID_UNTIL_PASSED: 'VALID_UNTIL_PASSED',
  IDEMPOTENCY_CONFLICT: 'IDEMPOTENCY_CONFLICT',
  // a chain's policy (config chains[].policy) refuses it (400)
  TO_NOT_ALLOWED: 'TO_NOT_ALLOWED',
  VALUE_TOO_HIGH: 'VALUE_TOO_HIGH',
  GAS_LIMIT_TOO_HIGH: 'GAS_LIMIT_TOO_HIGH',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** A GraphQL POST without Content-Length (a chunked body): 411. */
  LENGTH_REQUIRED: 'LENGTH_REQUIRED',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  NOT_FOUND: 'NOT_FOUND',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  INVALID_STATE: 'INVALID_STATE',
  /** Not possible now, but later (409): the message says after what. A client may ask again; INVALID_STATE is for good. */
  NOT_YET: 'NOT_YET',
  // auth
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  // overload
  RATE_LIMITED: 'RATE_LIMITED',
  /** The key already has limits.maxInFlightPerKey unfinished transactions (429). */
  TOO_MANY_IN_FLIGHT: 'TOO_MANY_IN_FLIGHT',
  /** The key already holds limits.maxSubscriptionsPerKey open subscriptions on this instance (429). */
  TOO_MANY_SUBSCRIPTIONS: 'TOO_MANY_SUBSCRIPTIONS',
  /** A GraphQL query over the depth, alias, cost or token limits (graphql-armor). */
  QUERY_TOO_COMPLEX: 'QUERY_TOO_COMPLEX',
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL: 'INTERNAL',
  // pipeline outcomes, stored on the transaction
  GAS_ESTIMATION_REVERTED: 'GAS_ESTIMATION_REVERTED',
  GAS_ESTIMATION_FAILED: 'GAS_ESTIMATION_FAILED',
  INSUFFICIENT_FUNDS: 'INSUFFICIENT_FUNDS',
  INVALID_TRANSACTION: 'INVALID_TRANSACTION',
  EXPIRED: 'EXPIRED',
  EXECUTION_REVERTED: 'EXECUTION_REVERTED',
  FEE_CAP_REACHED: 'FEE_CAP_REACHED',
  /** An admin cancelled it (QUEUED: at once; PENDING: its nonce went to something else, so nothing of it ran). */
  CANCELLED: 'CANCELLED',
  /** A filler whose nonce was used by another transaction of the key (outside the service): nothing left to fill. */
  NONCE_USED_ELSEWHERE: 'NONCE_USED_ELSEWHERE',
  /**
   * Still QUEUED: its remote signer (Web3Signer, Clef) failed to sign it; it waits, looked at again every few
   * seconds, for as long as that lasts. A request that named no signer moves to another signer meanwhile, unless
   * the signer said "no" to it (a refusal is never routed around).
   */
  SIGNER_UNAVAILABLE: 'SIGNER_UNAVAILABLE',
  /**
   * Its remote signer answered "no" to this request (a Clef rule, a Web3Signer policy) while it signs the signer's
   * other requests: QUEUED while chains[].patience.signMs runs (the requests behind it are signed meanwhile),
   * then FAILED at the first refusal after it. No nonce is spent, and it never moves to another signer.
   */
  SIGNER_REFUSED: 'SIGNER_REFUSED',
  /** No provider took it, in words we do not recognize, no node held it, for chains[].patience.sendMs. */
  SEND_REFUSED: 'SEND_REFUSED',
} as const
export type ErrorCode = (typeof ERROR_CODE)[keyof typeof ERROR_CODE]

/** A request the client must change before retrying. Carries the offending field. */
export class InputError extends Error {
  override name = 'InputError'
  readonly extensions: { code: ErrorCode; field?: string }
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
    readonly httpStatus = 400,
  ) {
    super(message)
    this.extensions = field ? { code, field } : { code }
  }
}

/**
 * An error that says when to come back: REST sends `Retry-After`, GraphQL `extensions.retryAfterSeconds`. 503
 * UNAVAILABLE as it is (the service cannot answer for now: its database unreachable); the rate limits' 429s are
 * TooManyRequestsError.
 */
export class RetryLaterError extends InputError {
  override name = 'RetryLaterError'
  declare readonly extensions: { code: ErrorCode; retryAfterSeconds: number }
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    code: ErrorCode = ERROR_CODE.UNAVAILABLE,
    httpStatus = 503,
  ) {
    super(code, message, undefined, httpStatus)
    this.extensions = { code, retryAfterSeconds }
  }
}

export function isInputError(err: unknown): err is InputError {
  return err instanceof InputError
}
