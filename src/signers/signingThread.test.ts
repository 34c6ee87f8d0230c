import { describe, expect, it } from 'vitest'
import { parseTransaction, recoverTransactionAddress, type TransactionSerializable } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { createThreadKeySigner } from './signingThread.ts'

const KEY_A = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80' as const
const KEY_B = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d' as const
const TO = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'

const tx = (nonce: number): TransactionSerializable => ({
  type: 'eip1559',
  chainId: 31337,
  nonce,
  gas: 21000n,
  to: TO,
  value: BigInt(nonce),
  maxFeePerGas: 2_000_000_000n,
  maxPriorityFeePerGas: 1_000_000_000n,
})

describe('createThreadKeySigner (signing on the worker thread)', () => {
  it('signs 300 concurrent transactions of two keys with exactly the bytes viem produces, each by its own key', async () => {
    // A thread that failed falls back to the main thread with a process warning: none may appear.
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.message)
    process.on('warning', onWarning)
    const a = createThreadKeySigner(KEY_A)
    const b = createThreadKeySigner(KEY_B)
    const requests = Array.from({ length: 300 }, (_, i) => ({ key: i % 2 ? KEY_B : KEY_A, tx: tx(i), sign: i % 2 ? b : a }))
    const signed = await Promise.all(requests.map((r) => r.sign(r.tx)))
    for (const [i, r] of requests.entries()) {
      expect(signed[i]).toBe(await privateKeyToAccount(r.key).signTransaction(r.tx))
      expect(parseTransaction(signed[i]!).nonce).toBe(i)
    }
    expect(await recoverTransactionAddress({ serializedTransaction: signed[1] as never })).toBe(privateKeyToAccount(KEY_B).address)
    process.off('warning', onWarning)
    expect(warnings.filter((w) => /signing thread/.test(w))).toEqual([])
  })

  it('legacy transactions too, and an invalid key is refused at once', async () => {
    const legacy: TransactionSerializable = { type: 'legacy', chainId: 56, nonce: 3, gas: 21000n, to: TO, value: 5n, gasPrice: 5_000_000_000n }
    expect(await createThreadKeySigner(KEY_A)(legacy)).toBe(await privateKeyToAccount(KEY_A).signTransaction(legacy))
    expect(() => createThreadKeySigner(`0x${'00'.repeat(32)}`)).toThrow(/not a valid/)
  })
})
