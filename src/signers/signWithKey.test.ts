import { describe, expect, it } from 'vitest'
import type { TransactionSerializable } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { createKeySigner } from './signWithKey.ts'

const KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const TO = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'

const cases: Array<[string, TransactionSerializable]> = [
  ['eip1559 transfer', { type: 'eip1559', chainId: 31337, nonce: 0, gas: 21000n, to: TO, value: 1n, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n }],
  ['eip1559 call, big nonce', { type: 'eip1559', chainId: 1, nonce: 123456, gas: 90000n, to: TO, data: '0xabcdef', value: 0n, maxFeePerGas: 300_000_000_000n, maxPriorityFeePerGas: 2n }],
  ['eip1559 contract creation', { type: 'eip1559', chainId: 10, nonce: 7, gas: 500000n, to: null, data: '0x6000', value: 0n, maxFeePerGas: 10n, maxPriorityFeePerGas: 1n }],
  ['legacy with EIP-155', { type: 'legacy', chainId: 56, nonce: 3, gas: 21000n, to: TO, value: 5n, gasPrice: 5_000_000_000n }],
]

describe('createKeySigner', () => {
  it.each(cases)('%s: the same bytes as viem', async (_, tx) => {
    const viem = await privateKeyToAccount(KEY).signTransaction(tx)
    expect(await createKeySigner(KEY)(tx)).toBe(viem)
  })
  it('refuses an invalid key', () => {
    expect(() => createKeySigner(`0x${'00'.repeat(32)}`)).toThrow(/not a valid/)
  })
})
