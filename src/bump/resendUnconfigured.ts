import type { Hex } from 'viem'
import { broadcastAttempts } from '../broadcast/broadcastAttempts.ts'
import type { ChainClients } from '../chain/createChainClients.ts'
import type { ServiceContext } from '../context.ts'
import { pgArray } from '../db/pgArray.ts'

/** Rows sent again per pass, at most. */
const RESEND_BATCH = 100

/**
 * PENDING transactions of signers not configured here (a key rotated out with transactions in flight) are sent
 * again as they are, every other bumpAfterMs: their latest signed bytes need no key. Nothing here can raise them, but a
 * node that dropped them (a restart, a full pool, a fee spike that passed) gets them back. Before, nothing sent them
 * again at all, and one a node dropped stayed PENDING for good. (The recovery sweep names such signers in the log.)
 *
 * Rows are claimed first (their last_sent_at moved on, SKIP LOCKED), so several instances without the signer do
 * not all send the same ones. Not taken: one never sent (the recovery sweep's, after its grace: another instance may
 * be sending it right now), a request's own bytes past its validUntil (sent again, they ran late; its cancel, if one
 * was signed, goes), and one whose last answer was "nonce too low" (its nonce was used; the receipt sweep settles
 * it if it was ours): sent again for ever, every provider refusing it each time.
 */
export async function resendUnconfigured(ctx: ServiceContext, chain: ChainClients): Promise<number> {
  const configured = ctx.signers.forChain(chain.chainId).map((s) => s.address)
  // One statement: the rows and their latest attempt (read once, for both the checks and the bytes), claimed.
  const rows = await ctx.db.sql<{ transaction_id: string; nonce: number; hash: Hex; raw: Hex }[]>`
    UPDATE transactions SET last_sent_at = now()
    FROM (
      SELECT t.id, a.nonce, a.hash, a.raw FROM transactions t
      JOIN LATERAL (SELECT * FROM attempts WHERE transaction_id = t.id AND execution = t.execution ORDER BY id DESC LIMIT 1) a ON true
      WHERE t.chain_id = ${chain.chainId} AND t.status = 'PENDING' AND t.signer <> ALL(${pgArray(configured)}::text[])
        -- Twice bumpAfterMs: in a rolling deploy another instance may still have the signer and raise them once
        -- bumpAfterMs has passed since the last send. A resend here at the same moment moved that on (each send
        -- does), and could keep taking the raise's turn.
        AND t.last_sent_at < now() - ${`${2 * chain.config.fees.bumpAfterMs} milliseconds`}::interval
        -- Once a cancel is signed, every later attempt is a cancel: a latest REQUEST past validUntil has none.
        AND (t.valid_until IS NULL OR t.valid_until > now() OR a.purpose = 'CANCEL')
        AND a.providers->-1->>'outcome' IS DISTINCT FROM 'nonce_too_low'
      ORDER BY t.signer, t.nonce LIMIT ${RESEND_BATCH}
      FOR UPDATE OF t SKIP LOCKED) c
    WHERE transactions.id = c.id
    RETURNING c.id AS transaction_id, c.nonce::int AS nonce, c.hash, c.raw`
  if (rows.length === 0) return 0
  await broadcastAttempts(ctx, chain, rows.map((r) => ({ transactionId: r.transaction_id, nonce: r.nonce, hash: r.hash, raw: r.raw })))
  return rows.length
}
