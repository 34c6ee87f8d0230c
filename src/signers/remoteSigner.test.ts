import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hexToBigInt, numberToHex, parseTransaction, serializeTransaction, type Hex, type TransactionSerializable } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { loadRemoteSigner, RemoteSignerError, toRpcRequest } from './remoteSigner.ts'
import { WAITS_FOR_SIGNER, wasRefused } from '../sign/signQueued.ts'

const account = privateKeyToAccount('0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a')
const TX: TransactionSerializable = { chainId: 31337, nonce: 7, gas: 21_000n, to: '0x000000000000000000000000000000000000dEaD', value: 5n, data: '0x1234', maxFeePerGas: 3n, maxPriorityFeePerGas: 2n, type: 'eip1559' }

/** A stand-in remote signer whose answers each test sets. */
let answer: (tx: Record<string, string>) => Promise<unknown>
let accounts: unknown = [account.address.toLowerCase()]
/** Answer as Clef's external API does: account_list and account_signTransaction, no eth_* method. */
let clef = false
let server: Server
let url: string
beforeAll(async () => {
  server = createServer(async (req, res) => {
    let body = ''
    for await (const c of req) body += c
    const call = JSON.parse(body) as { id: number; method: string; params: [Record<string, string>] }
    const reply = (result: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: call.id, result }))
    const notFound = () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: call.id, error: { code: -32601, message: `the method ${call.method} does not exist/is not available` } }))
    if (clef !== call.method.startsWith('account_')) return void notFound()
    if (call.method === 'account_list') return reply([account.address])
    if (call.method === 'eth_accounts') {
      if (accounts === 'unsupported')
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: call.id, error: { code: -32601, message: 'Method not found' } }))
      return reply(accounts)
    }
    const result = await answer(call.params[0])
    // A test may answer with its own HTTP status and JSON-RPC body.
    if (result && typeof result === 'object' && 'httpStatus' in result) {
      const { httpStatus, error } = result as { httpStatus: number; error: { code: number; message: string } }
      return void res.writeHead(httpStatus, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: call.id, error }))
    }
    reply(result)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  url = `http://user:remote-s3cret@127.0.0.1:${(server.address() as AddressInfo).port}/`
})
afterAll(() => void server.close())

/** Signs what the request says, the way a real remote signer does (with `extra` fields a signer might add). */
const signRequest = (r: Record<string, string>, extra: { accessList?: { address: Hex; storageKeys: Hex[] }[] } = {}) =>
  account.signTransaction({
    ...extra,
    chainId: Number(r.chainId),
    nonce: Number(r.nonce),
    gas: hexToBigInt(r.gas as Hex),
    to: r.to as Hex,
    value: hexToBigInt(r.value as Hex),
    data: r.data as Hex,
    maxFeePerGas: hexToBigInt(r.maxFeePerGas as Hex),
    maxPriorityFeePerGas: hexToBigInt(r.maxPriorityFeePerGas as Hex),
    type: 'eip1559',
  })

describe('loadRemoteSigner', () => {
  it('formats the request as eth_signTransaction expects', () => {
    expect(toRpcRequest(account.address, TX)).toEqual({
      from: account.address,
      to: TX.to,
      gas: '0x5208',
      value: '0x5',
      data: '0x1234',
      nonce: '0x7',
      chainId: '0x7a69',
      type: '0x2',
      maxFeePerGas: '0x3',
      maxPriorityFeePerGas: '0x2',
    })
    expect(toRpcRequest(account.address, { chainId: 1, nonce: 0, gas: 21_000n, gasPrice: 9n, type: 'legacy' })).toEqual({
      from: account.address,
      gas: '0x5208',
      value: '0x0',
      data: '0x',
      nonce: '0x0',
      chainId: '0x1',
      type: '0x0',
      gasPrice: '0x9',
    })
  })

  it('returns the raw transaction, given as a string or as geth/Clef { raw, tx }', async () => {
    const signer = await loadRemoteSigner({ name: 'r', remote: { url, address: account.address } })
    answer = signRequest
    expect(await signer.signTransaction(TX)).toBe(await account.signTransaction(TX))
    answer = async (r) => ({ raw: await signRequest(r), tx: {} })
    expect(await signer.signTransaction(TX)).toBe(await account.signTransaction(TX))
  })

  it('refuses an answer that is not the transaction asked for', async () => {
    const signer = await loadRemoteSigner({ name: 'r', remote: { url, address: account.address } })
    answer = (r) => signRequest({ ...r, nonce: '0x8', value: '0x6' })
    await expect(signer.signTransaction(TX)).rejects.toThrow('signer "r": the remote signer signed a different transaction than asked (nonce 8, value 6)')
    answer = (r) => privateKeyToAccount('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80').signTransaction({ ...TX, to: r.to as Hex })
    await expect(signer.signTransaction(TX)).rejects.toThrow(/signed a different transaction than asked \(sender 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\)/)
    // The asked transaction, with an access list the signer (or a proxy) added: more intrinsic gas than asked for.
    answer = (r) => signRequest(r, { accessList: [{ address: r.to as Hex, storageKeys: [] }] })
    await expect(signer.signTransaction(TX)).rejects.toThrow('signer "r": the remote signer signed a different transaction than asked (accessList)')
    answer = async () => '0xdeadbeef'
    await expect(signer.signTransaction(TX)).rejects.toThrow('answered with bytes that are not a signed transaction')
    answer = async () => null
    await expect(signer.signTransaction(TX)).rejects.toThrow('answered without a signed transaction')
  })

  it('a JSON-RPC error in an HTTP 200 is the signer saying no; an HTTP error status or an internal error is the signer failing', async () => {
    const signer = await loadRemoteSigner({ name: 'r', remote: { url, address: account.address } })
    const outcome = async (httpStatus: number, code: number, message: string) => {
      answer = async () => ({ httpStatus, error: { code, message } })
      const err = await signer.signTransaction(TX).then(
        () => null,
        (e: unknown) => e as RemoteSignerError,
      )
      expect(err).toBeInstanceOf(RemoteSignerError)
      return { refused: err!.refused, message: err!.message }
    }
    expect(await outcome(200, -32000, 'Request denied')).toEqual({ refused: true, message: expect.stringMatching(/^signer "r": eth_signTransaction at http:\/\/\*\*\*@.* refused: Request denied$/) })
    // An expired token at a proxy in front of it, a bad request, the signer's own trouble: not about the request.
    for (const [status, code] of [[401, -32000], [403, -32000], [400, -32000], [503, -32000], [200, -32603]] as const)
      expect((await outcome(status, code, 'no')).refused, `HTTP ${status}, code ${code}`).toBe(false)
  })

  it('speaks Clef\'s external API (account_list, account_signTransaction) when the signer has no eth_* methods', async () => {
    clef = true
    try {
      // Before: loaded (eth_accounts "not found" read as "offers only signing"), then every request got "method not
      // found" to eth_signTransaction, taken for the signer saying no.
      const signer = await loadRemoteSigner({ name: 'c', remote: { url, address: account.address } })
      answer = async (r) => ({ raw: await signRequest(r), tx: {} })
      expect(await signer.signTransaction(TX)).toBe(await account.signTransaction(TX))
      await expect(loadRemoteSigner({ name: 'c', remote: { url, address: '0x000000000000000000000000000000000000dEaD' } })).rejects.toThrow(/does not hold/)
      // Its "no" (a rule denies it) is a refusal, and the sign stage reads it back as one from the request's note: a
      // request Clef refused was never recognized as refused before (it waited as SIGNER_UNAVAILABLE for good).
      answer = async () => ({ httpStatus: 200, error: { code: -32000, message: 'Request denied' } })
      const no = (await signer.signTransaction(TX).catch((e: unknown) => e)) as RemoteSignerError
      expect(no.refused).toBe(true)
      expect(no.message).toMatch(/^signer "c": account_signTransaction at .* refused: Request denied$/)
      expect(wasRefused({ error_code: 'SIGNER_UNAVAILABLE', error_message: `${no.message}${WAITS_FOR_SIGNER}` })).toBe(true)
      expect(wasRefused({ error_code: 'SIGNER_UNAVAILABLE', error_message: 'signer "c": account_signTransaction at x failed: timed out' })).toBe(false)
    } finally {
      clef = false
    }
  })

  it('"method not found" or "invalid params" to eth_signTransaction is the signer failing (a setup to fix), not a "no"', async () => {
    const signer = await loadRemoteSigner({ name: 'r', remote: { url, address: account.address } })
    for (const code of [-32601, -32602]) {
      answer = async () => ({ httpStatus: 200, error: { code, message: 'not like this' } })
      const err = (await signer.signTransaction(TX).catch((e: unknown) => e)) as RemoteSignerError
      expect(err, String(code)).toBeInstanceOf(RemoteSignerError)
      expect(err.refused, String(code)).toBe(false)
    }
  })

  it('refuses a high-s signature (EIP-2): it recovers to the right sender, but nodes refuse it', async () => {
    const signer = await loadRemoteSigner({ name: 'r', remote: { url, address: account.address } })
    // A KMS that does not normalize s: the same signature with s' = n - s and the other parity.
    answer = async (r) => {
      const { r: sigR, s: sigS, yParity, ...tx } = parseTransaction(await signRequest(r))
      const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
      return serializeTransaction(tx as TransactionSerializable, { r: sigR!, s: numberToHex(n - hexToBigInt(sigS!), { size: 32 }), yParity: yParity === 0 ? 1 : 0 })
    }
    const err = (await signer.signTransaction(TX).catch((e: unknown) => e)) as RemoteSignerError
    expect(err).toBeInstanceOf(RemoteSignerError)
    expect(err.message).toMatch(/high-s signature \(EIP-2\), which nodes refuse/)
    expect(err.refused).toBe(false)
  })

  it('at start-up: refuses a signer that does not hold the address; accepts one without eth_accounts', async () => {
    accounts = ['0x000000000000000000000000000000000000dEaD']
    await expect(loadRemoteSigner({ name: 'r', remote: { url, address: account.address } })).rejects.toThrow(
      `signer "r": remote signer http://***@127.0.0.1:${(server.address() as AddressInfo).port}/ does not hold ${account.address}`,
    )
    accounts = 'unsupported'
    await expect(loadRemoteSigner({ name: 'r', remote: { url, address: account.address } })).resolves.toBeTruthy()
    accounts = [account.address.toLowerCase()]
  })

  it('at start-up: an unreachable signer is an error naming it, without the URL credentials', async () => {
    const dead = createServer()
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()))
    const port = (dead.address() as AddressInfo).port
    await new Promise<void>((r) => dead.close(() => r()))
    const err = (await loadRemoteSigner({ name: 'far', remote: { url: `http://user:remote-s3cret@127.0.0.1:${port}/`, address: account.address, timeoutMs: 500 } }).catch(
      (e: Error) => e,
    )) as Error
    expect(err.message).toMatch(new RegExp(`^signer "far": remote signer http://\\*\\*\\*@127\\.0\\.0\\.1:${port}/ cannot be reached: fetch failed`))
    expect(`${err.message}${err.stack}`).not.toContain('remote-s3cret')
  })
})
