import type { Address, Hex } from 'viem'
import { broadcastAttempts, type RawAttempt } from '../broadcast/broadcastAttempts.ts'
import type { ChainClients } from '../chain/createChainClients.ts'
import { readFeeMarket } from '../chain/readFeeMarket.ts'
import type { ServiceContext } from '../context.ts'
import { ERROR_CODE } from '../core/errors.ts'
import { feeCapFor, feesAtCap, nextBumpFees, percentToBps, shouldRaiseFees } from '../core/fees.ts'
import { pgArray } from '../db/pgArray.ts'
import { buildAttempt, feesOf, type AttemptPurpose } from '../sign/buildAttempt.ts'
import { selfTransferGas } from '../chain/selfTransferGas.ts'
import { RemoteSignerError } from '../signers/remoteSigner.ts'
import type { AttemptRow, TransactionRow } from '../store/transactionRow.ts'

/** Transactions handled per pass; the next pass takes the rest. */
const BUMP_BATCH = 500
/**
 * ... and at most about this much of their calldata and latest raw bytes (hex), as the sign stage's
 * MAX_UNSENT_BYTES: 500 rows of large calldata held over 250 MB in one pass (their raw bytes once more when
 * re-signed). The first row is taken whatever its size.
 */
const BUMP_BATCH_BYTES = 16 * 1024 * 1024

/**
 * Remote signers that failed to sign a bump (not a refusal of one request), per chain: not asked again until the
 * time given. Each ask of a hung signer waits out its time-out while the pass holds its rows locked (the
 * watcher's settling waits on them): about once per bumpAfterMs, not once per pass (about a second). Counted from
 * the pass's start and a little short of bumpAfterMs, so a row paced by that pass is asked on its next turn;
 * cleared by a bump the signer signs.
 */
const downUntil = new WeakMap<ChainClients, Map<string, { until: number; err: RemoteSignerError }>>()

function recentlyDown(chain: ChainClients, signer: string): RemoteSignerError | undefined {
  const d = downUntil.get(chain)?.get(signer)
  return d && Date.now() < d.until ? d.err : undefined
}

function markDown(chain: ChainClients, signer: string, err: RemoteSignerError, until: number): void {
  let m = downUntil.get(chain)
  if (!m) downUntil.set(chain, (m = new Map()))
  m.set(signer, { until, err })
}

/** signer_nonces.remote_failing_since / remote_error for the signers a bump pass found failing, or signing again. */
async function noteRemoteSigners(
  ctx: ServiceContext,
  chainId: number,
  passStarted: Date,
  failing: Map<string, RemoteSignerError>,
  signed: Set<string>,
): Promise<void> {
  // Not over what the sign stage found after this pass began (it stamps updated_at with each batch): newer news.
  for (const [signer, err] of failing)
    await ctx.db.sql`UPDATE signer_nonces SET remote_failing_since = COALESCE(remote_failing_since, now()), remote_error = ${err.message}
      WHERE chain_id = ${chainId} AND signer = ${signer} AND (remote_failing_since IS NOT NULL OR updated_at < ${passStarted})`
  for (const signer of signed)
    if (!failing.has(signer))
      await ctx.db.sql`UPDATE signer_nonces SET remote_failing_since = NULL, remote_error = NULL
        WHERE chain_id = ${chainId} AND signer = ${signer} AND remote_failing_since IS NOT NULL AND updated_at < ${passStarted}`
}

/** `past_valid_until`: by Postgres's clock, the one `due` reads (the service's may differ from it). */
type Stalled = TransactionRow & {
  latest: AttemptRow
  underpriced: boolean
  taken: boolean
  refused_for_fees: boolean
  past_valid_until: boolean
  /** The latest attempt was refused as never valid by every provider (attempts.status REJECTED). */
  rejected: boolean
}

/**
 * Each signer's lowest waiting nonce, the one its later transactions wait behind: its PENDING row at the chain's
 * count. Below the count a PENDING row is already mined (the watcher has not settled it yet, or cannot read its
 * receipt): taken as the head, it hid the stuck one, which then was never raised. Above it, the row waits behind a
 * hole (a nonce the reconciler is filling), and raising it only overpays. A failed count read names no head for
 * that pass (it was read as 0, and a mined row became the head).
 */
async function headsOfLine(ctx: ServiceContext, chain: ChainClients, signers: string[]): Promise<Map<string, number>> {
  const heads = new Map<string, number>()
  await Promise.all(
    signers.map(async (signer) => {
      const count = await chain.read.getTransactionCount({ address: signer as Address, blockTag: 'latest' }).catch(() => null)
      if (count === null) return
      const [row] = await ctx.db.sql<{ nonce: number }[]>`
        SELECT nonce::int AS nonce FROM transactions
        WHERE chain_id = ${chain.chainId} AND signer = ${signer} AND status = 'PENDING' AND nonce = ${count} LIMIT 1`
      if (row) heads.set(signer, row.nonce)
    }),
  )
  return heads
}

/**
 * The timeout stage (the original design's 30 s check, as `bumpAfterMs` per chain).
 * A PENDING transaction not included `bumpAfterMs` after its last send is
 * re-signed at the same nonce with both fee fields raised, and broadcast, where
 * fees are what holds it back (`shouldRaiseFees`: not for one waiting behind a
 * lower nonce of its signer, nor for one no node took for another reason); else
 * the same bytes go out again. At the fee cap, the same bytes are rebroadcast and
 * the transaction is flagged `atFeeCap` instead of going silent. A transaction
 * past its `validUntil` is replaced by a zero-value self-transfer instead (it
 * must not execute late).
 */
export async function bumpStalled(ctx: ServiceContext, chain: ChainClients): Promise<number> {
  const { sql } = ctx.db
  const fees = chain.config.fees
  // Stalled ones, and ones whose validUntil has passed without a replacement yet: those must not wait for
  // bumpAfterMs (by default 30 s more in which the request could still execute late). The same condition again
  // under the row lock: another instance may have bumped one meanwhile (the fee market is read in between).
  const due = sql`
    (t.last_sent_at < now() - ${`${fees.bumpAfterMs} milliseconds`}::interval
     OR (t.valid_until <= now() AND t.error_code IS DISTINCT FROM ${ERROR_CODE.EXPIRED}
         AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.transaction_id = t.id AND a.execution = t.execution AND a.purpose = 'CANCEL')))`
  // Signers configured here only: a removed signer's PENDING rows (nothing here can sign for them) stayed due for
  // ever, were picked first on every pass (ORDER BY nonce; a young key has low nonces), logged a warning each, and
  // 500 of them kept every other signer's stalled transactions on the chain from being bumped. The sweep names them.
  // octet_length reads a stored value's size without loading it.
  const configured = ctx.signers.forChain(chain.chainId).map((s) => s.address)
  const candidates = await sql<{ id: string; signer: string }[]>`
    WITH stalled AS (
      -- Each signer's rows in nonce order, taken in turns (every signer's lowest first): in one nonce order across
      -- signers, a signer with hundreds of stalled rows at low nonces (fewer per pass once bounded by bytes) kept
      -- another signer's head of the line out of every pass.
      SELECT id, signer, nonce, execution, octet_length(data) AS data_bytes, row_number() OVER (PARTITION BY signer ORDER BY nonce) AS turn
      FROM transactions t
      WHERE chain_id = ${chain.chainId} AND status = 'PENDING' AND signer = ANY(${pgArray(configured)}::text[]) AND ${due}),
    c AS (SELECT * FROM stalled ORDER BY turn, nonce, id LIMIT ${BUMP_BATCH}),
    sized AS (
      SELECT c.id, c.signer, c.nonce, c.turn,
        sum(c.data_bytes + coalesce(a.raw_bytes, 0)) OVER (ORDER BY c.turn, c.nonce, c.id) - (c.data_bytes + coalesce(a.raw_bytes, 0)) AS bytes_before
      FROM c LEFT JOIN LATERAL (
        SELECT octet_length(raw) AS raw_bytes FROM attempts WHERE transaction_id = c.id AND execution = c.execution ORDER BY id DESC LIMIT 1) a ON true)
    SELECT id, signer FROM sized WHERE bytes_before < ${BUMP_BATCH_BYTES} ORDER BY turn, nonce, id`
  if (candidates.length === 0) return 0
  const passStarted = Date.now()
  const market = await readFeeMarket(chain.read, fees.model)
  const bumpBps = percentToBps(fees.bumpPercent)
  const heads = await headsOfLine(ctx, chain, [...new Set(candidates.map((c) => c.signer))])

  const toSend: RawAttempt[] = []
  /** Reached their fee cap in this pass (`cap`: theirs, per gas). */
  const atCap: { id: string; cap: bigint }[] = []
  /** Flagged at their cap before, raised under their new attempt's cap in this pass. */
  const belowCap: string[] = []
  /** Due for a raise, but their remote signer did not sign one. */
  const unsigned: { id: string; signer: string; error: string; hash: string; expired: boolean }[] = []
  /** Remote signers that failed in this pass (not a refusal of one request): asked nothing more in it. */
  const signersDown = new Map<string, RemoteSignerError>()
  /** Acted on without a send (an expired one whose cancel could not be signed): paced like a send. */
  const paced: string[] = []
  /** Remote signers that signed a bump in this pass. */
  const remoteSigned = new Set<string>()
  let bumped = 0
  await sql.begin(async (tx) => {
    // SKIP LOCKED: another instance may be bumping some of these right now.
    const rows = await tx<Stalled[]>`
      SELECT t.*,
        -- numeric as text: JSON numbers would round wei amounts.
        jsonb_build_object('id', a.id, 'nonce', a.nonce, 'hash', a.hash, 'raw', a.raw, 'purpose', a.purpose, 'gas_limit', a.gas_limit::text,
          'max_fee_per_gas', a.max_fee_per_gas::text, 'max_priority_fee_per_gas', a.max_priority_fee_per_gas::text, 'gas_price', a.gas_price::text) AS latest,
        EXISTS (SELECT 1 FROM jsonb_array_elements(a.providers) p WHERE p->>'outcome' = 'replacement_underpriced') AS underpriced,
        EXISTS (SELECT 1 FROM jsonb_array_elements(a.providers) p WHERE p->>'outcome' IN ('replacement_underpriced', 'fee_too_low')) AS refused_for_fees,
        EXISTS (SELECT 1 FROM jsonb_array_elements(a.providers) p WHERE p->>'outcome' = 'sent') AS taken,
        a.status = 'REJECTED' AS rejected,
        COALESCE(t.valid_until <= now(), false) AS past_valid_until
      FROM transactions t
      JOIN LATERAL (SELECT * FROM attempts WHERE transaction_id = t.id AND execution = t.execution ORDER BY id DESC LIMIT 1) a ON true
      WHERE t.id = ANY(${pgArray(candidates.map((c) => c.id))}::uuid[]) AND t.status = 'PENDING' AND ${due}
      FOR UPDATE OF t SKIP LOCKED`
    /** Past its validUntil with no cancel sent: said once, on the transaction and its timeline, that it may still run. */
    const expiredMayRunLate = async (t: Stalled, message: string, detail: Record<string, string>) => {
      await tx`UPDATE transactions SET error_code = ${ERROR_CODE.EXPIRED}, error_message = ${message}, updated_at = now() WHERE id = ${t.id}`
      await tx`
        INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
        VALUES (${t.id}, 'PENDING', 'PENDING', ${tx.json(detail)}::jsonb)`
    }
    const attemptRows: Record<string, unknown>[] = []
    const events: { id: string; detail: string }[] = []
    /** Per signer, this pass's fresh estimate of a self-transfer (for cancels every provider refused as never valid). */
    const freshCancelGas = new Map<string, Promise<bigint>>()
    const cancelGas = async (address: string, last: bigint): Promise<bigint> => {
      const gas = await selfTransferGas(chain, address as Address)
      return gas > last ? gas : last
    }
    for (const t of rows) {
      const signer = ctx.signers.get(t.chain_id, t.signer)
      if (!signer) {
        ctx.log.warn({ txId: t.id, signer: t.signer }, 'cannot bump: signer is no longer configured')
        continue
      }
      const latest = t.latest
      // Postgres's clock, as in `due`: with the service's clock behind it, a row picked as expired was raised as a
      // REQUEST (not cancelled) on every pass until the clocks agreed; ahead of it, the cancel came late.
      const expired = t.past_valid_until && latest.purpose === 'REQUEST'
      const purpose: AttemptPurpose = expired ? 'CANCEL' : latest.purpose
      // A node said an attempt of ours was underpriced as a replacement: take a bigger step this time.
      const step = t.underpriced ? bumpBps * 2n : bumpBps
      // A cancel every provider refused as never valid: most often its gas, 21000 where the chain charges the L1 part in
      // gas (Arbitrum, zkSync Era), taken when the estimate failed or from one gone stale. Sent again as it was, on
      // every pass, it never took effect: the request could still run, or its nonce held every later one. Built
      // again with the gas of a fresh estimate when that is higher (else the same bytes, and asked again next pass).
      let cancelGasNow: bigint | null = null
      if (latest.purpose === 'CANCEL' && t.rejected) {
        // Once per signer per pass: asked with the pass's rows locked, each ask may take the read timeout.
        let fresh = freshCancelGas.get(t.signer)
        if (!fresh) freshCancelGas.set(t.signer, (fresh = selfTransferGas(chain, t.signer as Address, { fresh: true })))
        const gas = await fresh
        if (gas > BigInt(latest.gas_limit)) cancelGasNow = gas
      }
      const raise =
        cancelGasNow !== null ||
        shouldRaiseFees({
          headOfLine: heads.get(t.signer) === latest.nonce,
          taken: t.taken,
          refusedForFees: t.refused_for_fees,
          fees: feesOf(latest),
          market,
        })
      if (!raise && !expired) {
        toSend.push({ transactionId: t.id, nonce: latest.nonce, hash: latest.hash as Hex, raw: latest.raw as Hex })
        continue
      }
      // The new attempt's gas first: its fee cap depends on it (feeCapFor). A cancel's gas is a self-transfer's (never
      // below the last cancel's), not the request's it replaces.
      const gas =
        purpose === 'CANCEL' ? (cancelGasNow ?? (await cancelGas(t.signer, latest.purpose === 'CANCEL' ? BigInt(latest.gas_limit) : 0n))) : BigInt(latest.gas_limit)
      const cap = feeCapFor(fees, gas)
      let decision = nextBumpFees(feesOf(latest), market, step, cap)
      // A refused cancel (held in no pool) with no raise left under the cap: built again at its own fees, with the new gas.
      // At the cap of its new gas, which may be lower than its old one's (feeCapFor): not over it.
      if (cancelGasNow !== null && decision.kind === 'at_cap') decision = { kind: 'bump', fees: feesAtCap(feesOf(latest), market, cap), reachedCap: true }
      /** Past its deadline with no valid replacement under the cap: a cancel at the cap goes out instead (below). */
      const cancelAtCap = decision.kind === 'at_cap' && expired
      if (cancelAtCap) {
        if (t.error_code !== ERROR_CODE.EXPIRED) {
          // No valid replacement fits under the cap: the request itself may still mine after its deadline. Said on
          // the transaction (and logged) instead of silently going on.
          await expiredMayRunLate(
            t,
            `validUntil ${t.valid_until!.toISOString()} passed before inclusion, but no replacement fits under the fee cap (${cap} wei): a cancel at the cap is sent, which takes its nonce if no node holds the request any more; it may still execute late`,
            { action: 'expired_at_fee_cap', cap: cap.toString() },
          )
          ctx.log.warn({ txId: t.id, validUntil: t.valid_until }, 'validUntil passed at the fee cap: no valid cancel fits under the cap; the request may still execute late')
        }
        // Its own bytes went out again here, on every pass: a node that had dropped them took them back, and the
        // request ran after its deadline. A cancel at the cap is refused where the request is still held (as an
        // underpriced replacement) and takes the nonce where it is not.
        decision = { kind: 'bump', fees: feesAtCap(feesOf(latest), market, cap), reachedCap: true }
      }
      if (decision.kind === 'at_cap') {
        toSend.push({ transactionId: t.id, nonce: latest.nonce, hash: latest.hash as Hex, raw: latest.raw as Hex })
        if (t.at_fee_cap === null) atCap.push({ id: t.id, cap })
        continue
      }
      // A remote signer that failed (not refused) earlier in this pass is not asked again in it: a hung one
      // would make each of its rows wait out a time-out, with every row of the pass locked meanwhile.
      const down = signersDown.get(t.signer) ?? recentlyDown(chain, t.signer)
      let built: Awaited<ReturnType<typeof buildAttempt>> | null = null
      let failure: RemoteSignerError | undefined = down
      if (!down)
        try {
          built = await buildAttempt({ signer, chainId: t.chain_id, tx: t, nonce: latest.nonce, gas, fees: decision.fees, purpose })
          downUntil.get(chain)?.delete(t.signer)
          if (signer.kind === 'remote') remoteSigned.add(t.signer)
        } catch (err) {
          if (!(err instanceof RemoteSignerError)) throw err
          failure = err
          if (!err.refused) {
            signersDown.set(t.signer, err)
            markDown(chain, t.signer, err, passStarted + fees.bumpAfterMs * 0.8)
          }
        }
      if (!built) {
        // Its remote signer is down or said no; it is tried again on the next pass. Before, the error rolled back
        // the whole pass: while one remote signer was down no transaction of the chain, of any signer, was bumped
        // or sent again.
        unsigned.push({ id: t.id, signer: t.signer, error: failure!.message, hash: latest.hash, expired })
        if (!expired) {
          // The same bytes go out again, as for a transaction that needs no raise.
          toSend.push({ transactionId: t.id, nonce: latest.nonce, hash: latest.hash as Hex, raw: latest.raw as Hex })
          continue
        }
        // Past its validUntil, its cancel could not be signed: its own bytes must not go out again (it would
        // only execute late). Said on the transaction, once; looked at again after bumpAfterMs, not every pass.
        paced.push(t.id)
        if (t.error_code !== ERROR_CODE.EXPIRED)
          await expiredMayRunLate(
            t,
            `validUntil ${t.valid_until!.toISOString()} passed before inclusion; its cancel could not be signed yet (${failure!.message}), tried again every ${fees.bumpAfterMs} ms; meanwhile it may still execute late`,
            { action: 'expired_cancel_unsigned', error: failure!.message },
          )
        continue
      }
      if (built.hash === latest.hash) {
        // Nothing to raise (a chain whose fees are zero): the same bytes again. Storing them as a new attempt broke
        // the unique hash and rolled back every bump of the pass, for every transaction of the chain.
        toSend.push({ transactionId: t.id, nonce: latest.nonce, hash: latest.hash as Hex, raw: latest.raw as Hex })
        continue
      }
      attemptRows.push(built.row)
      toSend.push({ transactionId: t.id, nonce: latest.nonce, hash: built.hash, raw: built.raw })
      if (decision.reachedCap && t.at_fee_cap === null) atCap.push({ id: t.id, cap })
      // Raised under its cap: a cancel of a request stuck at a lower one (a cancel's gas is less, its cap higher).
      if (!decision.reachedCap && t.at_fee_cap !== null) belowCap.push(t.id)
      events.push({
        id: t.id,
        detail: JSON.stringify({
          action: expired ? 'expire' : 'bump',
          hash: built.hash,
          ...(decision.fees.type === 'eip1559'
            ? { maxFeePerGas: decision.fees.maxFeePerGas.toString(), maxPriorityFeePerGas: decision.fees.maxPriorityFeePerGas.toString() }
            : { gasPrice: decision.fees.gasPrice.toString() }),
        }),
      })
      if (expired && !cancelAtCap)
        await tx`UPDATE transactions SET error_code = ${ERROR_CODE.EXPIRED}, error_message = ${`validUntil ${t.valid_until!.toISOString()} passed before inclusion; replacing it with a zero-value self-transfer`} WHERE id = ${t.id}`
    }
    if (attemptRows.length) await tx`INSERT INTO attempts ${tx(attemptRows)}`
    bumped = attemptRows.length
    if (events.length)
      await tx`
        INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
        SELECT v.id, 'PENDING', 'PENDING', v.detail FROM unnest(${pgArray(events.map((e) => e.id))}::uuid[], ${pgArray(events.map((e) => e.detail))}::jsonb[]) AS v(id, detail)`
    if (belowCap.length) await tx`UPDATE transactions SET at_fee_cap = NULL, updated_at = now() WHERE id = ANY(${pgArray(belowCap)}::uuid[])`
    if (atCap.length) {
      await tx`UPDATE transactions SET at_fee_cap = now(), updated_at = now() WHERE id = ANY(${pgArray(atCap.map((a) => a.id))}::uuid[])`
      await tx`
        INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
        SELECT v.id, 'PENDING', 'PENDING', jsonb_build_object('action', 'at_fee_cap', 'cap', v.cap)
        FROM unnest(${pgArray(atCap.map((a) => a.id))}::uuid[], ${pgArray(atCap.map((a) => a.cap.toString()))}::text[]) AS v(id, cap)`
    }
    // On the timeline, once per attempt left standing: a signer refusing every raise (a Clef fee rule) or down for
    // long left the transaction resent at its old fees with nothing on it to say why.
    const notBumped = unsigned.filter((u) => !u.expired)
    if (notBumped.length)
      await tx`
        INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
        SELECT v.id, 'PENDING', 'PENDING', jsonb_build_object('action', 'bump_unsigned', 'hash', v.hash, 'error', v.error)
        FROM unnest(${pgArray(notBumped.map((u) => u.id))}::uuid[], ${pgArray(notBumped.map((u) => u.hash))}::text[], ${pgArray(notBumped.map((u) => u.error))}::text[]) AS v(id, hash, error)
        WHERE NOT EXISTS (SELECT 1 FROM transaction_events e WHERE e.transaction_id = v.id AND e.detail->>'action' = 'bump_unsigned' AND e.detail->>'hash' = v.hash)`
    // Pace the next check from now, even if every provider fails this time.
    await tx`UPDATE transactions SET last_sent_at = now(), updated_at = now() WHERE id = ANY(${pgArray([...toSend.map((s) => s.transactionId), ...paced])}::uuid[])`
  })
  // Seen by the signers query and the dashboard, also when all of a signer's work is PENDING. After the commit,
  // not under the pass's row locks: the signer's row may be held by its sign stage, signing slowly.
  await noteRemoteSigners(ctx, chain.chainId, new Date(passStarted), signersDown, remoteSigned).catch((err: unknown) =>
    ctx.log.warn({ err, chainId: chain.chainId }, 'could not record the state of remote signers'),
  )
  if (unsigned.length)
    ctx.log.warn({ chainId: chain.chainId, transactions: unsigned.map(({ id, signer, error }) => ({ id, signer, error })) }, 'remote signer did not sign fee bumps or cancels; tried again after bumpAfterMs')
  if (atCap.length)
    ctx.log.warn({ chainId: chain.chainId, transactions: atCap.map((a) => ({ id: a.id, capWei: a.cap.toString() })) }, 'transactions stuck at the fee cap; rebroadcasting the same bytes')
  if (bumped) ctx.metrics?.attempts.inc({ chain_id: String(chain.chainId), kind: 'bump' }, bumped)
  if (toSend.length) await broadcastAttempts(ctx, chain, toSend)
  return toSend.length
}
