import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toHex, type Hex } from 'viem'
import { minimumGasLimit } from '../src/core/intrinsicGas.ts'
import { submit, waitForStatus } from './helpers/chainControl.ts'
import { RECIPIENT, startTestEnv, type TestEnv } from './helpers/testService.ts'

/**
 * A gasLimit below what a transaction costs before it runs used to be accepted; anvil takes such a
 * transaction and drops it, so its nonce stayed a hole and every later request of the signer waited behind
 * it. The minimum is checked at accept; here against the real node: exactly the minimum mines, using all of it.
 */
describe('gasLimit against the intrinsic gas (real anvil)', () => {
  let env: TestEnv
  beforeAll(async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.2 } })
  }, 60_000)
  afterAll(() => env?.stop())

  const cases: { label: string; to: string | null; data: Hex }[] = [
    { label: 'a call with 4 non-zero calldata bytes (EIP-7623 floor above the intrinsic gas)', to: RECIPIENT, data: '0x12345678' },
    { label: 'a call with 1000 zero bytes', to: RECIPIENT, data: toHex(new Uint8Array(1000)) },
    { label: 'a contract creation (init code STOP)', to: null, data: '0x00' },
  ]

  it.each(cases)('$label: one gas short is refused at accept with the minimum; the minimum itself mines', async ({ to, data }) => {
    const least = minimumGasLimit({ to, data })
    const body = { ...(to ? { to } : {}), data }
    const short = await env.post('/broadcast_transaction', { ...body, gasLimit: String(least - 1n) })
    expect(short.status).toBe(400)
    expect(short.json.error).toMatchObject({ code: 'VALUE_OUT_OF_RANGE', field: 'gasLimit' })
    expect(short.json.error.message).toContain(`below the ${least} gas`)
    const id = await submit(env, { ...body, gasLimit: String(least) })
    const done = await waitForStatus(env, id, 'CONFIRMED')
    const receipt = await env.chain.getTransactionReceipt({ hash: done.hash })
    expect(receipt.status).toBe('success')
    expect(receipt.gasUsed).toBe(least)
  })
})
