import type { Hex } from 'viem'
import { broadcastAttempts } from '../broadcast/broadcastAttempts.ts'
import type { ServiceContext } from '../context.ts'
import { startLoop, type Loop } from '../common/startLoop.ts'
import { QUEUE, signJobKey } from '../jobs/queues.ts'
import { pgArray } from '../db/pgArray.ts'
import { clearFundedSigners } from '../sign/shortOfFunds.ts'

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
    if (!ctx.chains.has(s.chain_id) || !ctx.signers.get(s.chain_id, s.signer)) continue // named by unconfiguredSigners
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

/** How often requests of a signer this instance does not have are looked for and named in the log. */
const UNCONFIGURED_EVERY_MS = 60_000
const lastUnconfiguredLook = new WeakMap<ServiceContext, number>()

/**
 * Requests in flight on a configured chain whose signer is not configured here (removed from the config, a key
 * rotated with a backlog left): nothing here signs, bumps or resends them, and they waited without a word. Named
 * in the log (an error per signer, once a minute) so an operator configures the signer again or cancels them.
 * In a rolling deploy another instance may still have the signer and carry them on; nothing is changed here.
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
        'requests of a signer that is not configured here wait: nothing here signs, bumps or resends them; configure the signer again, or cancel them',
      )
}

export function startRecoverySweep(ctx: ServiceContext, opts: SweepOptions = {}): Loop {
  // Runs at once: this is what picks up after a crash.
  return startLoop('recovery sweep', SWEEP_INTERVAL_MS, () => sweepOnce(ctx, opts), ctx.log)
}
