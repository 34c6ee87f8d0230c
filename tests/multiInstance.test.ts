import postgres from 'postgres'
import { createPublicClient, http, type Hex, type PublicClient } from 'viem'
import { afterAll, describe, expect, it } from 'vitest'
import { startAnvil, type Anvil } from '../src/dev/startAnvil.ts'
import { transactionsFrom } from './helpers/chainControl.ts'
import { createTestDatabase } from './helpers/database.ts'
import { startServiceProcess, writeConfigFile, type ServiceProcess } from './helpers/serviceProcess.ts'
import { ADMIN_KEY, RECIPIENT, SIGNER } from './helpers/testService.ts'

const REQUESTS = 150
/** src/watch/watchChain.ts: the advisory lock (namespace, chain id) that makes one watcher per chain the leader. */
const WATCH_LOCK_NAMESPACE = 73_022

describe('three instances on one Postgres and one chain', () => {
  let anvil: Anvil
  let db: { url: string; drop: () => Promise<void> }
  const instances: ServiceProcess[] = []
  afterAll(async () => {
    await Promise.all(instances.map((i) => i.kill9()))
    await anvil?.stop()
    await db?.drop()
  })

  it('all confirm once, nonces unique, one watcher leader at a time, and a new one when the leader is killed', async () => {
    anvil = await startAnvil({ blockTimeSec: 0.5 })
    db = await createTestDatabase()
    const chain = createPublicClient({ transport: http(anvil.url) }) as PublicClient
    const configPath = writeConfigFile({
      chains: [{ chainId: 31337, name: 'anvil', providers: [{ name: 'anvil', url: anvil.url }], confirmations: 2, blockTimeMs: 500 }],
      signers: [{ name: 'anvil-0', chainIds: [31337], privateKey: SIGNER.privateKey }],
      apiKeys: [{ name: 'multi', role: 'admin', key: ADMIN_KEY }],
    })
    // Started one after another, so the first to migrate does not race the others' start-up checks.
    for (let i = 0; i < 3; i++) instances.push(await startServiceProcess({ configPath, databaseUrl: db.url }))
    const sql = postgres(db.url, { max: 2 })
    try {
      const leaders = async () =>
        sql<{ application_name: string }[]>`
          SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.classid = ${WATCH_LOCK_NAMESPACE} AND l.objid = 31337 AND l.granted
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`
      const leaderCounts: number[] = []
      let sampling = true
      const sampler = (async () => {
        while (sampling) {
          leaderCounts.push((await leaders()).length)
          await new Promise((r) => setTimeout(r, 100))
        }
      })()

      /** A client that uses any live instance, moving on (same idempotency key) when one is gone. */
      async function send(i: number): Promise<void> {
        for (let attempt = 0; attempt < 50; attempt++) {
          const target = instances[(i + attempt) % instances.length]!
          if (!target.alive()) continue
          try {
            const res = await fetch(`${target.url}/broadcast_transaction`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
              body: JSON.stringify({ to: RECIPIENT, data: dataOf(i), gasLimit: '30000', idempotencyKey: `multi-${i}` }),
              signal: AbortSignal.timeout(5_000),
            })
            if (res.status === 200) return void (await res.text())
          } catch {
            // that instance just died: try another
          }
          await new Promise((r) => setTimeout(r, 100))
        }
        throw new Error(`request ${i} was never accepted`)
      }

      for (let i = 0; i < REQUESTS / 2; i++) await send(i)
      // Kill the watcher's leader mid-run.
      const [leader] = await leaders()
      expect(leader).toBeDefined()
      // The service names its connections tx-broadcaster:<pid>.
      const leaderPid = Number(leader!.application_name.split(':')[1])
      const victim = instances.find((p) => p.alive() && p.pid === leaderPid)
      expect(victim, `leader pid ${leaderPid}`).toBeDefined()
      await victim!.kill9()
      for (let i = REQUESTS / 2; i < REQUESTS; i++) await send(i)

      const deadline = Date.now() + 90_000
      let left = Infinity
      while (Date.now() < deadline) {
        left = (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM transactions WHERE status <> 'CONFIRMED'`)[0]!.n
        if (left === 0) break
        await new Promise((r) => setTimeout(r, 500))
      }
      sampling = false
      await sampler
      expect(left).toBe(0)
      expect((await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM transactions`)[0]!.n).toBe(REQUESTS)
      // Never two leaders; a new one took over from the killed one.
      expect(Math.max(...leaderCounts)).toBe(1)
      const [newLeader] = await leaders()
      expect(newLeader).toBeDefined()
      expect(Number(newLeader!.application_name.split(':')[1])).not.toBe(leaderPid)
    } finally {
      await sql.end()
    }

    const nonces: number[] = []
    const seen = new Map<string, number>()
    for (const tx of await transactionsFrom(chain, SIGNER.address)) {
      nonces.push(tx.nonce)
      seen.set(tx.input, (seen.get(tx.input) ?? 0) + 1)
    }
    nonces.sort((a, b) => a - b)
    expect(nonces).toEqual(nonces.map((_, i) => i))
    for (let i = 0; i < REQUESTS; i++) expect(seen.get(dataOf(i)), `request ${i}`).toBe(1)
  }, 240_000)
})

/** Each request's calldata is unique, so the chain shows whether it executed once. */
function dataOf(i: number): Hex {
  return `0x${(0xab000000 + i).toString(16)}` as Hex
}
