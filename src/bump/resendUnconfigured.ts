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
 */
export async function resendUnconfigured(ctx: ServiceContext, chain: ChainClients): Promise<number> {
  const configured = ctx.signers.forChain(chain.chainId).map((s) => s.address)
  const rows = await ctx.db.sql<{ transaction_id: string; nonce: number; hash: Hex; raw: Hex }[]>`
    SELECT a.transaction_id, a.nonce::int AS nonce, a.hash, a.raw
    FROM (SELECT id, execution, valid_until FROM transactions
          WHERE chain_id = ${chain.chainId} AND status = 'PENDING' AND signer <> ALL(${pgArray(configured)}::text[])
            -- Twice bumpAfterMs: in a rolling deploy another instance may still have the signer and raise them once
            -- bumpAfterMs has passed since the last send. A resend here at the same moment moved that on (each send
            -- does), and could keep taking the raise's turn.
            AND (last_sent_at IS NULL OR last_sent_at < now() - ${`${2 * chain.config.fees.bumpAfterMs} milliseconds`}::interval)
          ORDER BY signer, nonce LIMIT ${RESEND_BATCH}) t
    JOIN LATERAL (SELECT * FROM attempts WHERE transaction_id = t.id AND execution = t.execution ORDER BY id DESC LIMIT 1) a ON true
    -- Not a request's own bytes past its validUntil: sent again, they ran late (its cancel, if one was signed, goes).
    WHERE NOT (a.purpose = 'REQUEST' AND COALESCE(t.valid_until <= now(), false))`
  if (rows.length === 0) return 0
  await broadcastAttempts(ctx, chain, rows.map((r) => ({ transactionId: r.transaction_id, nonce: r.nonce, hash: r.hash, raw: r.raw })))
  return rows.length
}
