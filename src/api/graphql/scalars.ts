import { getAddress } from 'viem'
import { parseAddress, parseBigInt, parseDateTime, parseHex } from '../../accept/parseFields.ts'
import { builder } from './builder.ts'

/**
 * Scalars parse with the same functions as the REST body. They throw InputError,
 * whose `extensions` (code, field) graphql-js carries into the error it reports.
 */
builder.scalarType('Address', {
  description: '20-byte EVM address. Any case in (mixed case must be a valid EIP-55 checksum); checksummed out.',
  serialize: (v) => getAddress(String(v)),
  parseValue: (v) => parseAddress(v, 'Address'),
})

builder.scalarType('Hex', {
  description: '0x-prefixed hex with an even number of digits.',
  serialize: (v) => String(v),
  parseValue: (v) => parseHex(v, 'Hex'),
})

builder.scalarType('BigInt', {
  description: 'Non-negative integer up to 2^256-1, as a decimal string (wei, gas).',
  serialize: (v) => (typeof v === 'bigint' ? v.toString() : String(v)),
  parseValue: (v) => parseBigInt(v, 'BigInt'),
})

builder.scalarType('DateTime', {
  description: 'ISO 8601 date-time with a time zone.',
  serialize: (v) => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString()),
  parseValue: (v) => parseDateTime(v, 'DateTime'),
})
