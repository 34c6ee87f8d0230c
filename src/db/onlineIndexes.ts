import type { Logger } from '../common/logger.ts'
import { openPostgres } from './socketUrl.ts'

/**
 * Indexes built with CREATE INDEX CONCURRENTLY after start-up rather than by a migration: the migrations run in
 * one transaction, where a plain CREATE INDEX on a big table (hundreds of millions of rows after 30 days at
 * 100/s) held up every write to it for the whole build. Each is declared in schema.ts too, and its migration is
 * empty. The queries they serve work without them, only slower, until they are built.
 */
export const ONLINE_INDEXES = [
  {
    name: 'transactions_failed_recent_idx',
    create: `CREATE INDEX CONCURRENTLY IF NOT EXISTS "transactions_failed_recent_idx" ON "transactions" USING btree ("chain_id","signer","final_at") WHERE "transactions"."status" = 'FAILED'`,
  },
] as const

/** One instance builds at a time (a build interrupted by another's check would be dropped under it). */
const BUILD_LOCK_ID = 7_302_214_002

/**
 * Builds the missing ONLINE_INDEXES, and builds again one a failed or interrupted build left invalid. Another
 * instance building them already: nothing to do here. Returns the names built.
 */
export async function buildOnlineIndexes(databaseUrl: string, log: Logger, signal?: AbortSignal): Promise<string[]> {
  // No array types fetched on connect: a stop while it connects destroyed that internal query, whose rejection
  // nobody awaited (an unhandled rejection, one stop in ten at once after start). It reads no arrays.
  const sql = openPostgres(databaseUrl, { max: 1, onnotice: () => {}, fetch_types: false })
  const stop = () => void sql.end({ timeout: 0 })
  signal?.addEventListener('abort', stop, { once: true })
  const built: string[] = []
  try {
    const [lock] = await sql<{ ok: boolean }[]>`SELECT pg_try_advisory_lock(${BUILD_LOCK_ID}) AS ok`
    if (!lock?.ok) return built
    for (const index of ONLINE_INDEXES) {
      if (signal?.aborted) break
      const [state] = await sql<{ valid: boolean }[]>`SELECT i.indisvalid AS valid FROM pg_index i WHERE i.indexrelid = to_regclass(${index.name})`
      if (state?.valid) continue
      if (state) await sql.unsafe(`DROP INDEX CONCURRENTLY IF EXISTS "${index.name}"`)
      const t0 = Date.now()
      log.info({ index: index.name }, 'building an index without holding up writes (CREATE INDEX CONCURRENTLY)')
      await sql.unsafe(index.create)
      log.info({ index: index.name, ms: Date.now() - t0 }, 'index built')
      built.push(index.name)
    }
    await sql`SELECT pg_advisory_unlock(${BUILD_LOCK_ID})`
    return built
  } finally {
    signal?.removeEventListener('abort', stop)
    await sql.end({ timeout: 5 })
  }
}
