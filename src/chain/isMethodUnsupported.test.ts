import { HttpRequestError, InternalRpcError, MethodNotFoundRpcError, MethodNotSupportedRpcError, RpcRequestError } from 'viem'
import { describe, expect, it } from 'vitest'
import { isMethodUnsupported } from './isMethodUnsupported.ts'

const rpc = (code: number, message: string) => new RpcRequestError({ body: {}, url: 'http://x', error: { code, message } })

describe('isMethodUnsupported', () => {
  it('is true for "method not found" and "method not supported" answers', () => {
    expect(isMethodUnsupported(new MethodNotFoundRpcError(rpc(-32601, 'the method eth_getBlockReceipts does not exist/is not available')))).toBe(true)
    expect(isMethodUnsupported(new MethodNotSupportedRpcError(rpc(-32004, 'method not supported')))).toBe(true)
    expect(isMethodUnsupported(rpc(-32601, 'Method not found'))).toBe(true)
    // Some providers answer with a generic code and say it in words.
    expect(isMethodUnsupported(new InternalRpcError(rpc(-32603, 'Unsupported method: eth_getBlockReceipts')))).toBe(true)
  })

  it('is false for a provider that failed to answer or answered something else', () => {
    expect(isMethodUnsupported(new HttpRequestError({ url: 'http://x', status: 503, details: 'Service Unavailable' }))).toBe(false)
    expect(isMethodUnsupported(rpc(-32000, 'header not found'))).toBe(false)
    expect(isMethodUnsupported(new Error('method not found'))).toBe(false)
    expect(isMethodUnsupported(null)).toBe(false)
  })
})
