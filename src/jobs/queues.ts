import PgBoss from 'pg-boss'
import type { TxSql } from '../db/connect.ts'

/** pg-boss queue names. Jobs carry ids only; Postgres rows hold the truth. */
export const QUEUE = {
  /** One job per (chain, signer): drains that signer's QUEUED rows in batches. */
  sign: 'sign-signer',
} as const

export type SignJob = { chainId: number; signer: string }

export function signJobKey(j: SignJob): string {
  return `${j.chainId}:${j.signer}`
}

export function createBoss(databaseUrl: string): PgBoss {
  // No JIT on the job queue's connections either (db/connect.ts says why). pg's own option, not in pg-boss's
  // types: pg-boss hands its config to pg.Pool as it is.
  const pgOptions = { options: '-c jit=off' }
  return new PgBoss({
    ...pgOptions,
    connectionString: databaseUrl,
    schema: 'pgboss',
    max: 4,
    application_name: 'tx-broadcaster-jobs',
    // Final transactions are pruned by our own retention; pg-boss keeps job history short.
    archiveCompletedAfterSeconds: 3600,
    deleteAfterDays: 2,
  })
}

/** Tries of createQueue that Postgres ends as a deadlock (see createQueue). */
const CREATE_QUEUE_TRIES = 5

/**
 * pg-boss's createQueue, tried again when Postgres ends it as a deadlock (40P01). pg-boss 10 creates a queue
 * outside its advisory lock: an INSERT into pgboss.queue, then a foreign key that locks the whole table. Two
 * instances starting together (the migration lock lines them up to arrive at once), or adding the same new
 * webhook, each waited for the other: Postgres killed one, and that instance failed to start and exited 1.
 */
export async function createQueue(boss: PgBoss, name: string, options: PgBoss.Queue): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await boss.createQueue(name, options)
      return
    } catch (err) {
      if ((err as { code?: string }).code !== '40P01' || attempt >= CREATE_QUEUE_TRIES) throw err
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt + Math.random() * 100))
    }
  }
}

export async function createQueues(boss: PgBoss): Promise<void> {
  // "short": at most one *queued* job per signer key, so a burst of accepts enqueues one
  // job, not thousands (the job takes every queued row). Not "stately": a job left
  // active by a SIGKILLed instance would block the signer until it expired. Two
  // active drains of one signer are safe: the signer's row lock serializes them.
  await createQueue(boss, QUEUE.sign, {
    name: QUEUE.sign,
    policy: 'short',
    retryLimit: 10,
    retryDelay: 1,
    // Past these retries the recovery sweep re-drives the signer; no request is lost with the job.
    retryBackoff: true,
    expireInSeconds: 120,
  })
}

/** pg-boss's Db adapter over a postgres.js transaction: the job commits or rolls back with the rows. */
export function bossDb(tx: TxSql): PgBoss.Db {
  return {
    executeSql: async (text, values) => {
      // pg-boss passes what node-postgres accepts: undefined for "not set". Objects (job data) stay objects:
      // postgres.js encodes them for the jsonb parameter itself, and a pre-encoded string would be stored as a JSON string.
      const params = values.map((v) => (v === undefined ? null : v))
      const rows = await tx.unsafe(text, params as never[])
      return { rows: rows as unknown as unknown[] }
    },
  }
}
