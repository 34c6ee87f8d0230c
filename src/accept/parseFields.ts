import { getAddress, isAddress, type Address, type Hex } from 'viem'
import { ERROR_CODE, InputError } from '../core/errors.ts'

/**
 * Field parsers shared by the GraphQL scalars and the REST body, so both paths
 * accept and reject exactly the same inputs with the same codes.
 */

export const MAX_UINT256 = 2n ** 256n - 1n
/** geth's txpool refuses transactions over 128 KiB; calldata near that can never be sent. */
export const MAX_DATA_BYTES = 128 * 1024 - 1024

export function parseAddress(value: unknown, field: string): Address {
  if (typeof value !== 'string') throw new InputError(ERROR_CODE.INVALID_ADDRESS, `${field}: expected an address string`, field)
  if (!/^0x[0-9a-fA-F]{40}$/.test(value))
    throw new InputError(ERROR_CODE.INVALID_ADDRESS, `${field}: "${truncate(value)}" is not a 20-byte hex address`, field)
  // Mixed case must be a valid EIP-55 checksum: a typo in a checksummed address is caught here.
  const digits = value.slice(2)
  const singleCase = digits === digits.toLowerCase() || digits === digits.toUpperCase()
  if (!singleCase && !isAddress(value, { strict: true }))
    throw new InputError(ERROR_CODE.INVALID_ADDRESS, `${field}: "${value}" has a wrong EIP-55 checksum`, field)
  return getAddress(value)
}

export function parseHex(value: unknown, field: string): Hex {
  if (typeof value !== 'string') throw new InputError(ERROR_CODE.INVALID_HEX, `${field}: expected a 0x-prefixed hex string`, field)
  if (!/^0x[0-9a-fA-F]*$/.test(value))
    throw new InputError(ERROR_CODE.INVALID_HEX, `${field}: "${truncate(value)}" is not 0x-prefixed hex`, field)
  if (value.length % 2 !== 0) throw new InputError(ERROR_CODE.INVALID_HEX, `${field}: hex has an odd number of digits`, field)
  if ((value.length - 2) / 2 > MAX_DATA_BYTES)
    throw new InputError(ERROR_CODE.DATA_TOO_LARGE, `${field}: ${(value.length - 2) / 2} bytes is over the ${MAX_DATA_BYTES}-byte limit`, field)
  return value.toLowerCase() as Hex
}

/** A uint256 as a decimal string (or a safe integer number); hex is not accepted, so "10" is never ambiguous. */
export function parseBigInt(value: unknown, field: string, opts: { min?: bigint; max?: bigint } = {}): bigint {
  let n: bigint
  if (typeof value === 'bigint') n = value
  else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value))
      throw new InputError(ERROR_CODE.INVALID_BIGINT, `${field}: numbers above 2^53 or with decimals lose precision; send a decimal string`, field)
    n = BigInt(value)
  } else if (typeof value === 'string') {
    if (!/^-?\d{1,80}$/.test(value))
      throw new InputError(ERROR_CODE.INVALID_BIGINT, `${field}: "${truncate(value)}" is not a decimal integer`, field)
    n = BigInt(value)
  } else throw new InputError(ERROR_CODE.INVALID_BIGINT, `${field}: expected a decimal integer string`, field)
  const min = opts.min ?? 0n
  const max = opts.max ?? MAX_UINT256
  if (n < min) throw new InputError(ERROR_CODE.VALUE_OUT_OF_RANGE, `${field}: must be at least ${min}`, field)
  if (n > max) throw new InputError(ERROR_CODE.VALUE_OUT_OF_RANGE, `${field}: must be at most ${max}`, field)
  return n
}

export function parseDateTime(value: unknown, field: string): Date {
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/.test(value))
    throw new InputError(ERROR_CODE.INVALID_DATETIME, `${field}: expected an ISO 8601 date-time with a time zone, such as 2026-01-31T12:00:00Z`, field)
  const d = new Date(value)
  // Date rolls 2026-02-30 over to March 2nd; a calendar date that does not exist is an error, not a guess.
  const [year, month, day] = value.slice(0, 10).split('-').map(Number) as [number, number, number]
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate()
  if (Number.isNaN(d.getTime()) || month < 1 || month > 12 || day < 1 || day > daysInMonth)
    throw new InputError(ERROR_CODE.INVALID_DATETIME, `${field}: "${truncate(value)}" is not a valid date`, field)
  // In UTC, as it is stored: 9999-12-31T23:00:00-14:00 is in year 10000, which Postgres does not take as written.
  const utcYear = d.getUTCFullYear()
  if (utcYear < 1 || utcYear > 9999)
    throw new InputError(ERROR_CODE.INVALID_DATETIME, `${field}: "${truncate(value)}" is outside years 1 to 9999 in UTC`, field)
  return d
}

export function parseInteger(value: unknown, field: string, opts: { min: number; max: number }): number {
  if (typeof value !== 'number' || !Number.isInteger(value))
    throw new InputError(ERROR_CODE.INVALID_INPUT, `${field}: expected an integer`, field)
  if (value < opts.min || value > opts.max)
    throw new InputError(ERROR_CODE.VALUE_OUT_OF_RANGE, `${field}: must be between ${opts.min} and ${opts.max}`, field)
  return value
}

export function parseShortString(value: unknown, field: string, maxLength: number): string {
  if (typeof value !== 'string') throw new InputError(ERROR_CODE.INVALID_INPUT, `${field}: expected a string`, field)
  if (value.length === 0 || value.length > maxLength)
    throw new InputError(ERROR_CODE.INVALID_INPUT, `${field}: must be 1 to ${maxLength} characters`, field)
  // Postgres text holds no NUL, and stores a lone surrogate as U+FFFD (a retry with the same key would then not
  // find its row); control characters in a key are a client's bug, not a key.
  if (/\p{Cs}/u.test(value)) throw new InputError(ERROR_CODE.INVALID_INPUT, `${field}: is not well-formed Unicode (a lone surrogate)`, field)
  if (/[\u0000-\u001f\u007f-\u009f]/.test(value)) throw new InputError(ERROR_CODE.INVALID_INPUT, `${field}: must not contain control characters`, field)
  return value
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
export function parseTransactionId(value: unknown, field = 'id'): string {
  if (typeof value !== 'string' || !UUID.test(value))
    throw new InputError(ERROR_CODE.INVALID_ID, `${field}: "${truncate(String(value))}" is not a transaction id (a UUID)`, field)
  return value.toLowerCase()
}

/**
 * The start of a transaction id, as the dashboard shows it (its first 8 characters) or longer, dashes optional:
 * the lowest and highest ids that start so, for a range over the primary key.
 */
export function parseIdPrefix(value: string, field = 'prefix'): { from: string; to: string } {
  const hex = value.trim().toLowerCase().replace(/-/g, '')
  if (!/^[0-9a-f]{8,32}$/.test(hex))
    throw new InputError(ERROR_CODE.INVALID_ID, `${field}: "${truncate(value)}" is not the start of a transaction id (8 to 32 hex digits, dashes allowed)`, field)
  const uuid = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
  return { from: uuid(hex.padEnd(32, '0')), to: uuid(hex.padEnd(32, 'f')) }
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}
