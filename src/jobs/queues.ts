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
  return new PgBoss({
    connectionString: databaseUrl,
    schema: 'pgboss',
    max: 4,
    application_name: 'tx-broadcaster-jobs',
    // Final transactions are pruned by our own retention; pg-boss keeps job history short.
    archiveCompletedAfterSeconds: 3600,
    deleteAfterDays: 2,
  })
}

export async function createQueues(boss: PgBoss): Promise<void> {
  // "short": at most one *queued* job per signer key, so a burst of accepts enqueues one
  // job, not thousands (the job takes every queued row). Not "stately": a job left
  // active by a SIGKILLed instance would block the signer until it expired. Two
  // active drains of one signer are safe: the signer's row lock serializes them.
  await boss.createQueue(QUEUE.sign, {
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
