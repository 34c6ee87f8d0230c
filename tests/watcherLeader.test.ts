/**
 * One watcher per chain across instances (an advisory lock on a connection of its own). Found by a race audit:
 * when only that connection died (an idle timeout, a pooler, a firewall, a DBA's pg_terminate_backend), every
 * tick of the old leader still succeeded on the pool, so it never noticed: another instance took the lock and
 * both watched, for good (twice the receipt reads, two writers of the cursor).
 */
import postgres from 'postgres'
import { afterAll, describe, expect, it } from 'vitest'
import { startAnvil, type Anvil } from '../src/dev/startAnvil.ts'
import { startService, type RunningService } from '../src/service.ts'
import { WATCH_LOCK_NAMESPACE } from '../src/watch/watchChain.ts'
import { anvilRpc } from './helpers/chainControl.ts'
import { createTestDatabase } from './helpers/database.ts'
import { startFaultProxy, type FaultProxy } from './helpers/faultProxy.ts'
import { capturedLogger, testConfig, waitFor } from './helpers/testService.ts'

describe('the watcher lock', () => {
  const stops: Array<() => Promise<unknown>> = []
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
  })

  it('a leader whose lock connection is dropped notices, and stops watching; the other instance leads alone; leading again, it resumes from the stored cursor', async () => {
    const anvil: Anvil = await startAnvil({ blockTimeSec: 0.5 })
    stops.push(() => anvil.stop())
    const db = await createTestDatabase()
    stops.push(() => db.drop())
    // Each instance reaches the chain through its own proxy, which counts its calls.
    const proxies: FaultProxy[] = [await startFaultProxy(anvil.url), await startFaultProxy(anvil.url)]
    for (const p of proxies) stops.push(() => p.stop())
    const logs = [capturedLogger('info'), capturedLogger('info')]
    const services: RunningService[] = []
    for (const i of [0, 1]) {
      services.push(await startService({ config: testConfig(proxies[i]!.url), databaseUrl: db.url, port: 0, host: '127.0.0.1', log: logs[i]!.log }))
      stops.push(() => services[i]!.stop())
      if (i === 0) await waitFor('the first instance leads', async () => logs[0]!.lines.some((l) => l.includes('watching chain (leader)')))
    }
    const sql = postgres(db.url, { max: 1, onnotice: () => {} })
    stops.push(() => sql.end())
    const holders = () => sql<{ pid: number }[]>`
      SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = ${WATCH_LOCK_NAMESPACE} AND granted
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`
    // What an operator's alert reads: summed over the instances, one watcher for the chain.
    const leaderGauge = async (i: number) => {
      const text = await (await fetch(`${services[i]!.url}/metrics`)).text()
      return Number(/^txb_watcher_leader\{chain_id="31337"\} (\d+)$/m.exec(text)?.[1] ?? NaN)
    }
    expect([await leaderGauge(0), await leaderGauge(1)]).toEqual([1, 0])
    const [lock] = await holders()
    await sql`SELECT pg_terminate_backend(${lock!.pid})`
    await waitFor('the second instance leads', async () => logs[1]!.lines.some((l) => l.includes('watching chain (leader)')), 20_000)
    await waitFor('the old leader stepped down', async () => logs[0]!.lines.some((l) => l.includes('lost the watcher lock')), 20_000)
    // Now only the new leader polls the head at a leader's pace (a follower tries for the lock every 5 s).
    const blockNumberCalls = async (p: FaultProxy) => {
      p.resetStats()
      await new Promise((r) => setTimeout(r, 3_000))
      return p.stats.calls.eth_blockNumber ?? 0
    }
    const [old, current] = await Promise.all(proxies.map(blockNumberCalls))
    expect(current).toBeGreaterThan(15)
    expect(old).toBeLessThan(10)
    expect(await holders()).toHaveLength(1)
    expect([await leaderGauge(0), await leaderGauge(1)]).toEqual([0, 1])

    // The old leader leads again once the new one stops. It resumes from the stored cursor: before, it went on from
    // the one it held when it lost the lock, and saved that one, 200 blocks a tick, over the newer stored one.
    const storedCursor = async () => Number((await sql<{ n: number }[]>`SELECT block_number AS n FROM chain_cursors`)[0]?.n ?? -1)
    const rpc = (method: string, params: unknown[]) => anvilRpc(anvil.url, method, params)
    await rpc('anvil_mine', ['0x258'])
    const head = Number(await rpc('eth_blockNumber', []))
    await waitFor('the new leader has scanned the 600 new blocks', async () => (await storedCursor()) >= head - 2, 30_000)
    const reached = await storedCursor()
    await services[1]!.stop()
    const leads = () => logs[0]!.lines.filter((l) => l.includes('watching chain (leader)')).length
    await waitFor('the old leader leads again', async () => leads() === 2, 20_000)
    const seen: number[] = []
    for (let i = 0; i < 20; i++) {
      seen.push(await storedCursor())
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(reached)
  }, 90_000)
})
