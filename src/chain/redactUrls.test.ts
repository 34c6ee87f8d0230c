import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { createPublicClient, http } from 'viem'
import { createUrlRedactor, redactErrorInPlace } from './redactUrls.ts'

const KEY = 'k3yAbCdEfGhIjKlMnOpQr'
const PASSWORD = 's3cr3t-pw'

describe('createUrlRedactor', () => {
  const redact = createUrlRedactor([
    `https://alice:${PASSWORD}@rpc.example.com/v2/${KEY}`,
    'https://node.example.org/?apikey=abcdef123',
    'http://127.0.0.1:8545/',
    'https://gw.example.net/key/ab12.cd34.ef56.gh78',
    'https://proxy.example.net/v1/shortkey123',
    'https://b64.example.net/v1/Zm9vYmFyYmF6cXV4+/=',
  ])
  it.each([
    [`URL: https://alice:${PASSWORD}@rpc.example.com/v2/${KEY}`, 'URL: https://***@rpc.example.com/v2/***'],
    // viem moves credentials into a header and reports the URL without them.
    [`URL: https://rpc.example.com/v2/${KEY}`, 'URL: https://***@rpc.example.com/v2/***'],
    [`the key ${KEY} alone, and the password ${PASSWORD}`, 'the key *** alone, and the password ***'],
    ['https://node.example.org/?apikey=abcdef123 failed', 'https://node.example.org/?*** failed'],
    ['nothing secret here', 'nothing secret here'],
    // Keys that are not long opaque tokens: before, each stayed as it was.
    ['https://gw.example.net/key/ab12.cd34.ef56.gh78 failed', 'https://gw.example.net/key/*** failed'],
    ['https://proxy.example.net/v1/shortkey123 failed, key shortkey123', 'https://proxy.example.net/v1/*** failed, key ***'],
    ['https://b64.example.net/v1/Zm9vYmFyYmF6cXV4+/= refused', 'https://b64.example.net/v1/***/*** refused'],
    ['a URL without secrets stays as it is: http://127.0.0.1:8545/ and http://127.0.0.1:8545', 'a URL without secrets stays as it is: http://127.0.0.1:8545/ and http://127.0.0.1:8545'],
  ])('%s', (text, expected) => {
    expect(redact(text)).toBe(expected)
  })
})

describe('redactErrorInPlace', () => {
  it("removes the URL's secrets from every text of a viem error and its causes", async () => {
    const server = createServer((_, res) => res.writeHead(500).end('boom'))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const { port } = server.address() as AddressInfo
    const url = `http://alice:${PASSWORD}@127.0.0.1:${port}/v2/${KEY}`
    try {
      const client = createPublicClient({ transport: http(url, { retryCount: 0 }) })
      const err = (await client.getBlockNumber().then(
        () => new Error('expected a failure'),
        (e: unknown) => e,
      )) as Error
      expect(JSON.stringify({ m: err.message, s: err.stack })).toContain(KEY)
      redactErrorInPlace(err, createUrlRedactor([url]))
      const everything = JSON.stringify(err, Object.getOwnPropertyNames(err)) + err.message + err.stack + JSON.stringify((err as any).cause, ['message', 'stack', 'url', 'details', 'shortMessage', 'metaMessages'])
      expect(everything).not.toContain(KEY)
      expect(everything).not.toContain(PASSWORD)
      expect(err.message).toContain(`127.0.0.1:${port}/v2/***`)
    } finally {
      server.close()
    }
  })
})
