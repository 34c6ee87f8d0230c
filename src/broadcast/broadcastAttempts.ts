import type { Hex } from 'viem'
import type { ChainClients, ProviderClient } from '../chain/createChainClients.ts'
import { BATCH_LIMITS, requestBytes } from '../chain/byteBoundedBatches.ts'
import { describeSendAnswer, toSendAnswer } from '../chain/toSendAnswer.ts'
import type { ServiceContext } from '../context.ts'
import { classifySendAnswer, type SendAnswer, type SendOutcome } from '../core/classifySendError.ts'
import { pgArray } from '../db/pgArray.ts'
import { createUnacceptedLog, type UnacceptedAttempt } from './unacceptedLog.ts'

export { toSendAnswer }

export type RawAttempt = { transactionId: string; nonce: number; hash: Hex; raw: Hex }

/** Provider answers kept per attempt (the latest ones): a dozen rebroadcasts to four providers. */
export const MAX_ANSWERS_KEPT = 48

export type ProviderResult = { name: string; outcome: SendOutcome; error: string | null; at: string }

/** Error text safe to store and show: provider URL credentials in viem's messages are redacted. */
function describe(answer: SendAnswer, chain: ChainClients): string | null {
  const text = describeSendAnswer(answer)
  return text === null ? null : chain.redact(text).slice(0, 500)
}

async function sendTo(provider: ProviderClient, raw: Hex): Promise<SendAnswer> {
  try {
    await provider.client.request({ method: 'eth_sendRawTransaction', params: [raw] })
    return { kind: 'ok' }
  } catch (err) {
    return toSendAnswer(err)
  }
}

/** One per chain (each service has its own ChainClients, so several services in one process, as in tests, do not share one). */
const unacceptedLogs = new WeakMap<ChainClients, ReturnType<typeof createUnacceptedLog>>()
function unacceptedLogOf(ctx: ServiceContext, chain: ChainClients) {
  let log = unacceptedLogs.get(chain)
  if (!log) unacceptedLogs.set(chain, (log = createUnacceptedLog(ctx.log, chain.chainId)))
  return log
}

/** The least a batch a provider took waits for the others before the next batch may go out (broadcastAttempts). */
const SLOW_PROVIDER_GRACE_MS = 100

/** Kept for a day: the longest `patience.sendMs` allowed. */
const TAKEN_KEPT_SECONDS = 24 * 3600

function noteTaken(chain: ChainClients): void {
  const second = Math.floor(Date.now() / 1000)
  if (chain.takenSeconds.has(second)) return
  chain.takenSeconds.add(second)
  // Pruned now and then, not on every send: the set is in time order (insertion order is ascending).
  if (chain.takenSeconds.size % 1024 === 0)
    for (const s of chain.takenSeconds) {
      if (s >= second - TAKEN_KEPT_SECONDS) break
      chain.takenSeconds.delete(s)
    }
}

/**
 * Sends stored raw bytes to every provider of the chain at once (viem has no
 * broadcast-to-all), in nonce order within each provider, and records each
 * provider's answer on the attempt. The same bytes every time: a rebroadcast can
 * never execute a request twice.
 */
export async function broadcastAttempts(
  ctx: ServiceContext,
  chain: ChainClients,
  attempts: RawAttempt[],
  /**
   * Called when the next batch may go out: once every provider has answered, or, once one provider took the whole
   * batch, after as long again as that took (at least SLOW_PROVIDER_GRACE_MS), whichever is first. Before the
   * answers are recorded either way (that waits for every provider).
   */
  onAnswered?: () => void,
): Promise<Map<Hex, ProviderResult[]>> {
  const results = new Map<Hex, ProviderResult[]>()
  if (attempts.length === 0) {
    onAnswered?.()
    return results
  }
  const ordered = [...attempts].sort((a, b) => a.nonce - b.nonce)
  // Every provider that is not down, at once; a down one is retried once its time-out passes (or all, if all are down).
  const targets = chain.providers.filter((p) => chain.health.usableForSend(p.name))
  const skipped = new Set(chain.providers.filter((p) => !targets.includes(p)).map((p) => p.name))
  if (skipped.size) {
    // A skipped provider is on the attempt as a provider_error saying why: to every stage it looks like one that
    // failed at once (as it would have), and the operator sees why it has no answer.
    const at = new Date().toISOString()
    for (const v of chain.health.view()) {
      if (!skipped.has(v.name)) continue
      const error = chain.redact(`not sent: provider is down${v.lastError ? ` (${v.lastError})` : ''}`).slice(0, 500)
      for (const a of ordered) results.set(a.hash, [...(results.get(a.hash) ?? []), { name: v.name, outcome: 'provider_error', error, at }])
    }
    ctx.log.debug({ chainId: chain.chainId, skipped: [...skipped] }, 'skipping down providers')
  }
  // A provider slow to answer (degraded, well inside its timeout) no longer holds every later batch of the signer:
  // waiting for it, a node answering in 2.5 s capped each signer at one batch per 2.5 s (80/s) while the others
  // answered in milliseconds. The next batch follows once a provider took this one, after as long again; a slower
  // one may then get the next batch before it is done with this one (a node keeps those as future nonces).
  let released = false
  const release = () => {
    if (released) return
    released = true
    onAnswered?.()
  }
  let grace: NodeJS.Timeout | undefined
  const started = performance.now()
  // A batch that goes to each provider in pieces (byteBoundedBatches: 200 calls or 1 MiB each, one after another) waits
  // for every provider: a slower one still sending this batch's later pieces got the next batch ahead of them, every
  // time, and geth keeps only 64 future nonces per account (the rest dropped after answering "sent").
  const onePiece = ordered.length <= BATCH_LIMITS.maxRequests && ordered.reduce((n, a) => n + requestBytes({ method: 'eth_sendRawTransaction', params: [a.raw] }), 0) <= BATCH_LIMITS.maxBytes / 2
  await Promise.allSettled(
    targets.map(async (provider) => {
      // All sends of one provider start in the same tick, so the batching transport puts them in one request, in order.
      const answers = await Promise.all(ordered.map((a) => sendTo(provider, a.raw)))
      const at = new Date().toISOString()
      const outcomes = answers.map((answer, i) => {
        const hash = ordered[i]!.hash
        const list = results.get(hash) ?? []
        const outcome = classifySendAnswer(answer)
        list.push({ name: provider.name, outcome, error: describe(answer, chain), at })
        results.set(hash, list)
        return outcome
      })
      if (!released && grace === undefined && onePiece && outcomes.every((o) => o === 'sent'))
        grace = setTimeout(release, Math.max(SLOW_PROVIDER_GRACE_MS, performance.now() - started))
    }),
  )
  clearTimeout(grace)
  release()
  const hashes = [...results.keys()]
  const answers = hashes.map((h) => JSON.stringify(results.get(h)))
  const sent = hashes.map((h) => results.get(h)!.some((r) => r.outcome === 'sent'))
  if (sent.some(Boolean)) noteTaken(chain)
  // Taken by no provider, and some said its fees are too low (below the node's minimum, or the base fee moved past
  // them): its bump is due at once, not bumpAfterMs after this send (DESIGN.md: "bump now, within the cap"). A
  // chain whose nodes want a higher tip than eth_maxPriorityFeePerGas says took one raise per bumpAfterMs (30 s by
  // default) to get a transaction into any pool, and every later nonce of the signer waited behind it.
  const feeTooLow = hashes.map((h, i) => !sent[i] && results.get(h)!.some((r) => r.outcome === 'fee_too_low'))
  // Refused as never valid by every provider: the reconcile stage fails it if no attempt was ever accepted.
  const refused = hashes.map((h) => results.get(h)!.every((r) => r.outcome === 'invalid'))
  // Refused by every provider because the signer cannot pay (its balance fell after signing): said on the
  // transaction, which keeps its nonce and is sent again until the signer is funded.
  const short = hashes.map((h) => {
    const list = results.get(h)!
    return list.every((r) => r.outcome === 'insufficient_funds') ? (list.find((r) => r.error)?.error ?? 'insufficient funds') : null
  })
  // Two statements, one table each, never one holding locks on both: the watcher settles a block by locking
  // transactions and then attempts, so a statement locking attempts and then transactions (as one with a
  // data-modifying CTE did) could deadlock with it when a send was recorded late, after its block.
  // The attempt's own fee cap, as feeCapFor reckons it from its gas.
  const { maxFeePerGasCap, maxTxFeeWei } = chain.config.fees
  const capSql =
    maxTxFeeWei === null
      ? ctx.db.sql`${maxFeePerGasCap.toString()}::numeric`
      : ctx.db.sql`LEAST(${maxFeePerGasCap.toString()}::numeric, div(${maxTxFeeWei.toString()}::numeric, GREATEST(attempts.gas_limit, 1)))`
  const recorded = await ctx.db.sql<{ transaction_id: string; sent: boolean; short: string | null; fee_too_low: boolean }[]>`
    WITH v AS (
      SELECT * FROM unnest(${pgArray(hashes)}::text[], ${pgArray(answers)}::jsonb[], ${pgArray(sent)}::boolean[], ${pgArray(refused)}::boolean[],
                           ${pgArray(short)}::text[], ${pgArray(feeTooLow)}::boolean[])
        AS v(hash, answers, sent, refused, short, fee_too_low)
    )
    UPDATE attempts SET
      -- The latest answers only: a transaction stuck for a day is rebroadcast thousands of times, and the whole
      -- list is rewritten on each send and served with every read of it.
      providers = CASE WHEN jsonb_array_length(attempts.providers) + jsonb_array_length(v.answers) <= ${MAX_ANSWERS_KEPT}
                       THEN attempts.providers || v.answers
                       ELSE (SELECT jsonb_agg(x.e ORDER BY x.i) FROM jsonb_array_elements(attempts.providers || v.answers) WITH ORDINALITY AS x(e, i)
                             WHERE x.i > jsonb_array_length(attempts.providers) + jsonb_array_length(v.answers) - ${MAX_ANSWERS_KEPT}) END,
      sent_at = CASE WHEN v.sent THEN COALESCE(attempts.sent_at, now()) ELSE attempts.sent_at END,
      -- A node that takes an attempt every provider had refused (sent again by the recovery sweep) makes it SENT:
      -- it may mine now, so its transaction must not be failed for it and its nonce handed on.
      status = CASE WHEN v.sent AND attempts.status IN ('SIGNED', 'REJECTED') THEN 'SENT'
                    WHEN v.refused AND attempts.status = 'SIGNED' THEN 'REJECTED' ELSE attempts.status END
    -- The hashes listed as well, so the planner can look them up (attempts_hash_key) or filter a scan by them: joined
    -- alone, it hashed the whole table while its statistics were a fresh table's (20-24 ms for 200 in a drain, 13 after).
    FROM v WHERE attempts.hash = ANY(${pgArray(hashes)}::text[]) AND attempts.hash = v.hash
    -- Not at the fee cap (there a raise is impossible), nor for an attempt a node took before (the bump stage sends the
    -- same bytes again for it): a due row was sent again on every pass (each second) to a node that refuses it,
    -- instead of every bumpAfterMs.
    RETURNING attempts.transaction_id, v.sent, v.short,
      v.fee_too_low AND COALESCE(attempts.max_fee_per_gas, attempts.gas_price) < ${capSql}
        AND NOT attempts.providers @> '[{"outcome": "sent"}]'::jsonb AS fee_too_low`
  const bumpAfter = `${chain.config.fees.bumpAfterMs} milliseconds`
  const recordedIds = pgArray(recorded.map((r) => r.transaction_id))
  if (recorded.length)
    await ctx.db.sql`
      UPDATE transactions SET last_sent_at = CASE WHEN a.fee_too_low AND transactions.at_fee_cap IS NULL THEN now() - ${bumpAfter}::interval ELSE now() END,
        first_sent_at = CASE WHEN a.sent THEN COALESCE(transactions.first_sent_at, now()) ELSE transactions.first_sent_at END,
        error_code = CASE WHEN a.short IS NOT NULL AND transactions.status = 'PENDING' AND transactions.error_code IS NULL THEN 'INSUFFICIENT_FUNDS'
                          WHEN a.sent AND transactions.error_code = 'INSUFFICIENT_FUNDS' THEN NULL ELSE transactions.error_code END,
        error_message = CASE WHEN a.short IS NOT NULL AND transactions.status = 'PENDING' AND transactions.error_code IS NULL
                               THEN 'the signer cannot pay for it any more (' || a.short || '); it keeps its nonce and is sent again until the signer is funded'
                             WHEN a.sent AND transactions.error_code = 'INSUFFICIENT_FUNDS' THEN NULL ELSE transactions.error_message END
      FROM unnest(${recordedIds}::uuid[], ${pgArray(recorded.map((r) => r.sent))}::boolean[],
                  ${pgArray(recorded.map((r) => r.short))}::text[], ${pgArray(recorded.map((r) => r.fee_too_low))}::boolean[]) AS a(transaction_id, sent, short, fee_too_low)
      WHERE transactions.id = ANY(${recordedIds}::uuid[]) AND transactions.id = a.transaction_id`
  const shortIds = recorded.filter((r) => r.short !== null).map((r) => r.transaction_id)
  if (shortIds.length)
    // And on its signer, as the sign stage flags one: the short-of-funds gauge and the dashboard's notice to fund
    // it. A signer whose work was all signed (drained by a use elsewhere, or by a raise the balance cannot cover)
    // showed nothing while every one of its transactions waited. The sweep clears it once it can pay again.
    await ctx.db.sql`
      UPDATE signer_nonces s SET short_of_funds_at = COALESCE(s.short_of_funds_at, now()), updated_at = now()
      FROM (SELECT DISTINCT chain_id, signer FROM transactions WHERE id = ANY(${pgArray(shortIds)}::uuid[]) AND status = 'PENDING') t
      WHERE s.chain_id = t.chain_id AND s.signer = t.signer AND s.short_of_funds_at IS NULL`
  const unaccepted: UnacceptedAttempt[] = []
  for (const [hash, list] of results) {
    // A send never made (the provider down) is not an answer: counted as provider_error, it looked like one that failed each time.
    for (const r of list)
      ctx.metrics?.providerSends.inc({ chain_id: String(chain.chainId), provider: r.name, outcome: skipped.has(r.name) ? 'skipped_down' : r.outcome })
    if (list.every((r) => r.outcome !== 'sent')) unaccepted.push({ hash, answers: list })
  }
  if (unaccepted.length) unacceptedLogOf(ctx, chain)(unaccepted)
  return results
}
