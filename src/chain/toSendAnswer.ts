import { BaseError, HttpRequestError, RpcRequestError, TimeoutError } from 'viem'
import type { SendAnswer } from '../core/classifySendError.ts'

/** Turns whatever viem threw into the shape the classifier reads. */
export function toSendAnswer(err: unknown): SendAnswer {
  if (!(err instanceof BaseError)) return { kind: 'network_error', message: String((err as Error)?.message ?? err) }
  if (err.walk((e) => e instanceof TimeoutError)) return { kind: 'timeout' }
  const rpc = err.walk((e) => e instanceof RpcRequestError) as RpcRequestError | null
  if (rpc) return { kind: 'rpc_error', code: rpc.code, message: rpc.details || rpc.shortMessage, ...(rpc.status === undefined ? {} : { status: rpc.status }) }
  const http = err.walk((e) => e instanceof HttpRequestError) as HttpRequestError | null
  if (http) {
    if (http.status === undefined) return { kind: 'network_error', message: networkMessage(http) }
    return { kind: 'http_error', status: http.status, message: http.details }
  }
  const withCode = err.walk((e) => typeof (e as { code?: unknown }).code === 'number') as (BaseError & { code: number }) | null
  return { kind: 'rpc_error', code: withCode?.code, message: err.details || err.shortMessage }
}

/** One line for an answer that was not a success: what the attempts and the health view show. */
export function describeSendAnswer(answer: SendAnswer): string | null {
  switch (answer.kind) {
    case 'ok':
      return null
    case 'timeout':
      return 'timed out'
    case 'http_error':
      return `HTTP ${answer.status}${answer.message ? `: ${answer.message}` : ''}`
    default:
      return answer.message
  }
}

/** undici says only "fetch failed"; the reason ("other side closed", "connect ECONNREFUSED ...") is in its causes. */
function networkMessage(err: HttpRequestError): string {
  const outer = err.details || err.shortMessage
  let inner: unknown = err.cause
  let reason: string | null = null
  for (let depth = 0; inner && typeof inner === 'object' && depth < 5; depth++) {
    const message = (inner as { message?: unknown }).message
    if (typeof message === 'string' && message && message !== outer) reason = message
    inner = (inner as { cause?: unknown }).cause
  }
  return reason ? `${outer}: ${reason}` : outer
}
