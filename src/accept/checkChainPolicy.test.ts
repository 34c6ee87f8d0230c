import { describe, expect, it } from 'vitest'
import { InputError } from '../core/errors.ts'
import { checkChainPolicy } from './checkChainPolicy.ts'
import type { BroadcastRequest } from './validateBroadcastRequest.ts'

const A = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
const B = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC'
const req = (over: Partial<BroadcastRequest>): BroadcastRequest =>
  ({ chainId: 1, to: A, data: '0x', value: 0n, gasLimit: null, idempotencyKey: null, validUntil: null, ...over }) as BroadcastRequest
const chain = { chainId: 1, policy: { allowedTo: [A] as `0x${string}`[], maxValue: 100n, maxGasLimit: 50_000n } }

const cases: Array<[string, Partial<BroadcastRequest>, string | null, string | null]> = [
  ['allowed recipient, limits met', { value: 100n, gasLimit: 50_000n }, null, null],
  ['recipient not listed', { to: B }, 'TO_NOT_ALLOWED', 'to'],
  ['contract creation with an allow list', { to: null, data: '0x6000' }, 'TO_NOT_ALLOWED', 'to'],
  ['value one wei over', { value: 101n }, 'VALUE_TOO_HIGH', 'value'],
  ['gas limit one over', { gasLimit: 50_001n }, 'GAS_LIMIT_TOO_HIGH', 'gasLimit'],
  ['no gas limit given (estimated later)', { gasLimit: null }, null, null],
]

describe('checkChainPolicy', () => {
  it.each(cases)('%s', (_, over, code, field) => {
    const run = () => checkChainPolicy(req(over), chain)
    if (code === null) return expect(run).not.toThrow()
    try {
      run()
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(InputError)
      expect((err as InputError).code).toBe(code)
      expect((err as InputError).field).toBe(field)
      expect((err as InputError).httpStatus).toBe(400)
    }
  })

  it('no policy, or an unknown chain: everything passes', () => {
    expect(() => checkChainPolicy(req({ to: B, value: 10n ** 30n }), { chainId: 1, policy: undefined })).not.toThrow()
    expect(() => checkChainPolicy(req({ to: B }), undefined)).not.toThrow()
  })
})
