import { describe, expect, it } from 'vitest'
import { HttpRequestError, RpcRequestError, TimeoutError } from 'viem'
import { isProviderFault } from './isProviderFault.ts'

const url = 'http://node.example:8545'
const body = { method: 'eth_sendRawTransaction', params: ['0x02'] }

describe('isProviderFault', () => {
  it.each([
    ['HTTP 500', new HttpRequestError({ url, body, status: 500, details: 'Internal Server Error' }), true],
    ['HTTP 401', new HttpRequestError({ url, body, status: 401, details: 'Unauthorized' }), true],
    ['connection refused', new HttpRequestError({ url, body, details: 'fetch failed' }), true],
    ['timeout', new TimeoutError({ url, body }), true],
    // A body over the node's limit (geth, besu: 5 MiB): the request's size, not the provider failing.
    ['HTTP 413', new HttpRequestError({ url, body, status: 413, details: 'content length too large (5242881>5242880)' }), false],
    ['nonce too low', new RpcRequestError({ url, body, error: { code: -32000, message: 'nonce too low' } }), false],
    ['rate limited', new RpcRequestError({ url, body, error: { code: -32005, message: 'limit exceeded' } }), true],
  ])('%s -> %s', (_label, err, expected) => {
    expect(isProviderFault(err)).toBe(expected)
  })
})
