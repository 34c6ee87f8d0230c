import type { Address, Hex } from 'viem'
import { broadcastAttempts, type RawAttempt } from '../broadcast/broadcastAttempts.ts'
import type { ChainClients } from '../chain/createChainClients.ts'
import { countAtSettledCursor } from '../chain/countAtSettledCursor.ts'
import { heldOrAbsent, minedSomewhere, receiptOrAbsent } from '../chain/askEachProvider.ts'
import { pgArray } from '../db/pgArray.ts'
import { reopenMined } from '../store/reopenMined.ts'
import { unconfiguredPendingSigners } from '../store/unconfiguredPendingSigners.ts'
import { adoptLostTransactions } from './adoptLostTransactions.ts'
import { readFeeMarket } from '../chain/readFeeMarket.ts'
import type { ServiceContext } from '../context.ts'
import { ERROR_CODE } from '../core/errors.ts'
import { feeCapFor, initialFees } from '../core/fees.ts'
import { buildAttempt } from '../sign/buildAttempt.ts'
import { selfTransferGas } from '../chain/selfTransferGas.ts'
import { createRepeatedFailureLogs } from '../common/repeatedFailureLog.ts'
import type { Signer } from '../signers/loadSigners.ts'

/** A send taken this long after a transaction's first unrecognized refusal shows the providers take others. */
const OTHERS_TAKEN_AFTER_MS = 2_000

/** Whether one of our sends was taken in a whole second within [from, to] (epoch ms), as this process saw it. */
function takenBetween(chain: ChainClients, from: number, to: number): boolean {
  // Over the set itself (at most a day of seconds), not over every second of a window that grows with the refusal.
  const first = Math.ceil(from / 1000)
  for (const s of chain.takenSeconds) if (s >= first && (s + 1) * 1000 <= to) return true
  return false
}

/**
 * Said when a transaction of a signer no longer configured fails at a nonce the chain has not used: only its key can
 * fill it, so its later transactions wait behind it (they were stuck behind the failed one already).
 */
const NO_FILLER =
  'its signer is not configured here, so nothing fills its nonce: the signer\'s later transactions wait until an instance with the signer runs'

/**
 * Keeps each signer's nonce state true to the chain (DESIGN.md, "reconcile"):
 * - the key was used elsewhere: raise our next nonce past what the chain has;
 * - a PENDING transaction of ours whose nonce the chain consumed, with no receipt
 *   for any of our attempts: no attempt of ours can be mined any more, so it is
 *   queued again for a new nonce (the only time a request is re-signed at another nonce);
 * - an attempt every provider refused as invalid, never accepted anywhere: FAILED,
 *   which frees its nonce;
 * - a hole (a nonce below our next one that no transaction of ours holds):
 *   filled with a zero-value self-transfer so nothing waits behind it.
 * Conditions that could be a lagging provider must be seen on two passes in a row. Signers no longer in the config
 * that still have PENDING transactions are gone over too, but for the holes (filling one takes the key).
 */
export function createNonceReconciler(ctx: ServiceContext, chain: ChainClients) {
  const { sql } = ctx.db
  const log = ctx.log.child({ module: 'reconcile', chainId: chain.chainId })
  /** Keys seen on the previous pass; a condition acts only when it is seen again. */
  let seenBefore = new Set<string>()
  /**
   * Passes started, and the latest whose keys were handed on. A pass the loop gave up waiting for runs on while
   * startLoop starts the next; ending after a newer pass handed its keys on, it must not put older ones back.
   * (Skipping every pass that was overtaken instead stopped reconcile for good when every pass ran long.)
   */
  let passes = 0
  let handedOn = 0
  /** Transactions left PENDING because their attempt ran unindexed, or could not be looked for (said once each). */
  const unindexed = new Set<string>()

  /**
   * `signer`: undefined for a signer no longer in the config with PENDING transactions (a key rotated out with some
   * in flight). Everything but filling holes needs no key: one of its transactions whose nonce another one took is
   * queued again as any other (then moved to a configured signer if it named none, else it waits for its own:
   * recoverySweep.ts), where before it stayed PENDING for good, its bytes answered "nonce too low".
   */
  async function reconcileSigner(address: Address, signer: Signer | undefined, seenNow: Set<string>): Promise<void> {
    const [latest, pending] = await Promise.all([
      chain.read.getTransactionCount({ address, blockTag: 'latest' }),
      chain.read.getTransactionCount({ address, blockTag: 'pending' }),
    ])
    const twice = (key: string) => {
      seenNow.add(key)
      return seenBefore.has(key)
    }

    // 1. Used elsewhere: nonces below the chain's count are gone whoever used them.
    const [state] = await sql<{ next_nonce: number; updated_at: Date }[]>`SELECT next_nonce, updated_at FROM signer_nonces WHERE chain_id = ${chain.chainId} AND signer = ${address}`
    if (!state) return // never signed anything yet: the sign stage starts from the chain's count
    // Not for a signer no longer configured: raising its row marked it as in use (recoverySweep.ts' SIGNER_ACTIVE), and
    // its QUEUED requests that named no signer stayed on it two minutes more. The sign stage does both once it is back.
    if (signer && latest > state.next_nonce) {
      // First, any of those nonces that holds one of our requests this database forgot signing is taken as its
      // execution (adoptLostTransactions.ts); a search that fails leaves the nonce where it is for this pass.
      await adoptLostTransactions(ctx, chain, address, state.next_nonce, latest, state.updated_at)
      const raised = await sql`
        UPDATE signer_nonces SET next_nonce = ${latest}, updated_at = now()
        WHERE chain_id = ${chain.chainId} AND signer = ${address} AND next_nonce < ${latest}`
      if (raised.count) log.warn({ signer: address, from: state.next_nonce, to: latest }, 'signer key was used outside the service; next nonce raised')
    }

    // 2. Our PENDING transactions whose nonce the chain had consumed by the block the watcher has scanned
    // to. Counted at the head instead, almost all of them are ours, mined in blocks the watcher has not
    // reached yet: behind a burst it lags a block or two (anvil, for one, takes seconds over the receipts
    // of a block of thousands), and asking for their receipts one by one cost hundreds of calls per
    // burst, each costing the node work in proportion to its block while it answers nothing else.
    // Up to the cursor, the watcher has settled every attempt of ours it found, so what is left there
    // was displaced, or mined where the scan could not see it (its receipt sweep covers that).
    const consumedAtHead = await sql<{ id: string; nonce: number; hashes: Hex[]; first_signed: Date }[]>`
      SELECT t.id, t.nonce, array_agg(a.hash) AS hashes, min(a.created_at) AS first_signed
      FROM transactions t JOIN attempts a ON a.transaction_id = t.id AND a.execution = t.execution
      WHERE t.chain_id = ${chain.chainId} AND t.signer = ${address} AND t.status = 'PENDING' AND t.nonce < ${latest}
      GROUP BY t.id, t.nonce`
    // Only then the count at the cursor (one more call to the node).
    const scannedCount = consumedAtHead.length ? await countAtSettledCursor(sql, chain, address) : null
    const consumed = scannedCount === null ? [] : consumedAtHead.filter((t) => t.nonce < scannedCount)
    for (const t of consumed) {
      // Left PENDING above: each search reads blocks (up to 20,000 of them on a node without past state).
      if (unindexed.has(t.id)) continue
      // Receipts are asked for only once a whole pass has gone by (the watcher may be settling it right now).
      if (!twice(`consumed:${t.id}:${t.nonce}`)) continue
      const receipts = await Promise.all(t.hashes.map((hash) => receiptOrAbsent(chain, hash)))
      if (receipts.some((r) => r === 'mined')) continue // ours mined: the watcher settles it
      // A lookup that failed (timeout, rate limit) says nothing: ask again next pass.
      if (receipts.some((r) => r === 'unknown')) continue
      // No receipt is not proof: a provider whose receipts lag its blocks (a load-balanced endpoint) answers
      // null for a transaction that is mined. Only one that no node knows by its hash either is gone.
      const known = await Promise.all(t.hashes.map((hash) => heldOrAbsent(chain, hash)))
      if (known.some((k) => k !== 'absent')) continue
      // Requeued, it would be signed again at a new nonce: if a lagging provider hid a receipt, the request
      // would run twice. So "no receipt" must also be seen on two passes in a row.
      if (!twice(`unmined:${t.id}:${t.nonce}`)) continue
      // The transaction that took the nonce may be this request's own, signed with fees this database forgot (a
      // raise after the backup it was restored from): then it ran, and is taken as its attempt, not queued again.
      // A search that fails says nothing: asked again next pass.
      const search = await adoptLostTransactions(ctx, chain, address, t.nonce, t.nonce + 1, t.first_signed)
      if (search.adopted > 0) continue
      // Or it is one of this very row's attempts, which no provider finds by its hash any more (a node that keeps no
      // index of old transactions, after a long stop or a restore): it ran. Queued again, it ran twice. Or the search
      // could not look (a node without past state, too many blocks since): then "no provider finds it" is no proof
      // either. Either way it stays PENDING, said in the log, and is not searched for again by this process.
      const ran = t.hashes.find((h) => search.minedHashes.has(h.toLowerCase()))
      if (ran || !search.complete) {
        unindexed.add(t.id)
        log.error(
          { txId: t.id, hash: ran ?? t.hashes[0], nonce: t.nonce, signer: address },
          ran
            ? "this transaction's attempt was mined, but no provider serves its receipt by hash (an index of old transactions pruned): it is left PENDING, not signed again; add a provider that keeps the index (an archive node) to settle it"
            : "this transaction's nonce was used, no provider knows its attempts by hash, and the blocks since it was signed could not be searched: it may have run, so it is left PENDING, not signed again; add an archive provider to settle it",
        )
        continue
      }
      let requeued = false
      await sql.begin(async (tx) => {
        // A request an admin cancelled must not run after all, and a filler has no hole left to fill: both end
        // here (nothing of theirs ran). Anything else is queued again for a new nonce.
        const ended = await tx`
          UPDATE transactions SET status = 'FAILED', nonce = NULL, final_at = now(), updated_at = now(), at_fee_cap = NULL,
            -- A request replaced for its validUntil (EXPIRED) keeps saying so: no admin cancelled it.
            error_code = CASE WHEN kind = 'FILLER' THEN ${ERROR_CODE.NONCE_USED_ELSEWHERE} WHEN error_code = ${ERROR_CODE.EXPIRED} THEN ${ERROR_CODE.EXPIRED} ELSE ${ERROR_CODE.CANCELLED} END,
            error_message = CASE WHEN kind = 'FILLER' THEN ${`its nonce ${t.nonce} was used by another transaction of this key: nothing left to fill`}
                                 WHEN error_code = ${ERROR_CODE.EXPIRED} THEN ${`its validUntil passed before it was mined; its nonce ${t.nonce} was used by another transaction of this key, so nothing of it ran`}
                                 ELSE ${`cancelled by an admin; its nonce ${t.nonce} was used by another transaction of this key, so nothing of it ran`} END
          WHERE id = ${t.id} AND status = 'PENDING' AND nonce = ${t.nonce}
            AND (kind = 'FILLER' OR error_code = 'CANCELLED'
                 OR EXISTS (SELECT 1 FROM attempts a WHERE a.transaction_id = ${t.id} AND a.execution = transactions.execution AND a.purpose = 'CANCEL'))`
        const moved = ended.count
          ? ended
          : await tx`
              UPDATE transactions SET status = 'QUEUED', nonce = NULL, execution = execution + 1, at_fee_cap = NULL, last_sent_at = NULL, waiting_since = NULL, refused_by = NULL,
                error_code = NULL, error_message = NULL, updated_at = now()
              WHERE id = ${t.id} AND status = 'PENDING' AND nonce = ${t.nonce}`
        if (!moved.count) return
        requeued = !ended.count
        await tx`UPDATE attempts SET status = 'REJECTED' WHERE transaction_id = ${t.id} AND nonce = ${t.nonce}`
        await tx`
          INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
          VALUES (${t.id}, 'PENDING', ${requeued ? 'QUEUED' : 'FAILED'}, ${tx.json({ reason: 'nonce_used_elsewhere', nonce: t.nonce })}::jsonb)`
      })
      if (!requeued) {
        log.warn({ txId: t.id, nonce: t.nonce }, 'nonce consumed by another transaction of this key; cancelled (or filler) transaction FAILED, not queued again')
        continue
      }
      if (!signer) {
        log.warn(
          { txId: t.id, nonce: t.nonce, signer: address },
          'nonce consumed by another transaction of this key; queued again, and its signer is not configured here: it moves to another signer if it named none, else it waits for its own',
        )
        continue
      }
      log.warn({ txId: t.id, nonce: t.nonce }, 'nonce consumed by another transaction of this key; queued again for a new nonce')
      ctx.kickSigner(chain.chainId, address)
    }

    // 2b. Final transactions whose nonce the chain no longer has consumed: a reorg deeper than the confirmation
    // depth took their block away. Left final, the request was lost and every later nonce waited behind it.
    await reviveReorgedFinals(address, latest, twice)

    // 3. Attempts that every provider refused as invalid and no node ever accepted.
    const invalid = await sql<{ id: string; nonce: number; message: string | null }[]>`
      SELECT t.id, t.nonce, (SELECT p->>'error' FROM attempts a2, jsonb_array_elements(a2.providers) p
                             WHERE a2.transaction_id = t.id ORDER BY a2.id DESC LIMIT 1) AS message
      FROM transactions t
      WHERE t.chain_id = ${chain.chainId} AND t.signer = ${address} AND t.status = 'PENDING'
        AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.transaction_id = t.id AND a.execution = t.execution AND a.status <> 'REJECTED')
        -- At least one refused attempt: a PENDING row with no attempt of its execution at all is not "refused".
        AND EXISTS (SELECT 1 FROM attempts a WHERE a.transaction_id = t.id AND a.execution = t.execution AND a.status = 'REJECTED')`
    for (const t of invalid) {
      // Failing it hands its nonce on: only when a whole pass later it is still so (a resend may be taken meanwhile).
      if (!twice(`invalid:${t.id}:${t.nonce}`)) continue
      await sql.begin(async (tx) => {
        // The row's lock first: a cancel or a raise being built holds it until its attempt is committed. Waited for
        // inside the UPDATE instead, the attempt it committed meanwhile was not seen (the statement's subqueries read
        // from before the wait), and the row FAILED with that attempt on its way to the nodes.
        await tx`SELECT 1 FROM transactions WHERE id = ${t.id} FOR UPDATE`
        const moved = await tx`
          UPDATE transactions SET status = 'FAILED', nonce = NULL, final_at = now(), updated_at = now(), at_fee_cap = NULL,
            error_code = ${ERROR_CODE.INVALID_TRANSACTION}, error_message = ${t.message ?? 'every provider refused it as invalid'}
          WHERE id = ${t.id} AND status = 'PENDING'
            AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.transaction_id = ${t.id} AND a.execution = transactions.execution AND a.status <> 'REJECTED')
            AND EXISTS (SELECT 1 FROM attempts a WHERE a.transaction_id = ${t.id} AND a.execution = transactions.execution AND a.status = 'REJECTED')`
        if (moved.count)
          await tx`
            INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
            VALUES (${t.id}, 'PENDING', 'FAILED', ${tx.json({ code: ERROR_CODE.INVALID_TRANSACTION, nonce: t.nonce })}::jsonb)`
      })
      log.warn(
        { txId: t.id, nonce: t.nonce, reason: t.message },
        signer
          ? 'transaction refused as invalid by every provider; FAILED, its nonce will be filled'
          : `transaction refused as invalid by every provider; FAILED. ${NO_FILLER}`,
      )
    }

    // 3b. No provider took it, in words we do not recognize (DESIGN.md: "treat as possibly sent: check receipts and
    // the pending nonce before deciding").
    await settleUnrecognizedRefusals(address, signer !== undefined, pending, twice)

    // 4. Holes between the chain's count and our next nonce. Filling one takes the key.
    if (!signer) return
    const holes = await sql<{ nonce: number }[]>`
      SELECT n::bigint AS nonce FROM signer_nonces s, generate_series(${Math.max(latest, pending)}::bigint, s.next_nonce - 1) AS n
      WHERE s.chain_id = ${chain.chainId} AND s.signer = ${address}
        AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.chain_id = s.chain_id AND t.signer = s.signer AND t.nonce = n)
      LIMIT 1000`
    const confirmedHoles = holes.filter((h) => twice(`hole:${address}:${h.nonce}`))
    if (confirmedHoles.length) await fillHoles(signer, confirmedHoles.map((h) => h.nonce))
  }

  /**
   * A CONFIRMED, REVERTED or CANCELLED transaction at a nonce the chain's latest count has not reached: its block
   * is no longer canonical (a reorg deeper than `confirmations`; 1 on many L2 setups). Seen on two passes in a row,
   * proved by another block at that height and with no receipt for the bytes that mined, it goes back to PENDING
   * (in its timeline) and those same bytes are sent again: the same nonce, so it cannot run twice. Also when a node
   * holds it in its pool again (it was skipped, and stayed CONFIRMED while it waited, unbumped, in a pool). Not yet
   * covered: one mined again in the replacing chain before a pass saw it gone (its nonce is counted again) keeps the
   * old block; checking recent finals' blocks from one provider's view could revert a truly final one.
   */
  async function reviveReorgedFinals(address: Address, latest: number, twice: (key: string) => boolean): Promise<void> {
    type Final = {
      id: string
      nonce: number
      status: string
      hash: Hex
      raw: Hex
      block_number: number
      block_hash: Hex
      execution: number
      /** A request's own bytes past its validUntil: not sent again (they would run late); the bump stage sends the cancel. */
      late: boolean
    }
    const gone = await sql<Final[]>`
      SELECT t.id, t.nonce, t.status, a.hash, a.raw, t.block_number, t.block_hash, t.execution,
        a.purpose = 'REQUEST' AND COALESCE(t.valid_until <= now(), false) AS late
      FROM transactions t JOIN attempts a ON a.hash = t.mined_hash
      WHERE t.chain_id = ${chain.chainId} AND t.signer = ${address} AND t.nonce >= ${latest}
        AND t.status IN ('CONFIRMED', 'REVERTED', 'CANCELLED')
      ORDER BY t.nonce LIMIT 100`
    /** The chain's block hash at each height asked, once per pass; null when a provider could not say. */
    const canonical = new Map<number, Promise<Hex | null>>()
    const hashAt = (n: number) => {
      let h = canonical.get(n)
      if (!h) canonical.set(n, (h = chain.read.getBlock({ blockNumber: BigInt(n) }).then((b) => b.hash ?? null, () => null)))
      return h
    }
    const revived: RawAttempt[] = []
    for (const t of gone) {
      // Positive proof only (a lagging provider's low count, null receipt and "not found" prove nothing): the chain
      // has a block at that height, and it is another block than the one it was mined in.
      const now = await hashAt(t.block_number)
      if (!now || now === t.block_hash) continue
      if (!twice(`final-reorged:${t.id}:${t.nonce}:${t.block_hash}`)) continue
      // No receipt (a failed call is not "no"), and no provider, each asked on its own, has it mined: one provider on
      // a losing branch must not move a final transaction. A node holding it in its pool does not keep it final.
      if ((await receiptOrAbsent(chain, t.hash)) !== 'absent') continue
      if ((await minedSomewhere(chain, t.hash)) !== 'not-mined') continue
      const moved = await reopenMined(sql, t, { reason: 'reorged_out_after_final', hash: t.hash, nonce: t.nonce, block: t.block_number })
      if (!moved) continue
      log.error(
        { txId: t.id, nonce: t.nonce, hash: t.hash, was: t.status },
        'a final transaction is no longer on chain (a reorg deeper than the confirmation depth); back to PENDING, its mined bytes sent again',
      )
      if (!t.late) revived.push({ transactionId: t.id, nonce: t.nonce, hash: t.hash, raw: t.raw })
    }
    if (revived.length) await broadcastAttempts(ctx, chain, revived)
  }

  /**
   * PENDING transactions that no provider took (no attempt of this execution was ever answered "sent") and that a
   * provider refused in words the classifier does not know. Such an answer may hide a node that has it after all,
   * or one that refuses it for good (geth's "tx fee exceeds the configured cap", a node's own policy, ...). Held
   * as possibly sent, it held its nonce for ever: every later transaction of the signer waited behind it.
   * - a receipt for any attempt: the watcher settles it;
   * - a node holds an attempt (eth_getTransactionByHash), or the node's pending count passed its nonce: sent
   *   after all, recorded so, and it goes on as any other;
   * - neither, on two passes: it waits, sent again as it is by the timeout stage, for `patience.sendMs` from the
   *   first such answer, and only while other transactions of the chain got through meanwhile (so a provider that
   *   refuses everything, which is provider trouble, never fails anything); then FAILED with SEND_REFUSED, which
   *   hands its nonce on (step 4 fills it if a later transaction already holds the next one).
   */
  async function settleUnrecognizedRefusals(address: Address, configured: boolean, pendingCount: number, twice: (key: string) => boolean): Promise<void> {
    const refused = await sql<{ id: string; nonce: number; execution: number }[]>`
      SELECT t.id, t.nonce, t.execution FROM transactions t
      WHERE t.chain_id = ${chain.chainId} AND t.signer = ${address} AND t.status = 'PENDING' AND t.last_sent_at IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.transaction_id = t.id AND a.execution = t.execution AND a.status NOT IN ('SIGNED', 'REJECTED'))
        AND EXISTS (SELECT 1 FROM attempts a WHERE a.transaction_id = t.id AND a.execution = t.execution AND a.status = 'SIGNED'
                      AND a.providers @> '[{"outcome": "unknown"}]')`
    for (const t of refused) {
      const attempts = await sql<{ id: string; hash: Hex; created_at: Date; providers: { outcome: string; error: string | null; at: string }[] }[]>`
        SELECT id, hash, created_at, providers FROM attempts WHERE transaction_id = ${t.id} AND execution = ${t.execution} ORDER BY id`
      const receipts = await Promise.all(attempts.map((a) => receiptOrAbsent(chain, a.hash)))
      if (receipts.some((r) => r === 'mined')) continue
      const held = await Promise.all(attempts.map((a) => heldOrAbsent(chain, a.hash)))
      if (receipts.some((r) => r === 'unknown') || held.some((h) => h === 'unknown')) continue
      const heldHashes = attempts.filter((_, i) => held[i] === 'held').map((a) => a.hash)
      if (heldHashes.length) {
        await sql`UPDATE attempts SET status = 'SENT', sent_at = COALESCE(sent_at, now()) WHERE hash = ANY(${pgArray(heldHashes)}::text[]) AND status IN ('SIGNED', 'REJECTED')`
        await sql`UPDATE transactions SET first_sent_at = COALESCE(first_sent_at, now()), updated_at = now() WHERE id = ${t.id}`
        log.info({ txId: t.id, nonce: t.nonce, hashes: heldHashes }, 'a node holds an attempt every provider answered in unrecognized words: recorded as sent')
        continue
      }
      // Something holds this nonce in the node's pool: maybe ours. Not a refusal we can act on.
      if (pendingCount > t.nonce) continue
      // Since the first attempt so answered was made: its own answers may have been trimmed to the latest ones.
      const refusedAttempts = attempts.filter((a) => a.providers.some((p) => p.outcome === 'unknown'))
      if (refusedAttempts.length === 0) continue
      const since = Math.min(...refusedAttempts.map((a) => a.created_at.getTime()))
      const message = refusedAttempts.at(-1)!.providers.filter((p) => p.outcome === 'unknown').at(-1)?.error ?? 'unrecognized answer'
      const deadline = since + chain.config.patience.sendMs
      if (Date.now() < deadline || !twice(`refused:${t.id}:${t.nonce}`)) continue
      // Other transactions got through while it was being refused: after its first refusal (not its own batch-mates,
      // sent in the same call) and before its latest one. A provider refusing everything, going down just then, or
      // back up only after its latest resend, is provider trouble, never this transaction's.
      const lastRefusal = Math.max(...refusedAttempts.flatMap((a) => a.providers.filter((p) => p.outcome === 'unknown').map((p) => Date.parse(p.at))))
      if (!takenBetween(chain, since + OTHERS_TAKEN_AFTER_MS, lastRefusal)) continue
      const failedMessage = `no provider took it since ${new Date(since).toISOString()} and no node holds it; last answer: ${message}`.slice(0, 1000)
      const checked = attempts.map((a) => a.id)
      const moved = await sql.begin(async (tx) => {
        // As in step 3: the row's lock first, so an attempt committed while it was held is seen. And only the
        // attempts looked at above: a raise or a cancel made during those reads (still SIGNED, on its way to the
        // nodes) was marked REJECTED with them, and the row FAILED while it could still be mined.
        await tx`SELECT 1 FROM transactions WHERE id = ${t.id} FOR UPDATE`
        const failed = await tx`
          UPDATE transactions SET status = 'FAILED', nonce = NULL, final_at = now(), updated_at = now(), at_fee_cap = NULL,
            error_code = ${ERROR_CODE.SEND_REFUSED}, error_message = ${failedMessage}
          WHERE id = ${t.id} AND status = 'PENDING' AND nonce = ${t.nonce} AND execution = ${t.execution}
            AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.transaction_id = ${t.id} AND a.execution = ${t.execution}
                              AND (a.status NOT IN ('SIGNED', 'REJECTED') OR NOT (a.id = ANY(${pgArray(checked)}::int8[]))))`
        if (!failed.count) return false
        await tx`UPDATE attempts SET status = 'REJECTED' WHERE transaction_id = ${t.id} AND execution = ${t.execution} AND status = 'SIGNED'`
        await tx`
          INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
          VALUES (${t.id}, 'PENDING', 'FAILED', ${tx.json({ code: ERROR_CODE.SEND_REFUSED, nonce: t.nonce })}::jsonb)`
        return true
      })
      if (moved)
        log.warn(
          { txId: t.id, nonce: t.nonce, reason: message },
          `no provider took the transaction (unrecognized answers) and no node holds it; FAILED, ${configured ? 'its nonce is handed on' : NO_FILLER}`,
        )
    }
  }

  async function fillHoles(signer: Signer, nonces: number[]): Promise<void> {
    const gas = await selfTransferGas(chain, signer.address)
    const fees = initialFees(await readFeeMarket(chain.read, chain.config.fees.model), feeCapFor(chain.config.fees, gas))
    const sent: RawAttempt[] = []
    await sql.begin(async (tx) => {
      // Under the signer's lock, so the sign stage and other instances see a consistent picture.
      await tx`SELECT 1 FROM signer_nonces WHERE chain_id = ${chain.chainId} AND signer = ${signer.address} FOR UPDATE`
      for (const nonce of nonces) {
        const [row] = await tx<{ id: string; execution: number }[]>`
          INSERT INTO transactions (chain_id, signer, "to", data, value, status, nonce, kind, api_key_name)
          VALUES (${chain.chainId}, ${signer.address}, ${signer.address}, '0x', 0, 'PENDING', ${nonce}, 'FILLER', 'system')
          ON CONFLICT DO NOTHING RETURNING id, execution`
        if (!row) continue
        const built = await buildAttempt({
          signer,
          chainId: chain.chainId,
          tx: { id: row.id, execution: row.execution, to: signer.address as Address, data: '0x', value: '0' },
          nonce,
          gas,
          fees,
          purpose: 'REQUEST',
        })
        await tx`INSERT INTO attempts ${tx([built.row])}`
        await tx`
          INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
          VALUES (${row.id}, NULL, 'PENDING', ${tx.json({ reason: 'nonce_hole_filler', nonce })}::jsonb)`
        sent.push({ transactionId: row.id, nonce, hash: built.hash, raw: built.raw })
      }
    })
    if (sent.length) {
      ctx.metrics?.attempts.inc({ chain_id: String(chain.chainId), kind: 'first' }, sent.length)
      log.warn({ signer: signer.address, nonces }, 'filling nonce holes with zero-value self-transfers')
      await broadcastAttempts(ctx, chain, sent)
    }
  }

  /** Per signer, a failure said once and then counted (a provider outage logged one per signer and pass). */
  const failureLogs = createRepeatedFailureLogs(
    log,
    {
      failed: "reconciling a signer failed; the chain's other signers go on, it is tried again on the next pass",
      still: 'reconciling a signer still fails the same way; tried again each pass',
      again: 'reconciling the signer works again',
    },
    'warn',
  )
  const failuresOf = (address: string) => failureLogs(address, { signer: address })
  return {
    async reconcile(): Promise<void> {
      const pass = ++passes
      const seenNow = new Set<string>()
      const configured = ctx.signers.forChain(chain.chainId)
      const unconfigured = await unconfiguredPendingSigners(sql, ctx.signers, chain.chainId)
      const each: [Address, Signer | undefined][] = [...configured.map((s): [Address, Signer] => [s.address, s]), ...unconfigured.map((a): [Address, undefined] => [a, undefined])]
      for (const [address, signer] of each)
        try {
          await reconcileSigner(address, signer, seenNow)
          failuresOf(address).succeeded()
        } catch (err) {
          // One signer's trouble (its remote signer down while a hole needs a filler, a failed read) stops only its
          // own pass: the first failure used to end the pass for every signer after it on the chain. What it did
          // not see again this pass needs two passes in a row again, as a condition seen for the first time does.
          failuresOf(address).failed(err)
        }
      if (pass > handedOn) {
        seenBefore = seenNow
        handedOn = pass
      }
    },
  }
}

