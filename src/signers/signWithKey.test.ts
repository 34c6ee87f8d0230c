import { describe, expect, it } from 'vitest'
import type { TransactionSerializable } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { createInlineKeySigner, createKeySigner } from './signWithKey.ts'
import { killSigningThreadForTests, signingThreadState } from './signingThread.ts'

const KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const OTHER_KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'
const TO = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'

const cases: Array<[string, TransactionSerializable]> = [
  ['eip1559 transfer', { type: 'eip1559', chainId: 31337, nonce: 0, gas: 21000n, to: TO, value: 1n, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n }],
  ['eip1559 call, big nonce', { type: 'eip1559', chainId: 1, nonce: 123456, gas: 90000n, to: TO, data: '0xabcdef', value: 0n, maxFeePerGas: 300_000_000_000n, maxPriorityFeePerGas: 2n }],
  ['eip1559 contract creation', { type: 'eip1559', chainId: 10, nonce: 7, gas: 500000n, to: null, data: '0x6000', value: 0n, maxFeePerGas: 10n, maxPriorityFeePerGas: 1n }],
  ['legacy with EIP-155', { type: 'legacy', chainId: 56, nonce: 3, gas: 21000n, to: TO, value: 5n, gasPrice: 5_000_000_000n }],
]

const transfer = (nonce: number): TransactionSerializable => ({
  type: 'eip1559',
  chainId: 31337,
  nonce,
  gas: 21000n,
  to: TO,
  value: BigInt(nonce),
  maxFeePerGas: 2_000_000_000n,
  maxPriorityFeePerGas: 1_000_000_000n,
})

describe('createKeySigner', () => {
  it.each(cases)('%s: the same bytes as viem, in the signing thread and inline', async (_, tx) => {
    const viem = await privateKeyToAccount(KEY).signTransaction(tx)
    expect(await createKeySigner(KEY)(tx)).toBe(viem)
    expect(createInlineKeySigner(KEY)(tx)).toBe(viem)
    expect(signingThreadState().where).toBe('thread')
  })

  it('the signatures asked for in one turn go to the thread as one message', async () => {
    const sign = createKeySigner(KEY)
    await sign(transfer(0))
    const before = signingThreadState().messages
    const raws = await Promise.all(Array.from({ length: 20 }, (_, i) => sign(transfer(i))))
    expect(signingThreadState().messages - before).toBe(1)
    expect(raws[19]).toBe(await privateKeyToAccount(KEY).signTransaction(transfer(19)))
  })

  it('many signatures of two keys at once: each answer is its own transaction, by its own key', async () => {
    const a = createKeySigner(KEY)
    const b = createKeySigner(OTHER_KEY)
    const txs = Array.from({ length: 60 }, (_, i) => transfer(i))
    const got = await Promise.all(txs.map((tx, i) => (i % 2 ? b : a)(tx)))
    const want = await Promise.all(txs.map((tx, i) => privateKeyToAccount(i % 2 ? OTHER_KEY : KEY).signTransaction(tx)))
    expect(got).toEqual(want)
  })

  it('a transaction that cannot be serialized is refused as inline signing refuses it, and the others of its message are signed', async () => {
    const sign = createKeySigner(KEY)
    const bad = { ...transfer(1), to: '0x1234' } as TransactionSerializable
    const [ok, refused] = await Promise.allSettled([sign(transfer(0)), sign(bad)])
    expect(ok).toEqual({ status: 'fulfilled', value: await privateKeyToAccount(KEY).signTransaction(transfer(0)) })
    expect(refused.status).toBe('rejected')
    const reason = (refused as PromiseRejectedResult).reason as Error
    const inline = (() => {
      try {
        createInlineKeySigner(KEY)(bad)
      } catch (err) {
        return err as Error
      }
      throw new Error('inline signing took a bad address')
    })()
    expect(reason.message).toMatch(/0x1234/)
    expect([reason.name, reason.message]).toEqual([inline.name, inline.message])
    expect(signingThreadState().where).toBe('thread')
  })

  it('refuses an invalid key', () => {
    expect(() => createKeySigner(`0x${'00'.repeat(32)}`)).toThrow(/not a valid/)
  })

  // Last: the thread stays dead for the rest of this file.
  it('when the thread dies, what was waiting and what comes after is signed inline, to the same bytes', async () => {
    const sign = createKeySigner(KEY)
    await sign(transfer(0))
    const txs = Array.from({ length: 40 }, (_, i) => transfer(i))
    // The thread is told to die first; the 40 are sent to it after, and never answered by it.
    const died = killSigningThreadForTests()
    const sent = signingThreadState().messages
    const waiting = txs.map((tx) => sign(tx))
    await new Promise((resolve) => setImmediate(resolve))
    expect(signingThreadState().messages).toBe(sent + 1)
    await died
    const after = await sign(transfer(99))
    const want = await Promise.all(txs.map((tx) => privateKeyToAccount(KEY).signTransaction(tx)))
    expect(await Promise.all(waiting)).toEqual(want)
    expect(after).toBe(await privateKeyToAccount(KEY).signTransaction(transfer(99)))
    expect(signingThreadState().where).toBe('inline')
  })
})
