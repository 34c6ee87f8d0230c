import { decodeErrorResult, parseAbi, type Hex } from 'viem'

/** Solidity's two built-in errors. */
export const SOLIDITY_ERRORS = parseAbi(['error Error(string)', 'error Panic(uint256)'])

/** Solidity's panic codes (0x4e487b71), as the compiler documents them. */
const PANICS: Record<number, string> = {
  0x01: 'assertion failed',
  0x11: 'arithmetic overflow or underflow',
  0x12: 'division or modulo by zero',
  0x21: 'invalid enum value',
  0x22: 'invalid storage byte array',
  0x31: 'pop on an empty array',
  0x32: 'array index out of bounds',
  0x41: 'out of memory',
  0x51: 'call to an uninitialized function',
}

/**
 * A revert's data in words: `Error(string)` as its message, `Panic(uint256)` as what the code means, a custom
 * error by its selector (the service has no ABI to name it), no data as such. Pure.
 */
export function describeRevertData(data: Hex | undefined | null): string {
  if (!data || data === '0x') return 'no revert data'
  try {
    const decoded = decodeErrorResult({ abi: SOLIDITY_ERRORS, data })
    if (decoded.errorName === 'Error') return String(decoded.args?.[0] ?? '')
    if (decoded.errorName === 'Panic') {
      const code = Number(decoded.args?.[0] ?? 0)
      return `panic 0x${code.toString(16).padStart(2, '0')}${PANICS[code] ? ` (${PANICS[code]})` : ''}`
    }
  } catch {
    // Not one of Solidity's two: a custom error.
  }
  return `custom error ${data.slice(0, 10)}${data.length > 10 ? ` (${(data.length - 10) / 2} bytes of arguments)` : ''}`
}
