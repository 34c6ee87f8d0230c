/**
 * A signer removed from the config (a key rotated out) while its transactions are in flight: nothing here can sign
 * for it, but its transactions' signed bytes need no key.
 */
import postgres from 'postgres'
import { privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../src/common/logger.ts'
import { ANVIL_DEV_ACCOUNTS } from '../src/dev/startAnvil.ts'
import { startService, type RunningService } from '../src/service.ts'
import { chainControl, submit, waitForStatus } from './helpers/chainControl.ts'
import { ADMIN_KEY, RECIPIENT, SIGNER, startTestEnv, testConfig, waitFor, type TestEnv } from './helpers/testService.ts'

describe('a signer removed from the config with transactions in flight', () => {
  let env: TestEnv | undefined
  let service: RunningService | undefined
  afterEach(async () => {
    await service?.stop()
    await env?.stop()
    env = service = undefined
  })

  it('its PENDING transaction a node dropped is sent again as it is, and confirms; one whose nonce was used elsewhere is not sent for ever', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].fees = { bumpAfterMs: 500 }) })
    const anvil = chainControl(env)
    const id = await submit(env, { to: RECIPIENT, value: '4711' })
    const sent = await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    const other = await submit(env, { to: RECIPIENT, value: '4712' })
    const otherSent = await waitForStatus(env, other, (t) => t.attempts[0]?.status === 'SENT')
    // The key is rotated out: a service with another signer takes over. The node drops what it held (a restart), and
    // the key, used elsewhere, takes the second one's nonce.
    await env.service.stop()
    await anvil.dropAll()
    const key = privateKeyToAccount(SIGNER.privateKey)
    const elsewhere = await key.signTransaction({ chainId: 31337, type: 'eip1559', nonce: Number(otherSent.attempts[0].nonce), to: key.address, value: 0n, gas: 21_000n, maxFeePerGas: 50_000_000_000n, maxPriorityFeePerGas: 2_000_000_000n })
    // In the pool before the new service starts (with fees ours cannot replace): else a resend of ours could take
    // that nonce first.
    await env.chain.request({ method: 'eth_sendRawTransaction', params: [elsewhere] })
    service = await startService({
      config: testConfig(env.anvil.url, (c) => {
        c.signers = [{ name: 'anvil-2', chainIds: [31337], privateKey: ANVIL_DEV_ACCOUNTS[2].privateKey }]
        c.chains[0].fees = { bumpAfterMs: 500 }
      }),
      databaseUrl: env.databaseUrl,
      port: 0,
      host: '127.0.0.1',
      log: createLogger({ level: 'silent', pretty: false }),
    })
    // Before: nothing sent it again, and it stayed PENDING for good.
    await waitFor('its bytes back in the node\'s pool', async () => env!.chain.getTransaction({ hash: sent.attempts[0].hash }).then(() => true, () => false), 15_000)
    await anvil.mine()
    const done = await waitFor('CONFIRMED', async () => {
      const res = await fetch(`${service!.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
        body: JSON.stringify({ query: `query($id: ID!) { transaction(id: $id) { status hash } }`, variables: { id } }),
      })
      const t = ((await res.json()) as any).data?.transaction
      return t?.status === 'CONFIRMED' && t
    }, 20_000)
    expect(done.hash).toBe(sent.attempts[0].hash)
    // The second: answered "nonce too low" once, then left alone (the receipt sweep would settle it had it been ours).
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      const answers = async () => (await sql<{ providers: { outcome: string }[] }[]>`SELECT providers FROM attempts WHERE transaction_id = ${other}`)[0]!.providers
      await waitFor('a nonce_too_low answer', async () => (await answers()).at(-1)?.outcome === 'nonce_too_low', 15_000)
      const seen = (await answers()).length
      await new Promise((r) => setTimeout(r, 3_000))
      expect((await answers()).length).toBe(seen)
    } finally {
      await sql.end()
    }
  })
})
