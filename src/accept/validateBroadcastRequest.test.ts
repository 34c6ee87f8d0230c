import { describe, it, expect } from 'vitest'
import type { FileConfig } from '../config/schema.ts'
import { InputError, type ErrorCode } from '../core/errors.ts'
import { BROADCAST_FIELDS, validateBroadcastRequest } from './validateBroadcastRequest.ts'
import { thrown } from '../../tests/helpers/thrown.ts'

/** Only chainId is read from a chain; the rest of ChainConfig does not matter here. */
const chains = (...ids: number[]) => ({ chains: ids.map((chainId) => ({ chainId })) }) as unknown as Pick<FileConfig, 'chains'>
const ONE_CHAIN = chains(1)
const TWO_CHAINS = chains(1, 137)

const NOW = new Date('2026-01-31T12:00:00Z')
const TO = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'

const inputError = (fn: () => unknown) => thrown(fn, InputError)

describe('validateBroadcastRequest: accepted', () => {
  it('a plain transfer with one chain configured fills defaults', () => {
    expect(validateBroadcastRequest({ to: TO.toLowerCase(), value: '1000' }, ONE_CHAIN, NOW)).toEqual({
      chainId: 1,
      to: TO,
      data: '0x',
      value: 1000n,
      gasLimit: null,
      idempotencyKey: null,
      validUntil: null,
      from: null,
      chainNamed: false,
    })
  })

  it('every field given', () => {
    expect(
      validateBroadcastRequest(
        {
          chainId: 137,
          to: TO,
          data: '0xA9059CBB',
          value: 5,
          gasLimit: '60000',
          idempotencyKey: 'order-42',
          validUntil: '2026-01-31T12:00:01Z',
          from: TO.toLowerCase(),
        },
        TWO_CHAINS,
        NOW,
      ),
    ).toEqual({
      chainId: 137,
      to: TO,
      data: '0xa9059cbb',
      value: 5n,
      gasLimit: 60_000n,
      idempotencyKey: 'order-42',
      validUntil: new Date('2026-01-31T12:00:01Z'),
      from: TO,
      chainNamed: true,
    })
  })

  it('contract creation: no `to`, data holds the init code', () => {
    const r = validateBroadcastRequest({ data: '0x6080604052' }, ONE_CHAIN, NOW)
    expect(r.to).toBeNull()
    expect(r.data).toBe('0x6080604052')
  })

  it('null fields count as absent', () => {
    const r = validateBroadcastRequest({ chainId: null, to: TO, data: null, value: null, gasLimit: null, idempotencyKey: null, validUntil: null }, ONE_CHAIN, NOW)
    expect(r).toMatchObject({ chainId: 1, data: '0x', value: 0n, gasLimit: null, idempotencyKey: null, validUntil: null })
  })

  it('gasLimit at the bounds', () => {
    expect(validateBroadcastRequest({ to: TO, gasLimit: '21000' }, ONE_CHAIN, NOW).gasLimit).toBe(21_000n)
    expect(validateBroadcastRequest({ to: TO, gasLimit: '1000000000' }, ONE_CHAIN, NOW).gasLimit).toBe(1_000_000_000n)
  })

  it('the EIP-7623 calldata floor applies unless the chain turns it off (a chain before Prague)', () => {
    // 4 non-zero calldata bytes: intrinsic gas 21064, floor 21160.
    const floorOn = { chains: [{ chainId: 1, calldataFloor: true }] } as unknown as Pick<FileConfig, 'chains'>
    const floorOff = { chains: [{ chainId: 1, calldataFloor: false }] } as unknown as Pick<FileConfig, 'chains'>
    expect(inputError(() => validateBroadcastRequest({ to: TO, data: '0x12345678', gasLimit: '21064' }, floorOn, NOW))).toMatchObject({ field: 'gasLimit' })
    expect(validateBroadcastRequest({ to: TO, data: '0x12345678', gasLimit: '21064' }, floorOff, NOW).gasLimit).toBe(21_064n)
    expect(inputError(() => validateBroadcastRequest({ to: TO, data: '0x12345678', gasLimit: '21063' }, floorOff, NOW))).toMatchObject({ field: 'gasLimit' })
  })

  it('knows exactly these fields', () => {
    expect([...BROADCAST_FIELDS]).toEqual(['chainId', 'to', 'data', 'value', 'gasLimit', 'idempotencyKey', 'validUntil', 'from'])
  })
})

describe('validateBroadcastRequest: rejected', () => {
  const cases: ReadonlyArray<{ label: string; input: unknown; config?: Pick<FileConfig, 'chains'>; code: ErrorCode; field: string | undefined }> = [
    { label: 'an unknown field', input: { to: TO, gasPrice: '1' }, code: 'UNKNOWN_FIELD', field: 'gasPrice' },
    { label: 'a misspelt field', input: { to: TO, chainID: 1 }, code: 'UNKNOWN_FIELD', field: 'chainID' },
    { label: 'an unknown chain', input: { chainId: 5, to: TO }, code: 'UNKNOWN_CHAIN', field: 'chainId' },
    { label: 'an unknown chain with two configured', input: { chainId: 5, to: TO }, config: TWO_CHAINS, code: 'UNKNOWN_CHAIN', field: 'chainId' },
    { label: 'chainId omitted with two chains', input: { to: TO }, config: TWO_CHAINS, code: 'CHAIN_REQUIRED', field: 'chainId' },
    { label: 'chainId as a string', input: { chainId: '1', to: TO }, code: 'INVALID_INPUT', field: 'chainId' },
    { label: 'chainId zero', input: { chainId: 0, to: TO }, code: 'VALUE_OUT_OF_RANGE', field: 'chainId' },
    { label: 'no `to` and no data', input: {}, code: 'INVALID_INPUT', field: 'to' },
    { label: 'no `to` and empty data', input: { data: '0x', value: '1' }, code: 'INVALID_INPUT', field: 'to' },
    { label: 'a bad `to`', input: { to: '0x1234' }, code: 'INVALID_ADDRESS', field: 'to' },
    { label: 'a wrong checksum in `to`', input: { to: '0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266' }, code: 'INVALID_ADDRESS', field: 'to' },
    { label: 'odd-length data', input: { to: TO, data: '0x123' }, code: 'INVALID_HEX', field: 'data' },
    { label: 'a negative value', input: { to: TO, value: '-1' }, code: 'VALUE_OUT_OF_RANGE', field: 'value' },
    { label: 'a hex value', input: { to: TO, value: '0x10' }, code: 'INVALID_BIGINT', field: 'value' },
    { label: 'gasLimit below 21000', input: { to: TO, gasLimit: '20999' }, code: 'VALUE_OUT_OF_RANGE', field: 'gasLimit' },
    { label: 'gasLimit below the calldata floor', input: { to: TO, data: '0x12345678', gasLimit: '21159' }, code: 'VALUE_OUT_OF_RANGE', field: 'gasLimit' },
    { label: 'gasLimit below a creation’s intrinsic gas', input: { data: '0x00', gasLimit: '53005' }, code: 'VALUE_OUT_OF_RANGE', field: 'gasLimit' },
    { label: 'gasLimit above 10^9', input: { to: TO, gasLimit: '1000000001' }, code: 'VALUE_OUT_OF_RANGE', field: 'gasLimit' },
    { label: 'an empty idempotencyKey', input: { to: TO, idempotencyKey: '' }, code: 'INVALID_INPUT', field: 'idempotencyKey' },
    { label: 'an idempotencyKey over 200 characters', input: { to: TO, idempotencyKey: 'k'.repeat(201) }, code: 'INVALID_INPUT', field: 'idempotencyKey' },
    { label: 'validUntil without a time zone', input: { to: TO, validUntil: '2026-02-01T00:00:00' }, code: 'INVALID_DATETIME', field: 'validUntil' },
    { label: 'validUntil in the past', input: { to: TO, validUntil: '2026-01-31T11:59:59Z' }, code: 'VALID_UNTIL_PASSED', field: 'validUntil' },
    { label: 'validUntil exactly now', input: { to: TO, validUntil: '2026-01-31T12:00:00Z' }, code: 'VALID_UNTIL_PASSED', field: 'validUntil' },
    { label: 'null body', input: null, code: 'INVALID_INPUT', field: undefined },
    { label: 'an array body', input: [{ to: TO }], code: 'INVALID_INPUT', field: undefined },
    { label: 'a string body', input: 'to=0x', code: 'INVALID_INPUT', field: undefined },
  ]

  it.each(cases)('$label -> $code ($field)', ({ input, config, code, field }) => {
    const err = inputError(() => validateBroadcastRequest(input, config ?? ONE_CHAIN, NOW))
    expect(err.code).toBe(code)
    expect(err.field).toBe(field)
  })

  it('the unknown field is named in the message and truncated to 64 characters', () => {
    const long = 'x'.repeat(100)
    const err = inputError(() => validateBroadcastRequest({ [long]: 1 }, ONE_CHAIN, NOW))
    expect(err.code).toBe('UNKNOWN_FIELD')
    expect(err.field).toBe('x'.repeat(64))
    expect(err.message).toContain('expected some of: chainId, to, data')
  })

  it('an unknown field is reported before any other problem', () => {
    const err = inputError(() => validateBroadcastRequest({ to: 'bad', bogus: 1 }, TWO_CHAINS, NOW))
    expect({ code: err.code, field: err.field }).toEqual({ code: 'UNKNOWN_FIELD', field: 'bogus' })
  })

  it('CHAIN_REQUIRED lists the configured chains', () => {
    expect(inputError(() => validateBroadcastRequest({ to: TO }, TWO_CHAINS, NOW)).message).toContain('1, 137')
  })

  it('validUntil in the past with an idempotencyKey is left to the accept path (it may be a retry of a stored request)', () => {
    const r = validateBroadcastRequest({ to: TO, validUntil: '2026-01-31T11:59:59Z', idempotencyKey: 'k' }, ONE_CHAIN, NOW)
    expect(r.validUntil).toEqual(new Date('2026-01-31T11:59:59Z'))
  })

  it('a refusal of the config as it is now (chain, gas floor) with an idempotencyKey is left to the accept path (it may be a retry of a stored request)', () => {
    const noChain = validateBroadcastRequest({ to: TO, idempotencyKey: 'k' }, TWO_CHAINS, NOW)
    expect(noChain).toMatchObject({ chainId: null, idempotencyKey: 'k', refusal: { code: 'CHAIN_REQUIRED', field: 'chainId' } })
    const unknown = validateBroadcastRequest({ chainId: 5, to: TO, idempotencyKey: 'k' }, ONE_CHAIN, NOW)
    expect(unknown).toMatchObject({ chainId: 5, refusal: { code: 'UNKNOWN_CHAIN' } })
    const floor = validateBroadcastRequest({ to: TO, data: '0x12345678', gasLimit: '21159', idempotencyKey: 'k' }, ONE_CHAIN, NOW)
    expect(floor).toMatchObject({ gasLimit: 21_159n, refusal: { code: 'VALUE_OUT_OF_RANGE', field: 'gasLimit' } })
    // A value refused whatever the config is refused at once.
    expect(inputError(() => validateBroadcastRequest({ to: TO, gasLimit: '20999', idempotencyKey: 'k' }, TWO_CHAINS, NOW))).toMatchObject({ field: 'gasLimit' })
  })

  it('validUntil is compared with the `now` argument', () => {
    const input = { to: TO, validUntil: '2026-01-31T12:00:00Z' }
    expect(validateBroadcastRequest(input, ONE_CHAIN, new Date('2026-01-31T11:59:59.999Z')).validUntil).toEqual(new Date('2026-01-31T12:00:00Z'))
    expect(inputError(() => validateBroadcastRequest(input, ONE_CHAIN, new Date('2026-01-31T12:00:00.001Z'))).code).toBe('VALID_UNTIL_PASSED')
  })
})
