import { classifySendAnswer, isProviderHttpStatus, isTooLargeHttpStatus } from '../core/classifySendError.ts'
import { toSendAnswer } from './toSendAnswer.ts'

/**
 * Did the provider fail, rather than answer? Timeouts, connection errors, any
 * HTTP error status but 413 (a 401 for a bad API key is the provider's problem too) and
 * RPC errors that mean "busy" (rate limits, -32005, "header not found") count
 * against its health. An RPC answer such as "nonce too low" or "execution
 * reverted" is a working provider telling us something.
 */
export function isProviderFault(err: unknown): boolean {
  const answer = toSendAnswer(err)
  switch (answer.kind) {
    case 'ok':
      return false
    case 'timeout':
    case 'network_error':
      return true
    case 'http_error':
      // A body over the node's limit is the request's size, not the provider failing.
      return !isTooLargeHttpStatus(answer.status)
    case 'rpc_error':
      // Any 408/429/5xx counts against health, even in words that say something of the transaction.
      if (answer.status !== undefined && isProviderHttpStatus(answer.status)) return true
      return classifySendAnswer(answer) === 'provider_error'
  }
}
