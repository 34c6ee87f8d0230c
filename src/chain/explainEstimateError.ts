import {
  BaseError,
  decodeErrorResult,
  ExecutionRevertedError,
  HttpRequestError,
  InsufficientFundsError,
  TimeoutError,
  type Hex,
} from 'viem'

export type EstimateFailure =
  /** The call reverts: it would fail on chain too. */
  | { kind: 'reverted'; reason: string }
  /** The signer cannot pay for value + gas right now. */
  | { kind: 'insufficient_funds'; message: string }
  /** Any other deterministic refusal by the EVM (bad opcode, out of gas at the cap). */
  | { kind: 'invalid'; message: string }
  /** The provider failed: try again later. */
  | { kind: 'transient'; message: string }

function findRevertData(err: BaseError): Hex | undefined {
  let data: Hex | undefined
  err.walk((e) => {
    const d = (e as { data?: unknown }).data
    if (typeof d === 'string' && /^0x[0-9a-fA-F]{8,}$/.test(d)) data = d as Hex
    else if (d && typeof d === 'object' && typeof (d as { data?: unknown }).data === 'string') data = (d as { data: Hex }).data
    return false
  })
  return data
}

/** Decodes Error(string), Panic(uint256), or names the custom error selector. */
export function decodeRevertReason(data: Hex | undefined, fallback: string): string {
  if (!data || data === '0x') return fallback
  try {
    const decoded = decodeErrorResult({ abi: [], data })
    if (decoded.errorName === 'Error') return `execution reverted: ${String(decoded.args?.[0])}`
    if (decoded.errorName === 'Panic') return `execution reverted: panic 0x${BigInt(decoded.args?.[0] as bigint).toString(16)}`
    return `execution reverted: ${decoded.errorName}`
  } catch {
    return `execution reverted: custom error ${data.slice(0, 10)}`
  }
}

export function explainEstimateError(err: unknown): EstimateFailure {
  if (!(err instanceof BaseError)) return { kind: 'transient', message: String((err as Error)?.message ?? err) }
  if (err.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError))
    return { kind: 'transient', message: err.shortMessage }
  if (err.walk((e) => e instanceof InsufficientFundsError)) return { kind: 'insufficient_funds', message: err.shortMessage }
  const reverted = err.walk((e) => e instanceof ExecutionRevertedError) as ExecutionRevertedError | null
  if (reverted) {
    const data = findRevertData(err)
    const text = reverted.details || reverted.shortMessage
    return { kind: 'reverted', reason: decodeRevertReason(data, /revert/i.test(text) ? text : `execution reverted: ${text}`) }
  }
  const details = (err.walk((e) => typeof (e as BaseError).details === 'string') as BaseError | null)?.details ?? err.shortMessage
  if (/revert|evm error|invalid opcode|out of gas|stack underflow|stack overflow|invalid jump/i.test(details))
    return { kind: 'invalid', message: details }
  return { kind: 'transient', message: details }
}
