import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../common/logger.ts'
import type { Db } from '../db/connect.ts'
import { createMigratedTestDatabase } from '../../tests/helpers/database.ts'
import type { PipelineStatus } from '../pipeline/pipelineProcess.ts'
import { createChainClients } from '../chain/createChainClients.ts'
import { parseConfig } from '../config/loadConfig.ts'
import { createReadiness, PIPELINE_CRASH_LOOP_RESTARTS, PIPELINE_DOWN_NOT_READY_MS } from './readiness.ts'

/** /readyz's pipeline rule, against a real, migrated Postgres (so only the pipeline decides). */
describe('readiness with a separate pipeline process', () => {
  let db: Awaited<ReturnType<typeof createMigratedTestDatabase>>
  let conn: Db
  beforeAll(async () => {
    db = await createMigratedTestDatabase()
    conn = db.conn
  })
  afterAll(async () => {
    await db?.drop()
  })

  const log = createLogger({ level: 'silent', pretty: false })
  const check = async (status: PipelineStatus) => {
    const readiness = createReadiness(conn.sql, [], log, () => status)
    try {
      return await readiness.check()
    } finally {
      readiness.stop()
    }
  }

  it('is ready with the child running, and says which one', async () => {
    const report = await check({ pid: 4242, restarts: 1, recentRestarts: 1, downSince: null })
    expect(report.ready).toBe(true)
    expect(report.checks.pipeline).toEqual({ ok: true, pid: 4242, restarts: 1 })
  })

  it('stays ready through a short restart, and is not once the child stays down', async () => {
    const brief = await check({ pid: null, restarts: 1, recentRestarts: 1, downSince: Date.now() - 2_000 })
    expect(brief.ready).toBe(true)
    expect(brief.checks.pipeline).toMatchObject({ ok: true, error: 'pipeline process down for 2 s' })
    const long = await check({ pid: null, restarts: 1, recentRestarts: 1, downSince: Date.now() - PIPELINE_DOWN_NOT_READY_MS - 1_000 })
    expect(long.ready).toBe(false)
    expect(long.checks.pipeline).toMatchObject({ ok: false, pid: null, error: `pipeline process down for ${PIPELINE_DOWN_NOT_READY_MS / 1000 + 1} s` })
  })

  it('is not ready in a crash loop, even while a child is up', async () => {
    const report = await check({ pid: 4243, restarts: 5, recentRestarts: PIPELINE_CRASH_LOOP_RESTARTS, downSince: null })
    expect(report.ready).toBe(false)
    expect(report.checks.pipeline).toEqual({ ok: false, pid: 4243, restarts: 5, error: `pipeline process restarted ${PIPELINE_CRASH_LOOP_RESTARTS} times in the last 2 minutes` })
  })

  it('has no pipeline check in one process', async () => {
    const readiness = createReadiness(conn.sql, [], log)
    const report = await readiness.check()
    readiness.stop()
    expect(report.ready).toBe(true)
    expect(report.checks.pipeline).toBeUndefined()
  })

  it('a chain whose providers do not answer is reported, and leaves the instance ready (the API still takes its requests)', async () => {
    const config = parseConfig(
      {
        chains: [{ chainId: 5, name: 'gone', providers: [{ name: 'closed', url: 'http://127.0.0.1:1' }], blockTimeMs: 1000, rpc: { timeoutMs: 200 } }],
        signers: [{ name: 'k', chainIds: [5], privateKey: '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80' }],
        apiKeys: [{ name: 'ops', role: 'admin', key: 'ops-key-0123456789abcdef' }],
      },
      {},
    )
    const readiness = createReadiness(conn.sql, [createChainClients(config.chains[0]!)], log)
    try {
      await new Promise((r) => setTimeout(r, 1_500))
      const report = await readiness.check()
      expect(report.checks.chains).toMatchObject([{ chainId: 5, ok: false }])
      expect(report.checks.chains[0]!.error).toMatch(/no answer to eth_blockNumber/)
      expect(report.ready).toBe(true)
    } finally {
      readiness.stop()
    }
  })
})
