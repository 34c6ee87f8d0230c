/**
 * An operator restores the database from a backup (pg_dump / pg_restore) after the service went on working: what
 * it signed after the backup is mined, but the restored database does not know it. Found by a review of the
 * database's lifecycle: a request QUEUED in the backup was signed again at the next nonce and paid twice, and a
 * PENDING one whose fee raise came after the backup was queued again and ran twice too.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startService, type RunningService } from '../src/service.ts'
import { createLogger } from '../src/common/logger.ts'
import { ANVIL_DEV_ACCOUNTS } from '../src/dev/startAnvil.ts'
import { chainControl, transactionsFrom } from './helpers/chainControl.ts'
import { createTestDatabase } from './helpers/database.ts'
import { ADMIN_KEY, SIGNER, startTestEnv, testConfig, waitFor, type TestEnv } from './helpers/testService.ts'

describe('a database restored from a backup', () => {
  let env: TestEnv
  const dir = mkdtempSync(join(tmpdir(), 'txb-restore-'))
  const stops: Array<() => Promise<unknown>> = []
  beforeAll(async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.5 } })
  })
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    await env?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  const backup = (url: string, name: string) => {
    const file = join(dir, name)
    execFileSync('pg_dump', ['-Fc', '-f', file, url])
    return file
  }
  /**
   * Restores the dump into a new database and starts the service on it, as an operator would; `restored` sees the
   * database before the service does.
   */
  const restoreAndStart = async (file: string, restored: (sql: postgres.Sql) => Promise<void>): Promise<{ sql: postgres.Sql; service: RunningService }> => {
    const db = await createTestDatabase()
    stops.push(() => db.drop())
    execFileSync('pg_restore', ['--no-owner', '-d', db.url, file])
    const sql = postgres(db.url, { max: 1, onnotice: () => {} })
    stops.push(() => sql.end())
    await restored(sql)
    const service = await startService({ config: testConfig(env.anvil.url), databaseUrl: db.url, port: 0, host: '127.0.0.1', log: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false }) })
    stops.push(() => service.stop())
    return { sql, service }
  }
  const statusOf = async (sql: postgres.Sql, id: string) =>
    (await sql<{ status: string; nonce: string | null; mined_hash: string | null }[]>`SELECT status, nonce, mined_hash FROM transactions WHERE id = ${id}`)[0]!

  it('a request QUEUED in the backup, signed and mined after it, is found on chain and confirmed once: not signed again', async () => {
    const recipient = privateKeyToAccount(generatePrivateKey()).address
    const control = chainControl(env)
    const funds = await env.chain.getBalance({ address: SIGNER.address })
    // The signer cannot pay: the request waits QUEUED while the backup is taken.
    await control.setBalance(SIGNER.address, 0n)
    const res = await env.post('/broadcast_transaction', { to: recipient, value: '1000', from: SIGNER.address })
    expect(res.status).toBe(200)
    const id = res.json.transactionId as string
    const live = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    stops.push(() => live.end())
    await waitFor('set aside', async () => (await live`SELECT error_code FROM transactions WHERE id = ${id}`)[0]?.error_code === 'INSUFFICIENT_FUNDS')
    const file = backup(env.databaseUrl, 'queued.dump')
    // After the backup the signer is funded; the request is signed, mined and confirmed. Then the database is lost.
    await control.setBalance(SIGNER.address, funds)
    await waitFor('confirmed', async () => (await statusOf(live, id)).status === 'CONFIRMED', 30_000)
    const first = await statusOf(live, id)
    await env.service.stop()

    const { sql } = await restoreAndStart(file, async (restored) => expect((await statusOf(restored, id)).status).toBe('QUEUED'))
    await waitFor('confirmed in the restored database', async () => (await statusOf(sql, id)).status === 'CONFIRMED', 30_000)
    expect(await statusOf(sql, id)).toEqual(first)
    // Paid once: one transfer on chain, 1000 wei at the recipient, several blocks later.
    await control.mine(3)
    await new Promise((r) => setTimeout(r, 3_000))
    expect(await env.chain.getBalance({ address: recipient })).toBe(1000n)
    expect((await transactionsFrom(env.chain, SIGNER.address)).filter((t) => t.to?.toLowerCase() === recipient.toLowerCase())).toHaveLength(1)
    const events = await sql<{ detail: { reason?: string; hash?: string } }[]>`SELECT detail FROM transaction_events WHERE transaction_id = ${id} AND to_status = 'PENDING'`
    expect(events.map((e) => e.detail)).toEqual([expect.objectContaining({ reason: 'found_on_chain', hash: first.mined_hash })])
  }, 120_000)

  it('a request PENDING in the backup whose fee raise came after it, and was mined: taken as its attempt, not queued again to run twice', async () => {
    const recipient = privateKeyToAccount(generatePrivateKey()).address
    const control = chainControl(env)
    const db = await createTestDatabase()
    stops.push(() => db.drop())
    const live = await startService({ config: testConfig(env.anvil.url), databaseUrl: db.url, port: 0, host: '127.0.0.1', log: createLogger({ level: 'silent', pretty: false }) })
    stops.push(() => live.stop())
    const sql = postgres(db.url, { max: 1, onnotice: () => {} })
    stops.push(() => sql.end())
    // Blocks stop: the first attempt waits in the pool.
    await control.rpc('evm_setIntervalMining', [0])
    const res = await fetch(`${live.url}/broadcast_transaction`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
      body: JSON.stringify({ to: recipient, value: '2000', data: '0x1234' }),
    })
    const id = ((await res.json()) as { transactionId: string }).transactionId
    const [first] = await waitFor('signed and sent', async () => {
      const rows = await sql<{ hash: Hex; nonce: number; gas_limit: string; max_fee_per_gas: string; max_priority_fee_per_gas: string }[]>`
        SELECT hash, nonce, gas_limit, max_fee_per_gas, max_priority_fee_per_gas FROM attempts WHERE transaction_id = ${id} AND sent_at IS NOT NULL`
      return rows.length > 0 && rows
    })
    const file = backup(db.url, 'pending.dump')
    // After the backup its fees were raised and the raise was mined; then the database is lost.
    await live.stop()
    await control.drop(first!.hash)
    const raise = await privateKeyToAccount(SIGNER.privateKey).signTransaction({
      chainId: 31337,
      type: 'eip1559',
      nonce: Number(first!.nonce),
      to: recipient,
      value: 2000n,
      data: '0x1234',
      gas: BigInt(first!.gas_limit),
      maxFeePerGas: BigInt(first!.max_fee_per_gas) * 2n,
      maxPriorityFeePerGas: BigInt(first!.max_priority_fee_per_gas) * 2n,
    })
    const raiseHash = (await control.rpc('eth_sendRawTransaction', [raise])) as Hex
    await control.rpc('evm_setIntervalMining', [1])
    await waitFor('the raise mined', async () => (await env.chain.getTransactionReceipt({ hash: raiseHash }).catch(() => null)) !== null)

    const restored = await restoreAndStart(file, async (sql) => expect((await statusOf(sql, id)).status).toBe('PENDING'))
    await waitFor('confirmed in the restored database', async () => (await statusOf(restored.sql, id)).status === 'CONFIRMED', 30_000)
    expect(await statusOf(restored.sql, id)).toMatchObject({ status: 'CONFIRMED', nonce: first!.nonce, mined_hash: raiseHash })
    // Ran once: nothing more from the signer to the recipient, several reconcile passes later.
    await new Promise((r) => setTimeout(r, 6_000))
    expect(await env.chain.getBalance({ address: recipient })).toBe(2000n)
    expect((await transactionsFrom(env.chain, SIGNER.address)).filter((t) => t.to?.toLowerCase() === recipient.toLowerCase())).toHaveLength(1)
    expect((await statusOf(restored.sql, id)).status).toBe('CONFIRMED')
  }, 120_000)
})

describe('a database restored from a backup, with two signers', () => {
  const S1 = ANVIL_DEV_ACCOUNTS[0]!
  const S2 = ANVIL_DEV_ACCOUNTS[1]!
  const twoSigners = (c: Record<string, any>) => {
    c.signers = [
      { name: 's1', chainIds: [31337], privateKey: S1.privateKey },
      { name: 's2', chainIds: [31337], privateKey: S2.privateKey },
    ]
  }
  let env: TestEnv
  const dir = mkdtempSync(join(tmpdir(), 'txb-restore-'))
  const stops: Array<() => Promise<unknown>> = []
  beforeAll(async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.5 }, config: twoSigners })
  })
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    await env?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('a request that named no signer, moved to another signer after the backup and mined there, is found on that signer: not signed again, even where it waited and can pay now', async () => {
    const control = chainControl(env)
    const live = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    stops.push(() => live.end())
    // Both signers have signed before (each has its nonce record in the backup).
    const warm = privateKeyToAccount(generatePrivateKey()).address
    for (const s of [S1, S2]) {
      const r = await env.post('/broadcast_transaction', { to: warm, value: '1', from: s.address })
      await waitFor('warm-up confirmed', async () => (await live`SELECT status FROM transactions WHERE id = ${r.json.transactionId}`)[0]?.status === 'CONFIRMED', 30_000)
    }
    // Neither can pay: the request waits on the one it was given when the backup is taken.
    const funds = await env.chain.getBalance({ address: S1.address })
    await control.setBalance(S1.address, 0n)
    await control.setBalance(S2.address, 0n)
    const recipient = privateKeyToAccount(generatePrivateKey()).address
    const id = (await env.post('/broadcast_transaction', { to: recipient, value: '1000' })).json.transactionId as string
    await waitFor('set aside', async () => (await live`SELECT error_code FROM transactions WHERE id = ${id}`)[0]?.error_code === 'INSUFFICIENT_FUNDS')
    const waitingOn = (await live<{ signer: string }[]>`SELECT signer FROM transactions WHERE id = ${id}`)[0]!.signer
    const other = waitingOn.toLowerCase() === S1.address.toLowerCase() ? S2 : S1
    const file = join(dir, 'moved.dump')
    execFileSync('pg_dump', ['-Fc', '-f', file, env.databaseUrl])
    // After the backup the other signer is funded: the request moves to it and is mined there.
    await control.setBalance(other.address, funds)
    await waitFor('confirmed', async () => (await live`SELECT status FROM transactions WHERE id = ${id}`)[0]?.status === 'CONFIRMED', 30_000)
    const [first] = await live<{ signer: string; mined_hash: string }[]>`SELECT signer, mined_hash FROM transactions WHERE id = ${id}`
    expect(first!.signer).toBe(other.address)
    await env.service.stop()
    // The signer it waited on can pay now: restored, the request is signed there at once, unless the service first
    // looked at what every signer of the chain mined past its record (the other signer has nothing of its own
    // waiting, so its own checks came after).
    await control.setBalance(waitingOn, funds)

    const db = await createTestDatabase()
    stops.push(() => db.drop())
    execFileSync('pg_restore', ['--no-owner', '-d', db.url, file])
    // As if the backup had been taken the moment it was accepted, before the sign stage set it aside: it is signed
    // at the first batch (set aside, it waited a few seconds, and the other signer's reconciler found it first).
    const setup = postgres(db.url, { max: 1, onnotice: () => {} })
    await setup`UPDATE transactions SET error_code = NULL, error_message = NULL, waiting_since = NULL WHERE id = ${id}`
    await setup.end()
    const service = await startService({ config: testConfig(env.anvil.url, twoSigners), databaseUrl: db.url, port: 0, host: '127.0.0.1', log: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false }) })
    stops.push(() => service.stop())
    const sql = postgres(db.url, { max: 1, onnotice: () => {} })
    stops.push(() => sql.end())
    await waitFor('confirmed in the restored database', async () => (await sql`SELECT status FROM transactions WHERE id = ${id}`)[0]?.status === 'CONFIRMED', 30_000)
    // Before: moved again and signed at the next nonce, 2000 wei paid.
    expect((await sql`SELECT signer, mined_hash FROM transactions WHERE id = ${id}`)[0]).toEqual(first)
    await new Promise((r) => setTimeout(r, 4_000))
    expect(await env.chain.getBalance({ address: recipient })).toBe(1000n)
  }, 120_000)
})

