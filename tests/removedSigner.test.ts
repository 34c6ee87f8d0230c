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

  it('its PENDING transaction a node dropped is sent again as it is, and confirms; one whose nonce was used elsewhere is queued again and runs once, by the signer configured now', async () => {
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
    // The second: its bytes answered "nonce too low" (the key took that nonce elsewhere). Before, it stayed PENDING for
    // good: nothing reconciled a signer no longer configured. Now it is queued again and, as it named no signer, moves
    // to the one configured now once its old one has been idle a while (2 minutes: the test says it was 3 ago).
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      const answers = async () => (await sql<{ providers: { outcome: string }[] }[]>`SELECT providers FROM attempts WHERE transaction_id = ${other} ORDER BY id LIMIT 1`)[0]!.providers
      await waitFor('a nonce_too_low answer', async () => (await answers()).at(-1)?.outcome === 'nonce_too_low', 15_000)
      await sql`UPDATE signer_nonces SET updated_at = now() - interval '3 minutes' WHERE signer = ${SIGNER.address}`
      const moved = await waitFor('signed again by the signer configured now', async () => {
        const [row] = await sql<{ status: string; execution: number; signer: string }[]>`SELECT status, execution, signer FROM transactions WHERE id = ${other}`
        return row!.status === 'PENDING' && row!.execution > 1 && row
      }, 40_000)
      expect(moved).toEqual({ status: 'PENDING', execution: 2, signer: ANVIL_DEV_ACCOUNTS[2].address })
      const events = await sql<{ from_status: string; to_status: string; detail: any }[]>`SELECT from_status, to_status, detail FROM transaction_events WHERE transaction_id = ${other} ORDER BY id`
      expect(events.map((e) => `${e.from_status}>${e.to_status}:${e.detail?.action ?? e.detail?.reason ?? ''}`)).toEqual([
        'null>QUEUED:',
        'QUEUED>PENDING:',
        'PENDING>QUEUED:nonce_used_elsewhere',
        'QUEUED>QUEUED:signer_changed',
        'QUEUED>PENDING:',
      ])
      await anvil.mine()
      const [settled] = await waitFor('the second CONFIRMED', async () => {
        const rows = await sql<{ status: string; mined_hash: string }[]>`SELECT status, mined_hash FROM transactions WHERE id = ${other}`
        return rows[0]!.status === 'CONFIRMED' && rows
      }, 20_000)
      // On chain once, from the signer configured now: the key's own transaction took its first nonce.
      const mined = await env.chain.getTransaction({ hash: settled!.mined_hash as `0x${string}` })
      expect([mined.from.toLowerCase(), mined.to?.toLowerCase(), mined.value]).toEqual([ANVIL_DEV_ACCOUNTS[2].address.toLowerCase(), RECIPIENT.toLowerCase(), 4712n])
    } finally {
      await sql.end()
    }
  })
})
