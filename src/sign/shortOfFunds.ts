import type { ServiceContext } from '../context.ts'
import { feeCapFor, initialFees, maxCostWei, type Fees } from '../core/fees.ts'
import { TRANSFER_GAS } from './buildAttempt.ts'
import { readSignerState, spendNotInBalance } from './signerState.ts'

/** Whether `wei` left pays for a plain value transfer at `fees`: a signer that cannot is short of funds for any request. */
export function canPayTransfer(wei: bigint, fees: Fees): boolean {
  return wei >= maxCostWei(fees, TRANSFER_GAS, 0n)
}

/**
 * Clears signer_nonces.short_of_funds_at for signers of this instance that can pay for a plain transfer again
 * (balance less what their unmined transactions may spend). The accept path gives a flagged signer no requests
 * that name none, so its own sign stage may have nothing to sign that would clear it: without this, a signer
 * funded again stayed out of the rotation, and txb_signer_short_of_funds said 1, until some request named it.
 * Only a flag still as read is cleared, so one the sign stage set meanwhile stands. Returns the signers cleared.
 */
export async function clearFundedSigners(ctx: ServiceContext): Promise<string[]> {
  const { sql } = ctx.db
  // The time as text, compared as text: a JS Date (what postgres.js makes of a timestamptz, both ways) keeps
  // milliseconds, Postgres microseconds.
  const flagged = await sql<{ chain_id: number; signer: string; at: string }[]>`
    SELECT chain_id, signer, short_of_funds_at::text AS at FROM signer_nonces WHERE short_of_funds_at IS NOT NULL`
  const cleared: string[] = []
  for (const f of flagged) {
    const chain = ctx.chains.get(f.chain_id)
    const signer = ctx.signers.get(f.chain_id, f.signer)
    if (!chain || !signer) continue
    try {
      const state = await readSignerState(chain, signer)
      const committed = await spendNotInBalance(sql, f.chain_id, signer.address, state.chainNonce)
      if (!canPayTransfer(state.balance - committed, initialFees(state.market, feeCapFor(chain.config.fees, TRANSFER_GAS)))) continue
      const done = await sql`
        UPDATE signer_nonces SET short_of_funds_at = NULL WHERE chain_id = ${f.chain_id} AND signer = ${f.signer} AND short_of_funds_at::text = ${f.at}`
      if (done.count) {
        cleared.push(signer.address)
        ctx.log.info({ chainId: f.chain_id, signer: signer.address }, 'signer can pay again; it takes requests that name no signer')
      }
    } catch (err) {
      ctx.log.debug({ err, chainId: f.chain_id, signer: f.signer }, 'could not read a short signer; looked at again on the next sweep')
    }
  }
  return cleared
}
