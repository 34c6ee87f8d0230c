import postgres from 'postgres'
import { afterAll, describe, expect, it } from 'vitest'
import { submit, waitForStatus } from './helpers/chainControl.ts'
import type { FaultProxy } from './helpers/faultProxy.ts'
import { REMOTE_ADDRESS, startWithRemoteSigner } from './helpers/remoteSigner.ts'
import { capturedLogger, SIGNER, waitFor, type TestEnv } from './helpers/testService.ts'

const TO = '0x000000000000000000000000000000000000dEaD'

describe('reconcile, one signer failing', () => {
  let env: TestEnv | undefined
  let proxy: FaultProxy | undefined
  let sql: postgres.Sql | undefined
  afterAll(async () => {
    await sql?.end()
    await env?.stop()
    await proxy?.stop()
  })

  it("a remote signer that is down while its nonce hole needs a filler holds up no other signer's reconcile", async () => {
    const { log, lines } = capturedLogger('warn')
    // The remote signer first: a pass reconciles the chain's signers in this order, so its failure comes first.
    ;({ env, proxy } = await startWithRemoteSigner({ anvil: { blockTimeSec: 0.2 }, log, remoteFirst: true }))
    const e = env
    sql = postgres(e.databaseUrl, { max: 1, onnotice: () => {} })
    const db = sql
    // One confirmed transaction each, so each signer has its nonce row.
    for (const from of [REMOTE_ADDRESS, SIGNER.address]) await waitForStatus(e, await submit(e, { to: TO, value: '1', gasLimit: '21000', from }), 'CONFIRMED')

    // The remote signer goes down; then each signer gets a hole at its next nonce (a transaction that held it
    // failed and freed it, as after SEND_REFUSED): only a zero-value self-transfer, signed by that signer, fills it.
    proxy!.setMode('http500')
    await db`UPDATE signer_nonces SET next_nonce = next_nonce + 1`
    const count = (address: `0x${string}`) => e.chain.getTransactionCount({ address, blockTag: 'latest' })

    // The local signer's hole is filled and mined, while the remote signer, reconciled first, fails on every pass.
    const filler = await waitFor('the local signer\'s filler CONFIRMED', async () => {
      const [row] = await db<{ nonce: string; status: string }[]>`SELECT nonce::text, status FROM transactions WHERE kind = 'FILLER' AND signer = ${SIGNER.address}`
      return row?.status === 'CONFIRMED' && row
    }, 30_000)
    expect(filler.nonce).toBe('1')
    expect(await count(SIGNER.address)).toBe(2)
    expect(await count(REMOTE_ADDRESS)).toBe(1)
    // (Waited for: on a loaded machine the local filler can confirm before the pass that failed logs it.)
    await waitFor('the remote signer\'s reconcile failure logged', async () => lines.some((l) => l.includes('reconciling a signer failed') && l.includes(REMOTE_ADDRESS)), 15_000)
    expect(await db`SELECT 1 FROM transactions WHERE kind = 'FILLER' AND signer = ${REMOTE_ADDRESS}`).toHaveLength(0)

    // Back up, the remote signer's hole is filled too.
    proxy!.setMode('ok')
    await waitFor('the remote signer\'s filler mined', async () => (await count(REMOTE_ADDRESS)) === 2, 30_000)
  }, 90_000)
})
