import postgres from 'postgres'
import { createPublicClient, http, type Hex, type PublicClient } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../src/dev/freePort.ts'
import { startAnvil, type Anvil } from '../src/dev/startAnvil.ts'
import { transactionsFrom } from './helpers/chainControl.ts'
import { createTestDatabase } from './helpers/database.ts'
import { startServiceProcess, writeConfigFile, type ServiceProcess } from './helpers/serviceProcess.ts'
import { ADMIN_KEY, RECIPIENT, SIGNER } from './helpers/testService.ts'

const REQUESTS = Number(process.env.CRASH_TEST_REQUESTS ?? 1000)
const KILLS = 5

/**
 * "Accepted means done, exactly once, no gaps", under SIGKILL: the service runs as
 * its own process and is killed at random moments during a burst, then restarted.
 * Clients retry with their idempotency key, as a real client would.
 */
describe('crash safety', () => {
  let anvil: Anvil
  let db: { url: string; drop: () => Promise<void> }
  let chain: PublicClient
  let port: number
  let configPath: string

  let current: ServiceProcess | null = null
  async function start(): Promise<void> {
    current = await startServiceProcess({ configPath, databaseUrl: db.url, port, env: { TEST_SIGNER_KEY: SIGNER.privateKey } })
  }
  async function kill9(): Promise<void> {
    await current?.kill9()
    current = null
  }

  beforeAll(async () => {
    anvil = await startAnvil({ blockTimeSec: 0.5 })
    db = await createTestDatabase()
    chain = createPublicClient({ transport: http(anvil.url) }) as PublicClient
    port = await freePort()
    configPath = writeConfigFile({
        chains: [{ chainId: 31337, name: 'anvil', providers: [{ name: 'anvil', url: anvil.url }], confirmations: 1, blockTimeMs: 500, fees: { bumpAfterMs: 3000 } }],
        signers: [{ name: 'anvil-0', chainIds: [31337], privateKey: '${TEST_SIGNER_KEY}' }],
        apiKeys: [{ name: 'crash-test', role: 'admin', key: ADMIN_KEY }],
    })
  })

  afterAll(async () => {
    await kill9()
    await anvil?.stop()
    await db?.drop()
  })

  it(`${REQUESTS} requests, ${KILLS} SIGKILLs: every accepted one confirms, each calldata once on chain, no nonce gaps`, async () => {
    await start()
    const accepted = new Map<number, string>()
    const dataOf = (i: number) => `0x${(0xc0de0000 + i).toString(16).padStart(8, '0')}` as Hex

    /** A client that retries with its idempotency key until it gets an answer (bounded). */
    async function send(i: number): Promise<void> {
      for (let attempt = 0; attempt < 200; attempt++) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/broadcast_transaction`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
            body: JSON.stringify({ to: RECIPIENT, data: dataOf(i), gasLimit: '30000', idempotencyKey: `crash-${i}` }),
            signal: AbortSignal.timeout(5_000),
          })
          if (res.status === 200) {
            accepted.set(i, ((await res.json()) as { transactionId: string }).transactionId)
            return
          }
          await res.text()
        } catch {
          // killed mid-request or not up yet: try again
        }
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200))
      }
    }

    // The burst: 20 clients in parallel, while a killer strikes at random moments.
    let next = 0
    const clients = Array.from({ length: 20 }, async () => {
      while (next < REQUESTS) await send(next++)
    })
    let kills = 0
    const killer = (async () => {
      while (kills < KILLS) {
        await new Promise((r) => setTimeout(r, 700 + Math.random() * 1500))
        await kill9()
        kills++
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 500))
        await start()
      }
    })()
    await Promise.all([...clients, killer])
    expect(kills).toBe(KILLS)
    expect(accepted.size).toBe(REQUESTS)

    // After the last restart, everything accepted reaches CONFIRMED.
    const sql = postgres(db.url, { max: 1 })
    try {
      const deadline = Date.now() + 120_000
      let left = Infinity
      while (Date.now() < deadline) {
        const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM transactions WHERE kind = 'REQUEST' AND status <> 'CONFIRMED'`
        left = row!.n
        if (left === 0) break
        await new Promise((r) => setTimeout(r, 500))
      }
      if (left !== 0) {
        const byStatus = await sql`SELECT status, error_code, count(*)::int AS n, min(nonce) AS min_nonce, max(nonce) AS max_nonce FROM transactions GROUP BY 1, 2`
        const nonceState = await sql`SELECT * FROM signer_nonces`
        const chainNonce = await chain.getTransactionCount({ address: SIGNER.address })
        console.log('STUCK', JSON.stringify({ byStatus, nonceState, chainNonce }), current?.output().slice(-3000))
      }
      expect(left).toBe(0)
      const [total] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM transactions WHERE kind = 'REQUEST'`
      expect(total!.n).toBe(REQUESTS)
    } finally {
      await sql.end()
    }

    // The chain: every nonce from 0 used once, each request's calldata exactly once.
    const seen = new Map<string, number>()
    const nonces: number[] = []
    for (const tx of await transactionsFrom(chain, SIGNER.address)) {
      nonces.push(tx.nonce)
      if (tx.input !== '0x') seen.set(tx.input, (seen.get(tx.input) ?? 0) + 1)
    }
    nonces.sort((a, b) => a - b)
    expect(nonces).toEqual(nonces.map((_, i) => i))
    expect(await chain.getTransactionCount({ address: SIGNER.address })).toBe(nonces.length)
    for (let i = 0; i < REQUESTS; i++) expect(seen.get(dataOf(i)), `request ${i}`).toBe(1)
    expect([...seen.keys()].length).toBe(REQUESTS)
  }, 300_000)
})
