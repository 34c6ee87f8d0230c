import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createPublicClient, http } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { explainEstimateError } from './explainEstimateError.ts'

/**
 * Each case is a node's real answer to eth_estimateGas (a JSON-RPC error, or an HTTP status), sent through
 * viem's client as the sign stage calls it, so the error chain is the one viem builds in production.
 */
let server: Server
let answer: { status?: number; error?: { code: number; message: string; data?: string }; hangMs?: number } = {}
let url = ''

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const { id } = JSON.parse(body) as { id: number }
      if (answer.hangMs) return void setTimeout(() => res.writeHead(200).end(), answer.hangMs)
      if (answer.status) {
        res.writeHead(answer.status, { 'content-type': 'text/plain' })
        return void res.end('upstream trouble')
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ jsonrpc: '2.0', id, error: answer.error }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

async function explain(a: typeof answer) {
  answer = a
  const client = createPublicClient({ transport: http(url, { retryCount: 0, timeout: 200 }) })
  const err = await client
    .estimateGas({ account: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266', to: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', data: '0x' })
    .then(
      () => null,
      (e: unknown) => e,
    )
  expect(err).not.toBeNull()
  return explainEstimateError(err)
}

describe('explainEstimateError', () => {
  it('a revert fails the request, with the decoded reason', async () => {
    // Error(string) "nope"
    const data = '0x08c379a0000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000000046e6f706500000000000000000000000000000000000000000000000000000000'
    expect(await explain({ error: { code: 3, message: 'execution reverted: nope', data } })).toEqual({ kind: 'reverted', reason: 'execution reverted: nope' })
  })

  it.each([
    ['geth', -32000, 'max code size exceeded'],
    ['geth', -32000, 'max initcode size exceeded: code size 60000 limit 49152'],
    ['geth', -32000, 'invalid code: must not begin with 0xef'],
    ['geth', -32000, 'return data out of bounds'],
    ['geth', -32000, 'gas required exceeds allowance (30000000)'],
    ['geth', -32000, 'contract creation code storage out of gas'],
    ['erigon', -32000, 'contract address collision'],
    ['anvil', -32603, 'EVM error CreateContractSizeLimit'],
    ['nethermind', -32015, 'InvalidOpcode'],
  ])('a refusal no retry changes (%s: %s) fails the request at once', async (_client, code, message) => {
    // viem reads some as a revert (its ExecutionRevertedError matches "revert"-like wordings): also final.
    expect(['invalid', 'reverted']).toContain((await explain({ error: { code, message } })).kind)
  })

  it.each([
    ['-32005 limit exceeded', -32005, 'project ID request rate exceeded'],
    ['header not found', -32000, 'header not found'],
    ['missing trie node', -32000, 'missing trie node 1a2b (path )'],
  ])('provider trouble (%s) is transient', async (_name, code, message) => {
    expect((await explain({ error: { code, message } })).kind).toBe('transient')
  })

  it("no answer within the client's timeout, and geth's own time limit for a call, are timed_out (the call's or the provider's: the sign stage asks)", async () => {
    expect((await explain({ hangMs: 1_000 })).kind).toBe('timed_out')
    expect(await explain({ error: { code: -32000, message: 'execution aborted (timeout = 5s)' } })).toEqual({ kind: 'timed_out', message: 'execution aborted (timeout = 5s)' })
  })

  it('HTTP 503 and 429 are transient', async () => {
    expect((await explain({ status: 503 })).kind).toBe('transient')
    expect((await explain({ status: 429 })).kind).toBe('transient')
  })

  it('an answer in words we do not know is unrecognized (retried for a while, then FAILED), not transient', async () => {
    expect(await explain({ error: { code: -32000, message: 'frobnication quota of the sender is spent' } })).toEqual({
      kind: 'unrecognized',
      message: 'frobnication quota of the sender is spent',
    })
    // With a code viem does not map to one of its RpcError classes, too.
    expect((await explain({ error: { code: -39999, message: 'something new' } })).kind).toBe('unrecognized')
  })
})
