import type { Hex } from 'viem'
import { broadcastAttempts } from '../broadcast/broadcastAttempts.ts'
import type { ServiceContext } from '../context.ts'
import { startLoop, type Loop } from '../common/startLoop.ts'
import { QUEUE, signJobKey } from '../jobs/queues.ts'
import { pgArray } from '../db/pgArray.ts'
import { clearFundedSigners } from '../sign/shortOfFunds.ts'
import { pickSigner } from '../accept/acceptTransaction.ts'
import { ERROR_CODE } from '../core/errors.ts'

/** How often the sweep looks for work whose job or send was lost. */
export const SWEEP_INTERVAL_MS = 3_000
/** A stored attempt not marked sent after this long was probably cut off by a crash. */
const UNSENT_GRACE_MS = 3_000

export type SweepOptions = {
  /** Attempts this process is about to send (a drain's queue behind a slow node): not lost, so not sent again here. */
  holds?: (hash: string) => boolean
}

/**
 * Postgres is the truth, jobs are wake-ups: a job lost to a crash must not strand
 * a request. Re-drives signers that have QUEUED rows, and sends (same bytes) the
 * latest attempt of PENDING transactions that were stored but never handed to
 * the providers (a crash between commit and send). Stalled sends are the bump stage's.
 */
export async function sweepOnce(ctx: ServiceContext, opts: SweepOptions = {}): Promise<void> {
  const { sql } = ctx.db
  const signers = await sql<{ chain_id: number; signer: string }[]>`
    SELECT DISTINCT chain_id, signer FROM transactions WHERE status = 'QUEUED'`
  for (const s of signers) {
    if (!ctx.chains.has(s.chain_id)) continue // named at start-up (a chain removed from the config)
    if (!ctx.signers.get(s.chain_id, s.signer)) {
      await strandedQueued(ctx, s.chain_id, s.signer).catch((err: unknown) =>
        ctx.log.warn({ err, chainId: s.chain_id, signer: s.signer }, 'handling the queued requests of a signer not configured here failed'),
      )
      continue
    }
    const job = { chainId: s.chain_id, signer: s.signer }
    await ctx.boss.send(QUEUE.sign, job, { singletonKey: signJobKey(job) })
    ctx.kickSigner(s.chain_id, s.signer)
  }
  for (const chain of ctx.chains.values()) {
    const found = await sql<{ transaction_id: string; nonce: number; hash: Hex; raw: Hex }[]>`
      SELECT DISTINCT ON (t.id) a.transaction_id, a.nonce, a.hash, a.raw
      FROM transactions t JOIN attempts a ON a.transaction_id = t.id AND a.execution = t.execution
      WHERE t.chain_id = ${chain.chainId} AND t.status = 'PENDING'
        AND t.last_sent_at IS NULL AND a.created_at < now() - ${`${UNSENT_GRACE_MS} milliseconds`}::interval
        -- Past its validUntil, a request's own bytes never go out (they would execute late): the bump stage sends
        -- the self-transfer in their place. Sent here at start-up, before the bump stage ran, they could mine.
        AND (a.purpose = 'CANCEL' OR t.valid_until IS NULL OR t.valid_until > now())
      ORDER BY t.id, a.id DESC
      LIMIT 1000`
    const stale = opts.holds ? found.filter((r) => !opts.holds!(r.hash)) : found
    if (stale.length === 0) continue
    ctx.log.info({ chainId: chain.chainId, count: stale.length }, 'rebroadcasting stored attempts (same bytes)')
    await broadcastAttempts(
      ctx,
      chain,
      stale.map((r) => ({ transactionId: r.transaction_id, nonce: r.nonce, hash: r.hash, raw: r.raw })),
    )
  }
  await unconfiguredSigners(ctx)
  // After the resends (they matter more, and it reads the node): a signer funded again takes requests that name
  // no signer again (the accept path avoids it meanwhile). Its failure is only logged.
  await clearFundedSigners(ctx).catch((err: unknown) => ctx.log.warn({ err }, 'looking at signers short of funds failed'))
}

/** Left alone this long first: an instance that still has the signer (a rolling deploy) signs its rows within a second. */
const STRANDED_GRACE = '10 seconds'
/**
 * A signer some instance signed for (or looked at its set-aside rows, at least once a minute) this recently is
 * still someone's: its rows are left to that instance. Moved or noted from here, they bounced between instances
 * with other signers, and the other instance's reasons (waiting for funds, refused) were overwritten, restarting
 * their patience for ever.
 */
const SIGNER_ACTIVE = '2 minutes'
/** Moved to another signer per pass and signer, at most (the rest on the next pass, 3 s later). */
const STRANDED_MOVE_MAX = 1_000
/** Why a request moved off its signer (its event `signer_changed`). */
const SIGNER_NOT_CONFIGURED = 'its signer is not in the config'

/**
 * QUEUED requests of a signer not in this instance's config (a key rotated out, a signer removed with a backlog):
 * nothing here signs them, and they stayed QUEUED for good, with no reason shown, counting against their key's
 * in-flight cap. No nonce of theirs was spent, so:
 * - past its validUntil, one ends FAILED EXPIRED (the sign stage's check, which it never reached);
 * - one that named no signer (and that no remote signer refused) moves to the chain's least loaded signer, as a
 *   retry of it would (event `signer_changed`);
 * - the rest (it named the signer in `from`, or the signer refused it) waits with UNKNOWN_SIGNER saying why, until an
 *   instance with that signer runs (it then signs it, and the note goes) or an admin cancels it.
 * Only for a signer no instance has signed for lately (SIGNER_ACTIVE), and rows changed in the last STRANDED_GRACE are
 * left alone. Each change is a compare-and-set on QUEUED and the signer, as the sign stage's lock checks them: an
 * instance that still has the signer and signs a row meanwhile keeps it.
 */
async function strandedQueued(ctx: ServiceContext, chainId: number, signer: string): Promise<void> {
  const { sql } = ctx.db
  const active = await sql`
    SELECT 1 FROM signer_nonces WHERE chain_id = ${chainId} AND signer = ${signer} AND updated_at > now() - ${SIGNER_ACTIVE}::interval`
  if (active.length) return
  await sql.begin(async (tx) => {
    const expired = await tx<{ id: string; message: string }[]>`
      UPDATE transactions SET status = 'FAILED', error_code = ${ERROR_CODE.EXPIRED},
        error_message = 'validUntil ' || to_char(valid_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || ' passed before it was sent (its signer is not in the config)',
        final_at = now(), updated_at = now()
      WHERE chain_id = ${chainId} AND signer = ${signer} AND status = 'QUEUED' AND valid_until <= now()
      RETURNING id, error_message AS message`
    if (expired.length)
      await tx`
        INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
        SELECT v.id, 'QUEUED', 'FAILED', jsonb_build_object('code', ${ERROR_CODE.EXPIRED}::text, 'message', v.message)
        FROM unnest(${pgArray(expired.map((e) => e.id))}::uuid[], ${pgArray(expired.map((e) => e.message))}::text[]) AS v(id, message)`
  })
  if (ctx.signers.forChain(chainId).length > 0) {
    const movable = await sql<{ id: string }[]>`
      SELECT id FROM transactions
      WHERE chain_id = ${chainId} AND signer = ${signer} AND status = 'QUEUED' AND NOT signer_pinned AND refused_by IS NULL
        AND updated_at < now() - ${STRANDED_GRACE}::interval
      ORDER BY seq LIMIT ${STRANDED_MOVE_MAX}`
    if (movable.length) {
      const to = await pickSigner(ctx, chainId, null)
      const moved = await sql<{ id: string }[]>`
        WITH moved AS (
          UPDATE transactions t SET signer = ${to}, error_code = NULL, error_message = NULL, waiting_since = NULL, updated_at = now()
          WHERE t.id = ANY(${pgArray(movable.map((m) => m.id))}::uuid[]) AND t.status = 'QUEUED' AND t.signer = ${signer}
            AND NOT t.signer_pinned AND t.refused_by IS NULL
          RETURNING t.id, t.execution
        ), events AS (
          INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
          SELECT id, 'QUEUED', 'QUEUED', jsonb_build_object('action', 'signer_changed', 'from', ${signer}::text, 'to', ${to}::text,
            'reason', ${SIGNER_NOT_CONFIGURED}::text, 'execution', execution)
          FROM moved
        )
        SELECT id FROM moved`
      if (moved.length) {
        ctx.log.warn({ chainId, signer, to, moved: moved.length }, `requests that named no signer moved to another signer: ${SIGNER_NOT_CONFIGURED}`)
        ctx.kickSigner(chainId, to)
      }
    }
  }
  await sql`
    UPDATE transactions SET error_code = ${ERROR_CODE.UNKNOWN_SIGNER}, waiting_since = now(), updated_at = now(),
      error_message = ${`its signer ${signer} is not in the config of chain ${chainId}; it waits until an instance with that signer runs (it is then signed), or an admin cancels it`}
    WHERE chain_id = ${chainId} AND signer = ${signer} AND status = 'QUEUED' AND error_code IS DISTINCT FROM ${ERROR_CODE.UNKNOWN_SIGNER}
      AND (signer_pinned OR refused_by IS NOT NULL OR ${ctx.signers.forChain(chainId).length === 0})
      AND updated_at < now() - ${STRANDED_GRACE}::interval`
}

/** How often requests of a signer this instance does not have are looked for and named in the log. */
const UNCONFIGURED_EVERY_MS = 60_000
const lastUnconfiguredLook = new WeakMap<ServiceContext, number>()

/**
 * Requests in flight on a configured chain whose signer is not configured here (removed from the config, a key
 * rotated with a backlog left): nothing here signs, bumps or resends them (QUEUED ones are handled by
 * strandedQueued; the bump stage sends PENDING ones' signed bytes again as they are, resendUnconfigured.ts). Named in
 * the log (an error per signer, once a minute) so an operator configures the signer
 * again or cancels them. In a rolling deploy another instance may still have the signer and carry them on.
 */
async function unconfiguredSigners(ctx: ServiceContext): Promise<void> {
  const now = Date.now()
  if (now - (lastUnconfiguredLook.get(ctx) ?? 0) < UNCONFIGURED_EVERY_MS) return
  lastUnconfiguredLook.set(ctx, now)
  const chainIds = [...ctx.chains.keys()]
  const stranded = await ctx.db.sql<{ chain_id: number; signer: string; queued: number; pending: number }[]>`
    SELECT chain_id, signer, count(*) FILTER (WHERE status = 'QUEUED')::int AS queued, count(*) FILTER (WHERE status = 'PENDING')::int AS pending
    FROM transactions WHERE status IN ('QUEUED', 'PENDING') AND chain_id = ANY(${pgArray(chainIds)}::int[])
    GROUP BY 1, 2`
  for (const s of stranded)
    if (!ctx.signers.get(s.chain_id, s.signer))
      ctx.log.error(
        { chainId: s.chain_id, signer: s.signer, queued: s.queued, pending: s.pending },
        // Only QUEUED ones can be cancelled without it: a PENDING one's cancel is a transaction at its nonce that
        // only its key can sign (cancelTransaction refuses it, UNKNOWN_SIGNER); the log said "cancel them" for all.
        'requests of a signer that is not configured here wait: nothing here signs (but moves those that named no signer) or raises them (their signed bytes are sent again as they are); configure the signer again (PENDING ones need it: only their key can replace them), or cancel the QUEUED ones',
      )
}

export function startRecoverySweep(ctx: ServiceContext, opts: SweepOptions = {}): Loop {
  // Runs at once: this is what picks up after a crash.
  return startLoop('recovery sweep', SWEEP_INTERVAL_MS, () => sweepOnce(ctx, opts), ctx.log)
}
