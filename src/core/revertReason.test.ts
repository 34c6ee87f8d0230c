import { describe, expect, it } from 'vitest'
import { encodeErrorResult } from 'viem'
import { SOLIDITY_ERRORS, describeRevertData } from './revertReason.ts'

describe('describeRevertData', () => {
  it('Error(string): the message', () => {
    expect(describeRevertData(encodeErrorResult({ abi: SOLIDITY_ERRORS, errorName: 'Error', args: ['nope'] }))).toBe('nope')
  })
  it('Panic(uint256): the code and what it means', () => {
    expect(describeRevertData(encodeErrorResult({ abi: SOLIDITY_ERRORS, errorName: 'Panic', args: [0x11n] }))).toBe('panic 0x11 (arithmetic overflow or underflow)')
    expect(describeRevertData(encodeErrorResult({ abi: SOLIDITY_ERRORS, errorName: 'Panic', args: [0x99n] }))).toBe('panic 0x99')
  })
  it('a custom error: its selector and the size of its arguments', () => {
    expect(describeRevertData('0x12345678')).toBe('custom error 0x12345678')
    expect(describeRevertData(`0x12345678${'00'.repeat(32)}`)).toBe('custom error 0x12345678 (32 bytes of arguments)')
  })
  it('no data', () => {
    expect(describeRevertData('0x')).toBe('no revert data')
    expect(describeRevertData(undefined)).toBe('no revert data')
  })
})
