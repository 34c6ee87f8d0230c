import { describe, it, expect } from 'vitest'
import { InputError, type ErrorCode } from '../core/errors.ts'
import {
  MAX_DATA_BYTES,
  MAX_UINT256,
  parseAddress,
  parseBigInt,
  parseDateTime,
  parseHex,
  parseInteger,
  parseShortString,
  parseTransactionId,
} from './parseFields.ts'
import { thrown } from '../../tests/helpers/thrown.ts'

const inputError = (fn: () => unknown) => thrown(fn, InputError)

function expectInputError(fn: () => unknown, code: ErrorCode, field: string) {
  const err = inputError(fn)
  expect({ code: err.code, field: err.field }).toEqual({ code, field })
  expect(err.extensions).toEqual({ code, field })
  expect(err.httpStatus).toBe(400)
  expect(err.message.startsWith(`${field}: `)).toBe(true)
}

const CHECKSUMMED = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'

describe('parseAddress', () => {
  it.each([
    ['lowercase', CHECKSUMMED.toLowerCase()],
    ['all-uppercase hex digits', `0x${CHECKSUMMED.slice(2).toUpperCase()}`],
    ['a correct EIP-55 checksum', CHECKSUMMED],
  ])('accepts %s and returns the checksummed address', (_label, input) => {
    expect(parseAddress(input, 'to')).toBe(CHECKSUMMED)
  })

  it('accepts the zero address', () => {
    expect(parseAddress('0x0000000000000000000000000000000000000000', 'to')).toBe('0x0000000000000000000000000000000000000000')
  })

  it.each<[string, unknown]>([
    ['a wrong mixed-case checksum', '0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266'],
    ['a typo in a checksummed address', '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb9226A'],
    ['too short (19 bytes)', CHECKSUMMED.slice(0, -2)],
    ['too long (21 bytes)', `${CHECKSUMMED}00`],
    ['no 0x prefix', CHECKSUMMED.slice(2)],
    ['an uppercase 0X prefix', `0X${CHECKSUMMED.slice(2)}`],
    ['non-hex digits', '0xg39fd6e51aad88f6f4ce6ab8827279cfffb92266'],
    ['surrounding spaces', ` ${CHECKSUMMED} `],
    ['an ENS name', 'vitalik.eth'],
    ['an empty string', ''],
    ['a number', 1234],
    ['null', null],
    ['an object', { address: CHECKSUMMED }],
  ])('rejects %s with INVALID_ADDRESS', (_label, input) => {
    expectInputError(() => parseAddress(input, 'to'), 'INVALID_ADDRESS', 'to')
  })
})

describe('parseHex', () => {
  it.each([
    ['empty data', '0x', '0x'],
    ['one byte', '0x00', '0x00'],
    ['mixed case, lowercased', '0xDeadBEEF', '0xdeadbeef'],
    ['a selector and argument', '0xa9059cbb000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266', '0xa9059cbb000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266'],
  ])('accepts %s', (_label, input, expected) => {
    expect(parseHex(input, 'data')).toBe(expected)
  })

  it('accepts exactly MAX_DATA_BYTES', () => {
    const value = `0x${'ab'.repeat(MAX_DATA_BYTES)}`
    expect(parseHex(value, 'data')).toBe(value)
  })

  it.each<[string, unknown]>([
    ['odd length', '0x123'],
    ['a single digit', '0x1'],
    ['non-hex digits', '0xzz'],
    ['missing 0x', 'deadbeef'],
    ['an uppercase 0X prefix', '0XDEADBEEF'],
    ['whitespace inside', '0xdead beef'],
    ['an empty string', ''],
    ['a number', 0xdead],
    ['null', null],
  ])('rejects %s with INVALID_HEX', (_label, input) => {
    expectInputError(() => parseHex(input, 'data'), 'INVALID_HEX', 'data')
  })

  it('rejects one byte over MAX_DATA_BYTES with DATA_TOO_LARGE', () => {
    expectInputError(() => parseHex(`0x${'00'.repeat(MAX_DATA_BYTES + 1)}`, 'data'), 'DATA_TOO_LARGE', 'data')
  })
})

describe('parseBigInt', () => {
  it.each<[string, unknown, bigint]>([
    ['zero', '0', 0n],
    ['a decimal string', '1000000000000000000', 10n ** 18n],
    ['leading zeros', '007', 7n],
    ['a safe integer number', 21000, 21_000n],
    ['Number.MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER, 2n ** 53n - 1n],
    ['a bigint', 5n, 5n],
    ['2^256-1', MAX_UINT256.toString(), MAX_UINT256],
  ])('accepts %s', (_label, input, expected) => {
    expect(parseBigInt(input, 'value')).toBe(expected)
  })

  it.each<[string, unknown, ErrorCode]>([
    ['a negative string', '-1', 'VALUE_OUT_OF_RANGE'],
    ['a negative number', -1, 'VALUE_OUT_OF_RANGE'],
    ['a negative bigint', -1n, 'VALUE_OUT_OF_RANGE'],
    ['2^256', (MAX_UINT256 + 1n).toString(), 'VALUE_OUT_OF_RANGE'],
    ['2^256 as a bigint', MAX_UINT256 + 1n, 'VALUE_OUT_OF_RANGE'],
    ['"1.5"', '1.5', 'INVALID_BIGINT'],
    ['"abc"', 'abc', 'INVALID_BIGINT'],
    ['"0x10" (hex is not accepted)', '0x10', 'INVALID_BIGINT'],
    ['"1e18"', '1e18', 'INVALID_BIGINT'],
    ['"+1"', '+1', 'INVALID_BIGINT'],
    ['" 1"', ' 1', 'INVALID_BIGINT'],
    ['an empty string', '', 'INVALID_BIGINT'],
    ['81 digits', '1'.repeat(81), 'INVALID_BIGINT'],
    ['an unsafe JS number (2^53)', 2 ** 53, 'INVALID_BIGINT'],
    ['1e18 as a JS number', 1e18, 'INVALID_BIGINT'],
    ['a fractional JS number', 1.5, 'INVALID_BIGINT'],
    ['NaN', Number.NaN, 'INVALID_BIGINT'],
    ['Infinity', Number.POSITIVE_INFINITY, 'INVALID_BIGINT'],
    ['null', null, 'INVALID_BIGINT'],
    ['a boolean', true, 'INVALID_BIGINT'],
  ])('rejects %s with %s', (_label, input, code) => {
    expectInputError(() => parseBigInt(input, 'value'), code, 'value')
  })

  it.each<[string, bigint, ErrorCode | null]>([
    ['20999', 21_000n, 'VALUE_OUT_OF_RANGE'],
    ['21000', 21_000n, null],
    ['1000000000', 21_000n, null],
    ['1000000001', 21_000n, 'VALUE_OUT_OF_RANGE'],
  ])('with min 21000 and max 10^9, %s -> %s', (input, min, code) => {
    const parse = () => parseBigInt(input, 'gasLimit', { min, max: 1_000_000_000n })
    if (code === null) expect(parse()).toBe(BigInt(input))
    else expectInputError(parse, code, 'gasLimit')
  })
})

describe('parseDateTime', () => {
  it.each([
    ['UTC with Z', '2026-01-31T12:00:00Z', '2026-01-31T12:00:00.000Z'],
    ['without seconds', '2026-01-31T12:00Z', '2026-01-31T12:00:00.000Z'],
    ['milliseconds', '2026-01-31T12:00:00.250Z', '2026-01-31T12:00:00.250Z'],
    ['nanoseconds', '2026-01-31T12:00:00.123456789Z', '2026-01-31T12:00:00.123Z'],
    ['a +hh:mm offset', '2026-01-31T14:00:00+02:00', '2026-01-31T12:00:00.000Z'],
    ['a -hh:mm offset', '2026-01-31T07:00:00-05:00', '2026-01-31T12:00:00.000Z'],
    ['a +hhmm offset', '2026-01-31T14:00:00+0200', '2026-01-31T12:00:00.000Z'],
    ['Feb 29 in a leap year', '2028-02-29T12:00:00Z', '2028-02-29T12:00:00.000Z'],
  ])('accepts %s', (_label, input, iso) => {
    expect(parseDateTime(input, 'validUntil').toISOString()).toBe(iso)
  })

  it('accepts a valid Date as it is', () => {
    const d = new Date('2026-01-31T12:00:00Z')
    expect(parseDateTime(d, 'validUntil')).toBe(d)
  })

  it.each<[string, unknown]>([
    ['no time zone', '2026-01-31T12:00:00'],
    ['a date only', '2026-01-31'],
    ['a space instead of T', '2026-01-31 12:00:00Z'],
    ['a month 13', '2026-13-01T12:00:00Z'],
    ['a day that does not exist (Feb 30)', '2026-02-30T12:00:00Z'],
    ['Feb 29 in a common year', '2027-02-29T12:00:00Z'],
    ['an hour 25', '2026-01-31T25:00:00Z'],
    ['free text', 'tomorrow'],
    ['an empty string', ''],
    ['epoch milliseconds', 1_769_860_800_000],
    ['an invalid Date', new Date('nope')],
    ['null', null],
  ])('rejects %s with INVALID_DATETIME', (_label, input) => {
    expectInputError(() => parseDateTime(input, 'validUntil'), 'INVALID_DATETIME', 'validUntil')
  })
})

describe('parseInteger', () => {
  it.each<[unknown, ErrorCode | null]>([
    [1, null],
    [2 ** 53 - 1, null],
    [0, 'VALUE_OUT_OF_RANGE'],
    [1.5, 'INVALID_INPUT'],
    ['1', 'INVALID_INPUT'],
    [null, 'INVALID_INPUT'],
  ])('%s -> %s', (input, code) => {
    const parse = () => parseInteger(input, 'chainId', { min: 1, max: 2 ** 53 - 1 })
    if (code === null) expect(parse()).toBe(input)
    else expectInputError(parse, code, 'chainId')
  })
})

describe('parseShortString', () => {
  it.each<[unknown, boolean]>([
    ['order-1', true],
    ['x'.repeat(200), true],
    ['x'.repeat(201), false],
    ['', false],
    [42, false],
  ])('%s -> ok %s', (input, ok) => {
    const parse = () => parseShortString(input, 'idempotencyKey', 200)
    if (ok) expect(parse()).toBe(input)
    else expectInputError(parse, 'INVALID_INPUT', 'idempotencyKey')
  })
})

describe('parseTransactionId', () => {
  it('accepts a UUID and lowercases it', () => {
    expect(parseTransactionId('0F8FAD5B-D9CB-469F-A165-70867728950E')).toBe('0f8fad5b-d9cb-469f-a165-70867728950e')
  })

  it.each<[unknown]>([['not-a-uuid'], ['0f8fad5b-d9cb-469f-a165-70867728950'], [123], [null]])('rejects %s with INVALID_ID', (input) => {
    expectInputError(() => parseTransactionId(input), 'INVALID_ID', 'id')
  })
})
