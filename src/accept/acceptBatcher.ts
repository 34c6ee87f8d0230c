import { randomUUID } from 'node:crypto'
import type { ServiceContext } from '../context.ts'
import { ERROR_CODE, InputError } from '../core/errors.ts'
import { pgArray } from '../db/pgArray.ts'
import type { TransactionRow } from '../store/transactionRow.ts'
import type { BroadcastRequest } from './validateBroadcastRequest.ts'

export type AcceptItem = { req: BroadcastRequest; signer: string; apiKeyName: string }
export type AcceptOutcome = { transaction: TransactionRow; created: boolean }

/** Requests committed together at most; also bounded by calldata size so one statement stays small. */
const MAX_BATCH = 500
const MAX_BATCH_DATA_CHARS = 4_000_000
/** Batches in flight at once: enough to keep the pool busy, few enough that waiting requests pile into the next batch. */
const MAX_CONCURRENT_COMMITS = 4
/** Tries of a batch that Postgres aborted to break a deadlock (commitAgainIfDeadlocked). */
const MAX_DEADLOCK_TRIES = 3

type Pending = AcceptItem & { id: string; resolve: (o: AcceptOutcome) => void; reject: (e: unknown) => void }

export type AcceptBatcher = { accept: (item: AcceptItem) => Promise<AcceptOutcome> }

/**
 * Group commit for the request path. Under load, requests that arrive while
 * earlier commits are in flight are written together: one multi-row INSERT of
 * the rows, one of their first events, one COMMIT. Each caller still gets its
 * answer only after its row is committed. At low load a batch is a single
 * request and waits for nothing (setImmediate). The batch is one statement (see commit).
 *
 * No sign job is inserted here (DESIGN.md had one in the same transaction): every
 * batch inserting the same per-signer singleton job made concurrent batches wait
 * on each other's commit. The committed QUEUED row is the durable work item; the
 * sign stage is woken in-process after the commit, and the recovery sweep enqueues
 * a job for any signer with QUEUED rows (at start-up and every few seconds), so a
 * crash right after the commit still loses nothing.
 */
export function createAcceptBatcher(ctx: ServiceContext): AcceptBatcher {
  const queue: Pending[] = []
  let scheduled = false
  let active = 0

  function flush(): void {
    scheduled = false
    while (queue.length > 0 && active < MAX_CONCURRENT_COMMITS) {
      let chars = 0
      let n = 0
      while (n < queue.length && n < MAX_BATCH && (n === 0 || chars + queue[n]!.req.data.length <= MAX_BATCH_DATA_CHARS)) chars += queue[n++]!.req.data.length
      const batch = queue.splice(0, n)
      active++
      commitAgainIfDeadlocked(batch)
        .catch((err) => (batch.length > 1 && refusedRow(err) ? commitOneByOne(batch) : batch.forEach((p) => p.reject(refusal(err)))))
        .finally(() => {
          active--
          if (queue.length) flush()
        })
    }
  }

  /**
   * Two batches holding the same idempotency keys in other orders (two instances, or two commits of one, taking a
   * client's resent requests) each wait for the other's uncommitted row of a key: Postgres aborts one of them
   * (40P01), nothing of it stored. It answered 500 to every request of the batch, from every client in it, and a
   * client without keys took a 500 for "maybe stored". The whole statement is tried again: the other batch has
   * committed or rolled back by then, and a key it stored is read back as any retry's.
   */
  async function commitAgainIfDeadlocked(batch: Pending[]): Promise<void> {
    for (let tries = 1; ; tries++) {
      try {
        return await commit(batch)
      } catch (err) {
        if (tries >= MAX_DEADLOCK_TRIES || !lostToDeadlock(err)) throw err
        ctx.log.warn({ requests: batch.length, tries }, 'a batch of accepted requests deadlocked with another on the same idempotency keys; committing it again')
      }
    }
  }

  /**
   * Postgres refused a row of a batch (validation let through something it cannot store): the batch is one
   * statement, so every request in it failed with that row. Each is committed alone, so only the bad one fails
   * and the others, from other clients, are accepted.
   */
  async function commitOneByOne(batch: Pending[]): Promise<void> {
    ctx.log.warn({ requests: batch.length }, 'a batch of accepted requests was refused by Postgres; committing them one by one')
    await Promise.all(batch.map((p) => commit([p]).catch((err: unknown) => p.reject(refusal(err)))))
  }

  async function commit(committing: Pending[]): Promise<void> {
    let batch = committing
    const { sql } = ctx.db
    // One statement, committed on its own: the rows and their first events (a data-modifying CTE),
    // so a batch costs one round trip instead of BEGIN, two INSERTs and COMMIT.
    const inserted = await sql<TransactionRow[]>`
      WITH ins AS (
        INSERT INTO transactions (id, chain_id, signer, signer_pinned, "to", data, value, gas_limit, api_key_name, idempotency_key, valid_until)
        SELECT * FROM unnest(
          ${pgArray(batch.map((p) => p.id))}::uuid[], ${pgArray(batch.map((p) => p.req.chainId))}::int[],
          ${pgArray(batch.map((p) => p.signer))}::text[], ${pgArray(batch.map((p) => p.req.from !== null))}::boolean[],
          ${pgArray(batch.map((p) => p.req.to))}::text[],
          ${pgArray(batch.map((p) => p.req.data))}::text[], ${pgArray(batch.map((p) => p.req.value.toString()))}::numeric[],
          ${pgArray(batch.map((p) => p.req.gasLimit?.toString() ?? null))}::numeric[], ${pgArray(batch.map((p) => p.apiKeyName))}::text[],
          ${pgArray(batch.map((p) => p.req.idempotencyKey))}::text[], ${pgArray(batch.map((p) => p.req.validUntil?.toISOString() ?? null))}::timestamptz[])
        ON CONFLICT (api_key_name, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING *
      ), events AS (
        INSERT INTO transaction_events (transaction_id, from_status, to_status, actor)
        SELECT id, NULL, 'QUEUED', COALESCE(NULLIF(api_key_name, ''), 'system') FROM ins
      )
      SELECT * FROM ins`
    const byId = new Map(inserted.map((r) => [r.id, r]))
    // Not inserted: its idempotency key was taken, before or earlier in this batch; that row is committed, so read it now.
    const retried = batch.filter((p) => !byId.has(p.id))
    const existing = new Map<string, TransactionRow>()
    if (retried.length) {
      // The batch is committed: a failure from here on must not reach a client as "nothing was stored" (a 503
      // for an unreachable database): a client without a key would send a stored request again. The new rows
      // are answered, and the retries fail as an internal error (their rows exist).
      const rows = await sql<TransactionRow[]>`
        SELECT t.* FROM transactions t
        JOIN unnest(${pgArray(retried.map((p) => p.apiKeyName))}::text[], ${pgArray(retried.map((p) => p.req.idempotencyKey))}::text[]) AS k(api_key_name, idempotency_key)
          ON t.api_key_name = k.api_key_name AND t.idempotency_key = k.idempotency_key`.catch((err: unknown) => {
        ctx.log.error({ err, retries: retried.length }, 'reading the stored requests of idempotent retries failed after the batch committed')
        return null
      })
      if (rows === null) {
        const lookupFailed = new InputError(ERROR_CODE.INTERNAL, 'Your request is stored (same idempotencyKey), but reading it back failed; ask again', undefined, 500)
        for (const p of retried) p.reject(lookupFailed)
        batch = batch.filter((p) => byId.has(p.id))
      } else for (const r of rows) existing.set(`${r.api_key_name}\u0000${r.idempotency_key}`, r)
    }
    const outcomes = batch.map((p): AcceptOutcome | InputError => {
      const row = byId.get(p.id)
      if (row) return { transaction: row, created: true }
      const prior = existing.get(`${p.apiKeyName}\u0000${p.req.idempotencyKey}`)
      if (!prior) return new InputError(ERROR_CODE.INTERNAL, 'idempotency conflict without a row', undefined, 500)
      if (!sameRequest(prior, p.req)) return idempotencyConflict(prior)
      return { transaction: prior, created: false }
    })
    // Answer only now that the rows are committed.
    const kicked = new Set<string>()
    batch.forEach((p, i) => {
      const o = outcomes[i]!
      if (o instanceof InputError) return p.reject(o)
      if (o.created && !kicked.has(p.signer)) {
        kicked.add(p.signer)
        ctx.kickSigner(p.req.chainId, p.signer)
      }
      p.resolve(o)
    })
  }

  return {
    accept(item) {
      return new Promise<AcceptOutcome>((resolve, reject) => {
        queue.push({ ...item, id: randomUUID(), resolve, reject })
        if (queue.length >= MAX_BATCH) flush()
        else if (!scheduled) {
          scheduled = true
          setImmediate(flush)
        }
      })
    },
  }
}

/** 409: the client's idempotency key names a stored request with other fields. */
export function idempotencyConflict(prior: TransactionRow): InputError {
  return new InputError(ERROR_CODE.IDEMPOTENCY_CONFLICT, `idempotencyKey: already used for transaction ${prior.id} with different fields`, 'idempotencyKey', 409)
}

export function sameRequest(row: TransactionRow, req: Omit<BroadcastRequest, 'chainId'> & { chainId: number | null }): boolean {
  return (
    // Naming no chain, it was stored on the one chain served then (a retry after a second chain was added, or after
    // the only one was replaced).
    (req.chainNamed === false || row.chain_id === req.chainId) &&
    row.to === req.to &&
    row.data === req.data &&
    row.value === req.value.toString() &&
    (row.gas_limit ?? null) === (req.gasLimit?.toString() ?? null) &&
    // Without `from` any signer the first request got is the same request.
    (req.from === null || row.signer === req.from)
  )
}

/** The SQLSTATE of a Postgres error ('' for anything else). */
function sqlStateOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : ''
}

/** Postgres aborted the statement to break a deadlock (or a serialization failure): nothing of it was stored. */
function lostToDeadlock(err: unknown): boolean {
  return sqlStateOf(err) === '40P01' || sqlStateOf(err) === '40001'
}

/** A Postgres error about a row's values (class 22, data exception; class 23, integrity), not about the database. */
function refusedRow(err: unknown): boolean {
  return /^2[23]/.test(sqlStateOf(err))
}

/** A row's value Postgres cannot store is the request's fault: a 400 naming it, not a 500. */
function refusal(err: unknown): unknown {
  if (!/^22/.test(sqlStateOf(err))) return err
  return new InputError(ERROR_CODE.INVALID_INPUT, `the request holds a value the database cannot store: ${(err as Error).message}`, undefined, 400)
}
