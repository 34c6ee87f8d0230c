import { BaseError, type Hex } from 'viem'
import type { ChainClients } from '../chain/createChainClients.ts'
import { explainEstimateError } from '../chain/explainEstimateError.ts'
import type { ServiceContext } from '../context.ts'
import { ERROR_CODE } from '../core/errors.ts'
import { feeCapFor, initialFees, maxCostWei, meetsMarket, standsAtCap } from '../core/fees.ts'
import type { Signer } from '../signers/loadSigners.ts'
import type { TransactionRow } from '../store/transactionRow.ts'
import { buildAttempt, TRANSFER_GAS, type BuiltAttempt } from './buildAttempt.ts'
import { pgArray } from '../db/pgArray.ts'
import { estimateRowGas } from './estimateRowGas.ts'
import { SetAsideForNow } from './setAsideForNow.ts'
import { maxMoves, movesThisExecution, moveToFundedSigner, REMOTE_FAILED, type ShortRow } from './moveToFundedSigner.ts'
import { canPayTransfer } from './shortOfFunds.ts'
import { readSignerState, spendNotInBalance } from './signerState.ts'
import { RemoteSignerError } from '../signers/remoteSigner.ts'
import { adoptLostOnChainOnce, adoptLostTransactions } from '../reconcile/adoptLostTransactions.ts'

/** Rows signed per database transaction: large enough for thousands per second, small enough to hold a lock briefly. */
export const SIGN_BATCH_SIZE = 200
/** Signatures made between two turns of the event loop. */
const SIGN_CHUNK = 20
/**
 * A remote signer's calls in one batch stop being started after this: the rest go in the next batch. Its calls run
 * one at a time inside the batch's transaction, which holds the signer's nonce row and the batch's rows; 200 calls
 * to a signer taking seconds each (a KMS, a Clef that asks a human) held them for minutes, an admin's cancel of one
 * of them waiting as long, and nothing it had signed went out before the whole batch had.
 */
const REMOTE_BATCH_MS = 2_000

/** `validUntil`: the request's deadline; past it, its bytes are not sent (signWorker.ts), the bump stage cancels it. */
export type SignedAttempt = { transactionId: string; nonce: number; hash: Hex; raw: Hex; validUntil?: Date | null }
/** A batch's signed attempts; `signerFailed`: the remote signer failed during it, so the drain stops after sending them. */
export type SignedBatch = { signed: SignedAttempt[]; signerFailed: boolean }

type Plan =
  | { kind: 'sign'; row: TransactionRow; gas: bigint }
  | { kind: 'fail'; row: TransactionRow; code: string; message: string }
  /**
   * Leave QUEUED for now (e.g. not funded); the sweep comes back to it. `restartsPatience`: this wait does not count
   * toward the reason's patience (its start is moved to now).
   */
  | { kind: 'wait'; row: TransactionRow; code: string; message: string; restartsPatience?: boolean }
  /** Not looked at in full this time (no note, no nonce): the next batch takes it again. */
  | { kind: 'later'; row: TransactionRow }

/** How a request set aside for an estimate that timed out alone is told (and found again: it is then estimated alone). */
const ESTIMATE_TIMED_OUT = 'the node did not finish its gas estimate within rpc.timeoutMs'
/** Whether a request's note (its code and words) says it was set aside for a gas estimate that timed out alone. */
function isTimeoutNote(code: string | null, message: string | null): boolean {
  return code === ERROR_CODE.GAS_ESTIMATION_FAILED && (message ?? '').startsWith(ESTIMATE_TIMED_OUT)
}
/** Said of a request whose estimate timed out while no estimate went through (provider trouble: no patience runs). */
const NO_DEADLINE = 'no estimate went through, so it waits without a deadline'
/** How a request set aside because the provider failed its gas estimate is told (and found again: see putOff below). */
const ESTIMATE_PROVIDER_FAILED = 'the provider failed its gas estimate'
/** Rows of a batch whose estimates timed out together asked again one by one at once, at most. */
const ALONE_AT_ONCE = 20

/**
 * A set-aside row is looked at again after this long (each look costs an estimate and a write), growing with
 * how long it has waited (a quarter of it) up to SET_ASIDE_RETRY_MAX_MS: thousands of rows parked for an hour
 * cost a look a minute each, not one every 5 s.
 */
export const SET_ASIDE_RETRY_MS = 5_000
const SET_ASIDE_RETRY_MAX_MS = 60_000

/**
 * A QUEUED row the sign stage cannot sign yet, for `code`: it waits (set aside, no nonce spent) until the
 * chain's patience for that reason has run out since it was first set aside for it; then it fails.
 */
function waitOrFail(row: TransactionRow, code: string, message: string, patienceMs: number, now: number): Extract<Plan, { kind: 'wait' | 'fail' }> {
  const since = row.error_code === code && row.waiting_since ? row.waiting_since.getTime() : now
  const words = withoutFullStop(message)
  if (now - since >= patienceMs) return { kind: 'fail', row, code, message: `${words} (still so after ${describeMs(now - since)})` }
  return { kind: 'wait', row, code, message: `${words}; it waits until ${new Date(since + patienceMs).toISOString()}, then fails` }
}

/** A request whose validUntil has passed by `now` fails so, no nonce spent; null while it may still be sent. */
function expiredUnsent(row: TransactionRow, now: number): Extract<Plan, { kind: 'fail' }> | null {
  if (!row.valid_until || row.valid_until.getTime() > now) return null
  return { kind: 'fail', row, code: ERROR_CODE.EXPIRED, message: `validUntil ${row.valid_until.toISOString()} passed before it was sent` }
}

/** A node's or signer's words often end in a full stop: "... of the account.; it waits" read badly on the dashboard. */
function withoutFullStop(words: string): string {
  return words.replace(/[.\s]+$/, '')
}

function describeMs(ms: number): string {
  return ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`
}

/**
 * Estimates gas for queued rows, outside any lock: the network is slow and the
 * answer does not depend on the nonce we will assign. A row the node refuses
 * waits or fails on its own; only provider trouble (which would fail every row)
 * fails the batch, to be tried again.
 */
async function planRows(ctx: ServiceContext, chain: ChainClients, signer: Signer, rows: TransactionRow[]): Promise<Plan[]> {
  const now = Date.now()
  const { patience } = chain.config
  /** Whether some estimate of this batch went through: then a refusal of another row is about that row. */
  let someEstimated = false
  /**
   * An answer in words we do not know is the row's own problem only if the provider is otherwise fine: some
   * estimate of the batch went through, or it answers a plain call. A provider failing everything in unknown
   * words (a generic "Internal error") is provider trouble: the batch is tried again, no patience runs.
   */
  let providerAnswers: Promise<boolean> | undefined
  const providerIsFine = async () => {
    if (someEstimated) return true
    providerAnswers ??= chain.read.getBlockNumber({ cacheTime: 0 }).then(
      () => true,
      () => false,
    )
    return providerAnswers
  }
  /**
   * Throws, failing the batch to be tried again, when estimates of `what` went wrong and the provider answers nothing
   * else either: provider trouble, not the rows'.
   */
  const unlessProviderSilent = async (what: string, message: string) => {
    if (!(await providerIsFine())) throw new Error(`${what} and the provider does not answer eth_blockNumber: ${message}`)
  }
  /**
   * Whether the provider finishes gas estimates at all: some estimate of the batch went through, or a zero-value
   * self-transfer of the signer's, asked once, alone, gets an answer in time (a node's refusal is an answer too). A
   * request whose estimate timed out alone in its batch (a relayer sending one kind of heavy call) could not tell its
   * call from the provider before, and waited without a deadline for good. A provider slow on every contract call
   * but quick on a plain transfer (overloaded) counts as fine: such a request fails after `patience.estimateMs`
   * (10 minutes by default), saying its estimate did not finish in time, rather than wait unbounded.
   */
  let plainEstimateAnswers: Promise<boolean> | undefined
  const estimatesGoThrough = async () => {
    if (someEstimated) return true
    plainEstimateAnswers ??= estimateRowGas(chain, signer.address, { to: signer.address, data: '0x', value: '0' }, chain.estimateAlone).then(
      () => true,
      // A node's own refusal is an answer; a timeout, the provider's trouble, or words we do not know are not.
      (err) => ['reverted', 'invalid', 'insufficient_funds'].includes(explainEstimateError(err).kind),
    )
    return plainEstimateAnswers
  }
  /** Set aside for provider trouble, which does not count against its patience (its start is moved to now). */
  const waitWithoutDeadline = (row: TransactionRow, message: string): Plan => ({ kind: 'wait', row, code: ERROR_CODE.GAS_ESTIMATION_FAILED, message, restartsPatience: true })
  /** Estimated apart from the others from the start: its last look ended in an estimate that timed out alone. */
  const slowBefore = (row: TransactionRow) => isTimeoutNote(row.error_code, row.error_message)
  /** Outcomes decided once every row of the batch was planned (below). */
  type Undecided =
    /** Its estimate got no answer in time. */
    | { kind: 'timed_out'; row: TransactionRow; message: string }
    /** Its estimate reverted: final, unless it may need a request of its signer not mined yet. */
    | { kind: 'reverted'; row: TransactionRow; reason: string }
    /** The provider failed its estimate (a 5xx, a rate limit, "timed out" in its words), twice retried already. */
    | { kind: 'provider_failed'; row: TransactionRow; message: string }
  const planRow = async (row: TransactionRow, alone: boolean): Promise<Plan | Undecided> => {
    const expired = expiredUnsent(row, now)
    if (expired) return expired
    if (row.gas_limit) return { kind: 'sign', row, gas: BigInt(row.gas_limit) }
    try {
      const { estimate, gas } = await estimateRowGas(chain, signer.address, row, alone ? chain.estimateAlone : chain.estimate)
      someEstimated = true
      // The chain's policy caps gas: an estimate over it fails, a margin over it is cut back to it.
      const cap = chain.config.policy?.maxGasLimit
      if (cap !== undefined && estimate > cap)
        return { kind: 'fail', row, code: ERROR_CODE.GAS_LIMIT_TOO_HIGH, message: `estimated gas ${estimate} is over the chain's policy maxGasLimit ${cap}` }
      return { kind: 'sign', row, gas }
    } catch (err) {
      const why = explainEstimateError(err)
      if (why.kind === 'reverted') return { kind: 'reverted', row, reason: why.reason }
      if (why.kind === 'invalid') return { kind: 'fail', row, code: ERROR_CODE.GAS_ESTIMATION_FAILED, message: why.message }
      if (why.kind === 'insufficient_funds') return waitOrFail(row, ERROR_CODE.INSUFFICIENT_FUNDS, why.message, patience.fundsMs, now)
      if (why.kind === 'timed_out') return { kind: 'timed_out', row, message: why.message }
      // The provider's failure, not ours: an error that is no node's answer (a bug here) still fails the batch, logged.
      if (why.kind === 'transient' && err instanceof BaseError) return { kind: 'provider_failed', row, message: why.message }
      // A node's refusal we have no wording for, from a provider that is otherwise fine: not the batch's
      // problem. Set aside, retried, then FAILED with its words.
      if (why.kind === 'unrecognized' && (await providerIsFine()))
        return waitOrFail(row, ERROR_CODE.GAS_ESTIMATION_FAILED, `the node refused the gas estimate: ${why.message}`, patience.estimateMs, now)
      throw err
    }
  }
  const settled = <T>(results: PromiseSettledResult<T>[]): T[] => {
    const failed = results.find((p): p is PromiseRejectedResult => p.status === 'rejected')
    if (failed) throw failed.reason
    return results.map((p) => (p as PromiseFulfilledResult<T>).value)
  }
  let plans = settled(await Promise.allSettled(rows.map((row) => planRow(row, slowBefore(row)))))
  const timedOut = plans.filter((p): p is Extract<Undecided, { kind: 'timed_out' }> => p.kind === 'timed_out')
  if (timedOut.length) {
    // The batch's estimates go out in one HTTP request, and one call no node finishes in time (a heavy contract
    // call, a node forking a remote chain) made them all time out. Thrown, it failed the batch on every try: that
    // request and every later one of the signer stayed QUEUED for good, with no reason shown. Asked one by one
    // (at most ALONE_AT_ONCE, the rest on the next try), the others are signed, and the slow one waits, saying
    // why, then fails after the chain's estimate patience.
    // A row estimated alone already (slowBefore) is not asked again: its answer stands.
    const retry = timedOut.filter((p) => !slowBefore(p.row)).slice(0, ALONE_AT_ONCE)
    const answered = settled(await Promise.allSettled(retry.map((p) => planRow(p.row, true))))
    const byId = new Map(retry.map((p, i) => [p.row.id, answered[i]!]))
    // Not when the provider answers nothing else either: provider trouble, the batch is tried again.
    await unlessProviderSilent('gas estimates timed out', timedOut[0]!.message)
    const timeoutMs = chain.config.rpc.timeoutMs
    const lookedAt = (p: (typeof timedOut)[number]) => (slowBefore(p.row) ? p : byId.get(p.row.id))
    const callsOwn = timedOut.some((p) => lookedAt(p)?.kind === 'timed_out') && (await estimatesGoThrough())
    plans = plans.map((p) => {
      if (p.kind !== 'timed_out') return p
      const again = lookedAt(p)
      if (!again) return { kind: 'later', row: p.row }
      if (again.kind !== 'timed_out') return again
      const words = `${ESTIMATE_TIMED_OUT} (${timeoutMs} ms): ${withoutFullStop(again.message)}`
      // Its patience runs only while other estimates go through (estimatesGoThrough): a provider slow on every
      // estimate (its eth_blockNumber still answering) is provider trouble, and its requests wait, saying so, without
      // failing. Thrown instead, the requests behind it that carry their gasLimit waited too, for good.
      return callsOwn
        ? waitOrFail(again.row, ERROR_CODE.GAS_ESTIMATION_FAILED, words, patience.estimateMs, now)
        : waitWithoutDeadline(again.row, `${words}; ${NO_DEADLINE}`)
    })
  }
  if (plans.some((p) => p.kind === 'provider_failed')) {
    // The provider failed these estimates (a 5xx, a rate limit, "timed out" in its words), twice retried already,
    // while it answers other calls (another estimate of the batch went through, or eth_blockNumber answers). Thrown,
    // it failed the batch on every try, and a request failing so alone (a node that gives up on its heavy call)
    // held back every request of its signer behind it, with no reason shown. They wait, saying why, and are asked
    // again as set-aside rows are; provider trouble never counts against a request's patience, so without a
    // deadline. A provider that answers nothing is provider trouble: the batch is tried again, as before.
    await unlessProviderSilent('a gas estimate failed', plans.find((p) => p.kind === 'provider_failed')!.message)
    plans = plans.map((p) =>
      p.kind !== 'provider_failed'
        ? p
        : waitWithoutDeadline(p.row, `${ESTIMATE_PROVIDER_FAILED}: ${withoutFullStop(p.message)}; provider trouble does not count against its patience, so it waits without a deadline`),
    )
  }
  if (!plans.some((p) => p.kind === 'reverted')) return plans as Plan[]
  // An estimate runs against a state without the signer's requests not mined yet: a request sent right after the one
  // it needs (an approve before the transferFrom it allows, a deployment before a call to it), without a gasLimit,
  // reverted there and failed at once, and never ran. It waits while a request its signer took before it is being
  // signed in this batch (or put off for a slow estimate) or is PENDING, and fails at once when it still reverts
  // with none of those.
  const [pending] = await ctx.db.sql<{ seq: number | null }[]>`
    SELECT min(seq) AS seq FROM transactions WHERE chain_id = ${chain.chainId} AND signer = ${signer.address} AND status = 'PENDING'`
  const pendingFrom = pending?.seq == null ? Infinity : Number(pending.seq)
  // Put off too (its estimate timed out, or the provider failed it): it may be the one this row needs, and it is
  // signed later.
  const putOff = (p: (typeof plans)[number]) =>
    p.kind === 'later' || (p.kind === 'wait' && (isTimeoutNote(p.code, p.message) || p.message.startsWith(ESTIMATE_PROVIDER_FAILED)))
  const signedFrom = Math.min(...plans.filter((p) => p.kind === 'sign' || putOff(p)).map((p) => Number(p.row.seq)))
  return plans.map((p) => {
    if (p.kind !== 'reverted') return p as Plan
    if (Math.min(pendingFrom, signedFrom) < Number(p.row.seq))
      return waitOrFail(p.row, ERROR_CODE.GAS_ESTIMATION_REVERTED, `${withoutFullStop(p.reason)} while a request its signer took before it is not mined yet (it may need that one)`, patience.estimateMs, now)
    return { kind: 'fail', row: p.row, code: ERROR_CODE.GAS_ESTIMATION_REVERTED, message: p.reason }
  })
}

/**
 * Rows waiting for funds whose next look is not due yet, when the signer holds more than when the sign stage last
 * set rows aside for funds (signer_nonces.funds_seen_wei): it was funded, and they are looked at at once (still at
 * most once per SET_ASIDE_RETRY_MS each). After a long wait their next look was up to a minute away, and an
 * operator who had just topped up the wallet saw nothing move. The node is read only when such rows exist.
 */
async function wokenByFunds(ctx: ServiceContext, chain: ChainClients, signer: Signer, skip: SetAsideForNow, taken: TransactionRow[]): Promise<TransactionRow[]> {
  const { sql } = ctx.db
  const due = sql`chain_id = ${chain.chainId} AND signer = ${signer.address} AND status = 'QUEUED' AND error_code = ${ERROR_CODE.INSUFFICIENT_FUNDS}
    AND updated_at < now() - ${SET_ASIDE_RETRY_MS / 1000} * interval '1 second'
    AND id <> ALL(${pgArray([...skip, ...taken.map((r) => r.id)])}::uuid[])`
  const [seen] = await sql<{ wei: string }[]>`
    SELECT funds_seen_wei::text AS wei FROM signer_nonces
    WHERE chain_id = ${chain.chainId} AND signer = ${signer.address} AND funds_seen_wei IS NOT NULL
      AND EXISTS (SELECT 1 FROM transactions WHERE ${due})`
  if (!seen) return []
  // A failed read wakes nothing: the rows keep their schedule.
  const state = await readSignerState(chain, signer).catch(() => null)
  if (!state || state.balance <= BigInt(seen.wei)) return []
  return sql<TransactionRow[]>`SELECT * FROM transactions WHERE ${due} ORDER BY seq LIMIT ${SIGN_BATCH_SIZE}`
}

export type DrainState = { refusedUnsigned: number }

/** Appended to a remote signer's words on the requests that wait for it (the signers query takes it off again). */
export const WAITS_FOR_SIGNER = '; it waits for the signer, looked at again every few seconds'

/** A request's message while it waits for its remote signer: the signer's words, then why it waits. */
function waitsForSigner(err: RemoteSignerError): string {
  return `${withoutFullStop(err.message)}${WAITS_FOR_SIGNER}`
}

/**
 * How remoteSigner.ts words a refusal (a JSON-RPC error answer) at the start of a request's error message: its sign
 * method is eth_signTransaction, or Clef's account_signTransaction (a Clef signer's refusals were never recognized,
 * and a request it refused waited as SIGNER_UNAVAILABLE for good, never failing). Anchored: a failure whose own words
 * contain " refused: " (a proxy's "access refused: token expired") is not one.
 */
const REFUSAL_WORDS = /^signer "[^"]*": (?:eth|account)_signTransaction at \S+ refused: /

/**
 * Whether the row's last look ended in its remote signer's refusal (the sign stage's own notes: SIGNER_REFUSED,
 * or SIGNER_UNAVAILABLE in the words of a refusal), not in a set-aside without asking. Its updated_at is then
 * the time of that refusal.
 */
export function wasRefused(row: Pick<TransactionRow, 'error_code' | 'error_message'>): boolean {
  if (row.error_code === ERROR_CODE.SIGNER_REFUSED) return true
  return row.error_code === ERROR_CODE.SIGNER_UNAVAILABLE && REFUSAL_WORDS.test(row.error_message ?? '')
}

/**
 * Refusals in one drain, with nothing signed, after which a remote signer counts as down (SIGNER_UNAVAILABLE for
 * its queue, the drain stops). Below it, refused rows are set aside and the drain asks the next batch: a full
 * batch of refused requests at the head of the queue made the signer count as down, and, asked first on every
 * try, held up the requests behind them.
 */
const REFUSED_UNSIGNED_MAX = 1_000

/** Rows of a failing remote signer handed to other signers at once, at most (the rest on the next try). */
const UNAVAILABLE_MOVE_MAX = 1_000

/**
 * The remote signer failed (the batch's rows from that one on are set aside as SIGNER_UNAVAILABLE, in its
 * commit). Every other QUEUED row of the signer that the service gave it, and that it never refused, moves to a
 * signer that can pay, and the rest (named for it, refused by it, or with no signer to take them) are set aside
 * the same way, so they show why they
 * wait and are tried again on the set-aside schedule: one call to the remote signer per try, not one per
 * batch of the backlog. Before, they stayed QUEUED with no reason shown. No patience: an outage never fails one.
 * A consequence, chosen: a signer that refuses everything (a Clef account locked again) keeps every request it
 * was asked about, even those that named no signer; they wait as SIGNER_UNAVAILABLE, visible, until it signs
 * again or an admin cancels them, rather than be signed by another key after a "no".
 */
async function signerUnavailable(ctx: ServiceContext, chain: ChainClients, signer: Signer, err: RemoteSignerError): Promise<void> {
  const chainId = chain.chainId
  const { sql } = ctx.db
  ctx.log.warn({ err, chainId, signer: signer.address }, 'remote signer failed; its queued requests wait for it, or move to another signer')
  try {
    // Rows that moved as often as they may in this execution already stay (so the same head rows are not
    // picked on every try while those behind them could move). So do rows this signer refused (refused_by; also
    // checked by moveToFundedSigner): a "no" is not routed around, even once the signer counts as down.
    const others = ctx.signers.forChain(chainId).length - 1
    const movable = await sql<TransactionRow[]>`
      SELECT * FROM transactions t WHERE chain_id = ${chainId} AND signer = ${signer.address} AND status = 'QUEUED' AND NOT signer_pinned
        AND ${movesThisExecution(sql)} < ${maxMoves(others)} AND refused_by IS NULL
      ORDER BY seq LIMIT ${UNAVAILABLE_MOVE_MAX}`
    if (movable.length)
      await moveToFundedSigner(ctx, chain, signer, movable.map((row) => ({ row, gas: row.gas_limit ? BigInt(row.gas_limit) : null })), REMOTE_FAILED)
  } catch (moveErr) {
    ctx.log.warn({ err: moveErr, chainId, signer: signer.address }, 'could not move requests off a failing remote signer; they wait for it')
  }
  await sql`
    UPDATE transactions SET error_code = ${ERROR_CODE.SIGNER_UNAVAILABLE}, updated_at = now(), waiting_since = now(),
      error_message = ${waitsForSigner(err)}
    WHERE chain_id = ${chainId} AND signer = ${signer.address} AND status = 'QUEUED' AND error_code IS NULL`
}

/**
 * Signs the next batch of a signer's queued transactions: consecutive nonces
 * under the signer's row lock, attempts stored in the same commit, before any send.
 * Returns null when nothing is left to sign (besides rows in `skip`).
 */
export async function signNextBatch(
  ctx: ServiceContext,
  chain: ChainClients,
  signer: Signer,
  skip: SetAsideForNow,
  /** Kept by the drain across its batches: refusals of a remote signer since it last signed anything. */
  drain: DrainState = { refusedUnsigned: 0 },
): Promise<SignedBatch | null> {
  const { sql } = ctx.db
  const chainId = chain.chainId
  const candidates = await sql<TransactionRow[]>`
    SELECT * FROM transactions
    WHERE chain_id = ${chainId} AND signer = ${signer.address} AND status = 'QUEUED'
      ${skip.size ? sql`AND id <> ALL(${pgArray([...skip])}::uuid[])` : sql``}
      -- Rows set aside are looked at again only every few seconds: thousands of them waiting for funds must
      -- not be estimated again on every drain, ahead of the rows behind them.
      AND (waiting_since IS NULL OR updated_at < now() - LEAST(${SET_ASIDE_RETRY_MAX_MS / 1000} * interval '1 second',
                                                         GREATEST(${SET_ASIDE_RETRY_MS / 1000} * interval '1 second', (now() - waiting_since) / 4)))
    ORDER BY seq LIMIT ${SIGN_BATCH_SIZE}`
  if (candidates.length < SIGN_BATCH_SIZE) {
    const woken = await wokenByFunds(ctx, chain, signer, skip, candidates)
    if (woken.length) candidates.push(...woken.slice(0, SIGN_BATCH_SIZE - candidates.length))
    candidates.sort((a, b) => Number(a.seq) - Number(b.seq))
  }
  if (candidates.length === 0) return null

  const [plans, { market, balance, chainNonce }] = await Promise.all([planRows(ctx, chain, signer, candidates), readSignerState(chain, signer)])
  // The chain has used nonces past our record: before signing past them, any that is one of these requests
  // (this database forgot signing it: restored from a backup) is taken as its execution, not signed again.
  // Throws when a provider fails: nothing is signed past them this time. Candidates taken are
  // PENDING now, and the batch below leaves them out (it signs only rows still QUEUED, under their lock).
  await adoptLostOnChainOnce(ctx, chain)
  const [recorded] = await sql<{ next_nonce: number; updated_at: Date }[]>`
    SELECT next_nonce, updated_at FROM signer_nonces WHERE chain_id = ${chain.chainId} AND signer = ${signer.address}`
  if (recorded && chainNonce > recorded.next_nonce) await adoptLostTransactions(ctx, chain, signer.address, recorded.next_nonce, chainNonce, recorded.updated_at)
  /**
   * Each request's first fees, under its own cap (a request with much gas has a lower one: `feeCapFor`). `atCap`:
   * signed at the cap, below what the market asks now (base fee and tip): it waits for fees to fall, and is flagged
   * at once, as the bump stage would flag it after bumpAfterMs, not looking like any other PENDING one meanwhile.
   * Clipped to the cap but still over the market, it is likely mined at once: not flagged (atFeeCap and its metric
   * say "stuck").
   */
  const feesFor = (gas: bigint) => {
    const cap = feeCapFor(chain.config.fees, gas)
    const fees = initialFees(market, cap)
    return { cap, fees, atCap: standsAtCap(fees, cap) && !meetsMarket(fees, market) }
  }
  const transferFees = feesFor(TRANSFER_GAS).fees

  const short: ShortRow[] = []
  /** Signed at their fee cap, for the log once committed. */
  const signedAtCap: { id: string; capWei: string }[] = []
  /** Set when the remote signer fails during the batch. */
  let unavailable: RemoteSignerError | null = null
  /** Rows the remote signer said no to: judged after the batch's other rows were asked (below). */
  const refused: { row: TransactionRow; err: RemoteSignerError }[] = []
  const signed: SignedAttempt[] = await sql.begin(async (tx) => {
    // The lock that serializes nonce assignment for this signer across every instance: the row is
    // created on first use, and locked either way (ON CONFLICT DO UPDATE locks the row it finds).
    const [state] = await tx<{ next_nonce: number }[]>`
      INSERT INTO signer_nonces (chain_id, signer, next_nonce) VALUES (${chainId}, ${signer.address}, ${chainNonce})
      ON CONFLICT (chain_id, signer) DO UPDATE SET next_nonce = signer_nonces.next_nonce
      RETURNING next_nonce`
    // Nonces below the chain's mined count are used, by us or by someone else with this key: never hand them out.
    let nonce = Math.max(state!.next_nonce, chainNonce)
    // Another instance may have signed some of these while we estimated, or an admin cancelled and retried one
    // (QUEUED again, as a new execution): only rows still QUEUED in the execution that was planned are signed.
    // Signed from the stale row, the attempt carried the old execution, which the watcher never matched: the
    // request mined unseen, was failed as refused, and a retry ran it a second time.
    const still = await tx<{ id: string; execution: number }[]>`
      -- Still this signer's, too: the row may have been handed to another signer meanwhile (moveToFundedSigner.ts).
      SELECT id, execution FROM transactions
      WHERE id = ANY(${pgArray(candidates.map((r) => r.id))}::uuid[]) AND status = 'QUEUED' AND signer = ${signer.address} FOR UPDATE`
    const stillQueued = new Set(still.map((r) => `${r.id}:${r.execution}`))

    const attemptRows: Record<string, unknown>[] = []
    /** `cap`: set when it is signed at its fee cap (above). */
    const pendingUpdates: { id: string; nonce: number; cap: bigint | null }[] = []
    const failures: { id: string; code: string; message: string }[] = []
    /** `refused`: the signer said no to it (refused_by is set: it never moves to another signer). */
    const notes: { id: string; code: string; message: string; refused?: boolean; restartsPatience?: boolean }[] = []
    const out: SignedAttempt[] = []
    const builds: Promise<{ b: BuiltAttempt; id: string; nonce: number; validUntil: Date | null; cap: bigint | null }>[] = []
    /**
     * Seen by the accept path's signer pick (signerLoad.ts): set when a request was refused for funds and what
     * is left would not pay for a plain transfer either (one expensive request, named or not, says nothing of
     * the signer); cleared when a batch signed with no such refusal leaves enough for one, or by the sweep once
     * the signer is funded (sign/shortOfFunds.ts).
     */
    const shortOfFunds = () => {
      const canPayPlain = canPayTransfer(balance - committedWei, transferFees)
      if (sawShort && !canPayPlain) return tx`COALESCE(short_of_funds_at, now())`
      if (!sawShort && canPayPlain && attemptRows.length) return tx`NULL`
      return tx`short_of_funds_at`
    }
    /**
     * A remote signer failing (down, or refusing everything), for the signers query and the dashboard: since when
     * and its last answer; cleared once it signs. A refusal of one request while it signs others is not a failure.
     */
    const remoteFailing = () => {
      if (unavailable) return tx`remote_failing_since = COALESCE(remote_failing_since, now()), remote_error = ${unavailable.message}`
      if (builds.length > 0) return tx`remote_failing_since = NULL, remote_error = NULL`
      return tx`remote_failing_since = remote_failing_since`
    }
    /** The balance rows were set aside at, when some were: a higher one later wakes them (wokenByFunds). */
    const fundsSeen = () => (sawShort ? tx`${balance.toString()}::numeric` : tx`funds_seen_wei`)
    /** What the batch leaves on the signer's row, whether or not it signed anything. */
    const signerRow = () =>
      tx`next_nonce = ${nonce}, short_of_funds_at = ${shortOfFunds()}, funds_seen_wei = ${fundsSeen()}, ${remoteFailing()}, updated_at = now()`
    // Set aside for lack of funds: other signers may take them after the commit (those moveToFundedSigner may move).
    let sawShort = false
    const movable = (row: TransactionRow, gas: bigint | null) => {
      sawShort = true
      short.push({ row, gas })
    }
    let committedWei = await spendNotInBalance(tx, chainId, signer.address, chainNonce)
    const setAsideUnavailable = (row: TransactionRow, err: RemoteSignerError) => {
      notes.push({ id: row.id, code: ERROR_CODE.SIGNER_UNAVAILABLE, message: waitsForSigner(err), refused: err.refused })
      skip.add(row.id)
    }
    const remoteUntil = signer.kind === 'remote' ? performance.now() + REMOTE_BATCH_MS : Number.POSITIVE_INFINITY
    for (const plan of plans) {
      if (!stillQueued.has(`${plan.row.id}:${plan.row.execution}`)) continue
      // Past the remote signer's time for this batch: the next batch takes it, as one whose estimate waits (not in `skip`).
      if (builds.length > 0 && performance.now() > remoteUntil) continue
      // Its estimate timed out with the batch's, and was not asked alone yet: the next batch takes it (not in `skip`).
      if (plan.kind === 'later') continue
      if (plan.kind === 'fail') {
        failures.push({ id: plan.row.id, code: plan.code, message: plan.message })
        continue
      }
      if (plan.kind === 'wait') {
        notes.push({ id: plan.row.id, code: plan.code, message: plan.message, restartsPatience: plan.restartsPatience })
        skip.add(plan.row.id)
        if (plan.code === ERROR_CODE.INSUFFICIENT_FUNDS) movable(plan.row, null)
        continue
      }
      // Its deadline passed since the batch was planned (the estimates, the lock, a remote signer's calls before it
      // can each take seconds): failed as it would have been then, no nonce spent. It was signed and sent, and ran late.
      const expired = expiredUnsent(plan.row, Date.now())
      if (expired) {
        failures.push({ id: expired.row.id, code: expired.code, message: expired.message })
        continue
      }
      // The remote signer failed earlier in this batch: the rest waits for it (what was signed is kept).
      if (unavailable) {
        setAsideUnavailable(plan.row, unavailable)
        continue
      }
      const { cap, fees, atCap } = feesFor(plan.gas)
      const cost = maxCostWei(fees, plan.gas, BigInt(plan.row.value))
      if (committedWei + cost > balance) {
        // What it needs first (the dashboard's list shows two lines of it), then the signer's side. What is committed is
        // said too: "balance 10 ETH cannot cover 1 ETH" read as false when 9.5 ETH of it was spoken for.
        const committed = committedWei > 0n ? `, ${committedWei} wei of it for signed transactions not yet mined` : ''
        const words = `needs ${cost} wei (value and gas at its max fee), more than signer ${signer.address} can cover: balance ${balance} wei${committed}`
        const shortOf = waitOrFail(plan.row, ERROR_CODE.INSUFFICIENT_FUNDS, words, chain.config.patience.fundsMs, Date.now())
        if (shortOf.kind === 'fail') failures.push({ id: plan.row.id, code: shortOf.code, message: shortOf.message })
        else {
          notes.push({ id: plan.row.id, code: shortOf.code, message: shortOf.message })
          skip.add(plan.row.id)
          movable(plan.row, plan.gas)
        }
        continue
      }
      committedWei += cost
      // Signing is CPU work on the API's event loop (about 0.25 ms each): let waiting requests in between
      // chunks, so a batch of 200 does not hold every answer back for 50 ms.
      if (builds.length > 0 && builds.length % SIGN_CHUNK === 0) await new Promise<void>((resolve) => setImmediate(resolve))
      const at = nonce
      const build = buildAttempt({ signer, chainId, tx: plan.row, nonce: at, gas: plan.gas, fees, purpose: 'REQUEST' }).then((b) => ({
        b,
        id: plan.row.id,
        nonce: at,
        validUntil: plan.row.valid_until,
        cap: atCap ? cap : null,
      }))
      builds.push(build)
      // Handled: a failure surfaces in Promise.all below, not as an unhandled rejection during a yield.
      build.catch(() => {})
      // A remote signer (Web3Signer, Clef) gets one request at a time, as before, not 200 at once. When it fails,
      // the rows signed before it are committed, and the failures and notes of the batch with them.
      if (signer.kind === 'remote') {
        try {
          await build
        } catch (err) {
          if (!(err instanceof RemoteSignerError)) throw err
          builds.pop()
          committedWei -= cost
          // It said no to this one: the next row is asked at the same nonce (all of the batch, at most 200 calls
          // to a signer that answers). Before, the first "no" set the whole queue aside, and the same row was
          // asked first on every try: one request a Clef rule refuses held up every request of its signer for ever.
          if (err.refused) {
            refused.push({ row: plan.row, err })
            continue
          }
          unavailable = err
          setAsideUnavailable(plan.row, err)
          continue
        }
      }
      nonce++
    }
    // A "no" is about the row when the signer signs other requests: one of this batch, or one between the row's
    // last refusal and this one (the signer said no to it, signed something else, and says no again). Not one
    // since the row was set aside without being asked (an outage): the signer may have signed and been locked
    // again meanwhile. From a signer with no such evidence, it may be a signer refusing everything (an account
    // locked again, a policy gone wrong): the row waits as unavailable, with no patience, rather than fail. Once
    // found its own, a row keeps that verdict: later refusals need no fresh evidence.
    let lastSigned: Date | null | undefined
    const signedSince = async (since: Date | null): Promise<boolean> => {
      if (since === null) return false
      if (lastSigned === undefined) {
        const [a] = await tx<{ created_at: Date }[]>`
          SELECT created_at FROM attempts WHERE chain_id = ${chainId} AND signer = ${signer.address} ORDER BY nonce DESC, id DESC LIMIT 1`
        lastSigned = a?.created_at ?? null
      }
      return lastSigned !== null && lastSigned > since
    }
    if (builds.length > 0) drain.refusedUnsigned = 0
    // A refused request never moves to another signer, named or not: the signer's "no" is often the operator's
    // policy (a Clef rule, a Web3Signer policy) for that key, and another key signing it would route around it.
    for (const { row, err } of refused) {
      const lastRefusedAt = wasRefused(row) ? row.updated_at : null
      // Found its own before (refused while the signer signed others) and refused again: its patience runs on from
      // then. Waiting for fresh evidence each time held it QUEUED for ever on a signer with no other traffic.
      const itsOwn = row.error_code === ERROR_CODE.SIGNER_REFUSED || builds.length > 0 || (await signedSince(lastRefusedAt))
      if (!itsOwn) {
        setAsideUnavailable(row, err)
        if (++drain.refusedUnsigned >= REFUSED_UNSIGNED_MAX) unavailable ??= err
        continue
      }
      const verdict = waitOrFail(row, ERROR_CODE.SIGNER_REFUSED, err.message, chain.config.patience.signMs, Date.now())
      if (verdict.kind === 'fail') failures.push({ id: row.id, code: verdict.code, message: verdict.message })
      else {
        notes.push({ id: row.id, code: verdict.code, message: verdict.message, refused: true })
        skip.add(row.id)
      }
    }
    for (const { b, id, nonce: at, validUntil, cap } of await Promise.all(builds)) {
      attemptRows.push(b.row)
      pendingUpdates.push({ id, nonce: at, cap })
      out.push({ transactionId: id, nonce: at, hash: b.hash, raw: b.raw, validUntil })
    }

    if (attemptRows.length) {
      // One statement (data-modifying CTEs): the attempts, the rows to PENDING, their events and the next nonce.
      await tx`
        WITH stored AS (
          INSERT INTO attempts ${tx(attemptRows)}
        ), moved AS (
          UPDATE transactions t SET status = 'PENDING', nonce = v.nonce, error_code = NULL, error_message = NULL, waiting_since = NULL, refused_by = NULL,
            at_fee_cap = CASE WHEN v.at_cap THEN now() END, updated_at = now()
          FROM unnest(${pgArray(pendingUpdates.map((u) => u.id))}::uuid[], ${pgArray(pendingUpdates.map((u) => u.nonce))}::bigint[],
                      ${pgArray(pendingUpdates.map((u) => u.cap !== null))}::boolean[]) AS v(id, nonce, at_cap)
          WHERE t.id = v.id AND t.status = 'QUEUED'
          RETURNING t.id, t.nonce
        ), events AS (
          INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
          SELECT id, 'QUEUED', 'PENDING', jsonb_build_object('nonce', nonce) FROM moved ORDER BY nonce
        )
        UPDATE signer_nonces SET ${signerRow()} WHERE chain_id = ${chainId} AND signer = ${signer.address}`
      // After the PENDING events (a statement of its own: the order of a WITH's inserts is not defined).
      const atCap = pendingUpdates.filter((u) => u.cap !== null)
      signedAtCap.push(...atCap.map((u) => ({ id: u.id, capWei: u.cap!.toString() })))
      if (atCap.length)
        await tx`
          INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
          SELECT v.id, 'PENDING', 'PENDING', jsonb_build_object('action', 'at_fee_cap', 'cap', v.cap)
          FROM unnest(${pgArray(atCap.map((u) => u.id))}::uuid[], ${pgArray(atCap.map((u) => u.cap!.toString()))}::text[]) AS v(id, cap)`
    }
    if (failures.length) {
      await tx`
        UPDATE transactions t SET status = 'FAILED', error_code = v.code, error_message = v.message, final_at = now(), updated_at = now()
        FROM unnest(${pgArray(failures.map((f) => f.id))}::uuid[], ${pgArray(failures.map((f) => f.code))}::text[], ${pgArray(failures.map((f) => f.message))}::text[]) AS v(id, code, message)
        WHERE t.id = v.id AND t.status = 'QUEUED'`
      await tx`
        INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
        SELECT v.id, 'QUEUED', 'FAILED', jsonb_build_object('code', v.code, 'message', v.message)
        FROM unnest(${pgArray(failures.map((f) => f.id))}::uuid[], ${pgArray(failures.map((f) => f.code))}::text[], ${pgArray(failures.map((f) => f.message))}::text[]) AS v(id, code, message)`
    }
    if (notes.length) {
      // Still QUEUED, but the reason it waits is visible to the client and the dashboard.
      await tx`
        UPDATE transactions t SET error_code = v.code, error_message = v.message, updated_at = now(),
          -- The patience for a reason runs from the first time the row was set aside for it.
          waiting_since = CASE WHEN v.restarts OR t.waiting_since IS NULL OR t.error_code IS DISTINCT FROM v.code THEN now() ELSE t.waiting_since END,
          -- Kept through later notes (an outage overwrites the code and words): moveToFundedSigner checks it.
          refused_by = CASE WHEN v.refused THEN ${signer.address} ELSE t.refused_by END
        FROM unnest(${pgArray(notes.map((f) => f.id))}::uuid[], ${pgArray(notes.map((f) => f.code))}::text[], ${pgArray(notes.map((f) => f.message))}::text[],
                    ${pgArray(notes.map((f) => f.refused === true))}::boolean[], ${pgArray(notes.map((f) => f.restartsPatience === true))}::boolean[])
             AS v(id, code, message, refused, restarts)
        WHERE t.id = v.id AND t.status = 'QUEUED'`
    }
    if (!attemptRows.length)
      await tx`UPDATE signer_nonces SET ${signerRow()} WHERE chain_id = ${chainId} AND signer = ${signer.address}`
    return out
  })
  if (unavailable)
    await signerUnavailable(ctx, chain, signer, unavailable).catch((err: unknown) =>
      // The batch is committed: its attempts are sent all the same; the rest is set aside on the next try.
      ctx.log.warn({ err, chainId, signer: signer.address }, 'setting aside the requests of a failing remote signer failed'),
    )
  // Outside the lock: picking another signer reads the node. A failure leaves the rows set aside, as before.
  if (short.length)
    await moveToFundedSigner(ctx, chain, signer, short).catch((err: unknown) =>
      ctx.log.warn({ err, chainId, signer: signer.address }, 'could not move requests its signer cannot pay for; they wait for funds'),
    )
  if (ctx.metrics && signed.length) {
    ctx.metrics.attempts.inc({ chain_id: String(chainId), kind: 'first' }, signed.length)
    const created = new Map(candidates.filter((r) => r.execution === 1).map((r) => [r.id, r.created_at]))
    const now = new Date()
    for (const s of signed) ctx.metrics.observeStage(chainId, 'sign', created.get(s.transactionId), now)
  }
  if (signedAtCap.length)
    ctx.log.warn({ chainId, signer: signer.address, transactions: signedAtCap }, 'transactions signed at the fee cap; they are not raised further')
  if (signed.length || plans.some((p) => p.kind === 'fail'))
    ctx.log.debug({ chainId, signer: signer.address, signed: signed.length, failed: plans.filter((p) => p.kind === 'fail').length }, 'signed batch')
  return { signed, signerFailed: unavailable !== null }
}
