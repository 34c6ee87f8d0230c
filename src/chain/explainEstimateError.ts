import {
  BaseError,
  decodeErrorResult,
  ExecutionRevertedError,
  HttpRequestError,
  InsufficientFundsError,
  RpcError,
  RpcRequestError,
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
  /** The provider failed (unreachable, rate limited, behind): try again later. */
  | { kind: 'transient'; message: string }
  /**
   * No answer within the timeout: the provider's trouble, or the call's own (an estimate of a call heavy enough
   * that no node finishes it in time). The caller tells them apart by asking the provider something else.
   */
  | { kind: 'timed_out'; message: string }
  /**
   * The node answered with an error in words we do not know. Likely deterministic (a client's wording we have
   * no vector for), possibly a node's passing trouble: the caller retries for a while, then fails the request.
   */
  | { kind: 'unrecognized'; message: string }

/**
 * Refusals that no retry changes: the EVM's own errors, and the wordings geth, erigon, nethermind, besu, reth
 * and anvil use for a call that can never run (code size limits, a creation that collides, a gas need over
 * the block's limit, calldata below its intrinsic gas).
 */
const DETERMINISTIC =
  /revert|evm error|invalid ?opcode|bad ?instruction|out ?of ?gas|stack ?underflow|stack ?overflow|invalid ?jump|max code size exceeded|max initcode size exceeded|code size limit|createcontractsizelimit|createinitcodesizelimit|invalid code|return data out of bounds|contract address collision|create collision|createcollision|gas required exceeds allowance|exceeds block gas limit|intrinsic gas|gas limit too high|write protection|precompile|nonce (uint64 )?overflow|nonce max value/i

/** A node's answer that means the node (or the provider in front of it) is in trouble, not the call. */
const PROVIDER_TROUBLE =
  /rate limit|too many requests|limit exceeded|capacity|timeout|timed out|header not found|missing trie node|unknown block|service unavailable|temporarily unavailable|try again|upstream|no backends?|internal server error|bad gateway|connection (refused|reset)/i

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

/**
 * An estimate whose attempt took the whole timeout and failed as the provider's trouble: with several providers,
 * viem's fallback throws the last one's error (one marked down, say) after the others timed out.
 */
export class EstimateTimedOutError extends Error {
  constructor(cause: unknown) {
    super(`no provider answered within the timeout (the last said: ${String((cause as BaseError)?.shortMessage ?? (cause as Error)?.message ?? cause)})`, { cause })
    this.name = 'EstimateTimedOutError'
  }
}

export function explainEstimateError(err: unknown): EstimateFailure {
  if (err instanceof EstimateTimedOutError) return { kind: 'timed_out', message: err.message }
  if (!(err instanceof BaseError)) return { kind: 'transient', message: String((err as Error)?.message ?? err) }
  if (err.walk((e) => e instanceof TimeoutError)) return { kind: 'timed_out', message: err.shortMessage }
  if (err.walk((e) => e instanceof HttpRequestError)) return { kind: 'transient', message: err.shortMessage }
  if (err.walk((e) => e instanceof InsufficientFundsError)) return { kind: 'insufficient_funds', message: err.shortMessage }
  const reverted = err.walk((e) => e instanceof ExecutionRevertedError) as ExecutionRevertedError | null
  if (reverted) {
    const data = findRevertData(err)
    const text = reverted.details || reverted.shortMessage
    return { kind: 'reverted', reason: decodeRevertReason(data, /revert/i.test(text) ? text : `execution reverted: ${text}`) }
  }
  const details = (err.walk((e) => typeof (e as BaseError).details === 'string') as BaseError | null)?.details ?? err.shortMessage
  if (DETERMINISTIC.test(details)) return { kind: 'invalid', message: details }
  // geth's limit on one call's execution (rpc.evmtimeout, 5 s): like no answer in time, the call's or the node's.
  if (/execution aborted \(timeout/i.test(details)) return { kind: 'timed_out', message: details }
  // -32005 is "limit exceeded" (rate limiting) on Infura/Alchemy-style providers.
  const code = (err.walk((e) => typeof (e as { code?: unknown }).code === 'number') as { code?: number } | null)?.code
  if (code === -32005 || PROVIDER_TROUBLE.test(details)) return { kind: 'transient', message: details }
  // Not a node's answer at all (no RPC error in the chain): our side or the transport failed.
  if (!err.walk((e) => e instanceof RpcError || e instanceof RpcRequestError)) return { kind: 'transient', message: details }
  return { kind: 'unrecognized', message: details }
}
