import { HttpRequestError, RpcRequestError } from 'viem'
import { describe, expect, it } from 'vitest'
import { classifySendAnswer } from '../core/classifySendError.ts'
import { isProviderFault } from './isProviderFault.ts'
import { toSendAnswer } from './toSendAnswer.ts'

/** What viem's http transport throws for a non-2xx answer with a JSON-RPC error body (utils/rpc/http.ts). */
const rpcErrorIn = (status: number, code: number, message: string) => new RpcRequestError({ body: { method: 'eth_sendRawTransaction' }, error: { code, message }, status, url: 'http://node' })

describe('toSendAnswer', () => {
  it('keeps the HTTP status of a JSON-RPC error: a rate limit in unknown words is provider trouble, not a possible send', () => {
    const err = rpcErrorIn(429, -32007, '100/second request limit reached - reduce calls per second or upgrade your account')
    const answer = toSendAnswer(err)
    expect(answer).toMatchObject({ kind: 'rpc_error', status: 429, code: -32007 })
    expect(classifySendAnswer(answer)).toBe('provider_error')
    expect(isProviderFault(err)).toBe(true)
  })

  it('a node answer in a 2xx keeps no status; known words in a 500 still say what they say', () => {
    expect(toSendAnswer(new RpcRequestError({ body: {}, error: { code: -32000, message: 'something odd' }, url: 'http://node' }))).not.toHaveProperty('status')
    expect(classifySendAnswer(toSendAnswer(rpcErrorIn(500, -32000, 'nonce too low')))).toBe('nonce_too_low')
  })

  it('a plain-text HTTP error is an http_error with its status', () => {
    expect(toSendAnswer(new HttpRequestError({ url: 'http://node', status: 413, details: 'request entity too large' }))).toEqual({
      kind: 'http_error',
      status: 413,
      message: 'request entity too large',
    })
  })
})
