import { BaseError } from 'viem'

/** JSON-RPC "method not found" and EIP-1474 "method not supported". */
const UNSUPPORTED_CODES = new Set([-32601, -32004])
const UNSUPPORTED_TEXT = /method not found|not supported|does not exist|unsupported method|is not available/i

/**
 * Did the provider say it has no such RPC method (an optional one such as eth_getBlockReceipts),
 * rather than fail to answer? Only then is falling back to another method for good the right call.
 */
export function isMethodUnsupported(err: unknown): boolean {
  if (!(err instanceof BaseError)) return false
  const hit = err.walk((e) => {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'number' && UNSUPPORTED_CODES.has(code)) return true
    return e instanceof Error && UNSUPPORTED_TEXT.test((e as BaseError).details ?? '')
  })
  return hit !== null
}
