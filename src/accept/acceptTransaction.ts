import type { ServiceContext } from '../context.ts'
import { ERROR_CODE, InputError } from '../core/errors.ts'
import { TooManyRequestsError } from '../api/rateLimit.ts'
import type { Reservation } from '../api/inFlightLimit.ts'
import { createAcceptBatcher, idempotencyConflict, sameRequest, type AcceptBatcher } from './acceptBatcher.ts'
import { createSignerLoad, type SignerLoad } from './signerLoad.ts'
import type { TransactionRow } from '../store/transactionRow.ts'
import { validUntilPassed, type BroadcastRequest, type RefusedUnlessStored } from './validateBroadcastRequest.ts'
import { checkChainPolicy } from './checkChainPolicy.ts'

export type AcceptResult = { transaction: TransactionRow; created: boolean }

/** Round-robin position per chain, so equal backlogs still take turns. */
const nextSignerIndex = new Map<number, number>()
const signerLoads = new WeakMap<ServiceContext, SignerLoad>()

/** The signer the request names in `from`, else the chain's least loaded signer (signerLoad.ts). */
export async function pickSigner(ctx: ServiceContext, chainId: number, from: string | null): Promise<string> {
  knownSigner(ctx, chainId, from)
  if (from !== null) return ctx.signers.get(chainId, from)!.address
  const signers = ctx.signers.forChain(chainId)
  if (signers.length === 1) return signers[0]!.address
  const i = nextSignerIndex.get(chainId) ?? 0
  nextSignerIndex.set(chainId, (i + 1) % signers.length)
  const order = signers.map((_, k) => signers[(i + k) % signers.length]!.address)
  let load = signerLoads.get(ctx)
  if (!load) signerLoads.set(ctx, (load = createSignerLoad(ctx.db.sql)))
  return load.pick(chainId, order)
}

/** The request a key stored under an idempotency key, if any (none without a key). */
async function storedWithKey(ctx: ServiceContext, apiKeyName: string, idempotencyKey: string | null): Promise<TransactionRow | undefined> {
  if (idempotencyKey === null) return undefined
  const [row] = await ctx.db.sql<TransactionRow[]>`SELECT * FROM transactions WHERE api_key_name = ${apiKeyName} AND idempotency_key = ${idempotencyKey}`
  return row
}

/**
 * The checks of a request that depend on the time or the config (its deadline, the chain's policy, its signers),
 * made before anything of it is stored. A request with an idempotency key that one of them refuses, stored before
 * (its answer lost; the deadline passed or the config changed since), gets that transaction, as any retry does:
 * told "in the past", VALUE_TOO_HIGH or UNKNOWN_SIGNER, its client took it for never stored, though it may run.
 * Returns that transaction, or undefined when the request passes.
 */
export async function checkBeforeStoring(ctx: ServiceContext, req: BroadcastRequest | RefusedUnlessStored, apiKeyName: string): Promise<TransactionRow | undefined> {
  try {
    if ('refusal' in req) throw req.refusal
    if (req.validUntil && req.validUntil.getTime() <= Date.now()) throw validUntilPassed()
    checkChainPolicy(
      req,
      ctx.config.chains.find((c) => c.chainId === req.chainId),
    )
    knownSigner(ctx, req.chainId, req.from)
    return undefined
  } catch (err) {
    if (!(err instanceof InputError)) throw err
    const prior = await storedWithKey(ctx, apiKeyName, req.idempotencyKey)
    if (!prior) throw err
    if (!sameRequest(prior, req)) throw idempotencyConflict(prior)
    return prior
  }
}

/** Throws unless the signer a request names serves its chain, or, naming none, the chain has a signer. */
function knownSigner(ctx: ServiceContext, chainId: number, from: string | null): void {
  const signers = ctx.signers.forChain(chainId)
  if (from !== null && !ctx.signers.get(chainId, from))
    throw new InputError(
      ERROR_CODE.UNKNOWN_SIGNER,
      `from: ${from} is not a signer of chain ${chainId}; configured: ${signers.map((s) => s.address).join(', ') || 'none'}`,
      'from',
    )
  if (signers.length === 0) throw new InputError(ERROR_CODE.NO_SIGNER, `chainId: no signer is configured for chain ${chainId}`, 'chainId')
}

/** One group-commit batcher per running service. */
const batchers = new WeakMap<ServiceContext, AcceptBatcher>()
function batcherFor(ctx: ServiceContext): AcceptBatcher {
  let b = batchers.get(ctx)
  if (!b) batchers.set(ctx, (b = createAcceptBatcher(ctx)))
  return b
}

/**
 * The request path: insert the row, its first event and the signer's sign job in
 * one Postgres transaction (shared with the requests that arrive meanwhile; see
 * acceptBatcher.ts). Success is reported only after the commit, so an accepted
 * request survives any crash that follows.
 */
export async function acceptTransaction(ctx: ServiceContext, req: BroadcastRequest | RefusedUnlessStored, apiKeyName: string): Promise<AcceptResult> {
  const prior = await checkBeforeStoring(ctx, req, apiKeyName)
  if (prior) return { transaction: prior, created: false }
  // Refused unless stored before: checkBeforeStoring answered with the stored one, or threw.
  if ('refusal' in req) throw req.refusal
  const signer = await pickSigner(ctx, req.chainId, req.from)
  const started = new Date()
  // The key's cap on unfinished transactions (429); config limits.maxInFlightPerKey. A client retrying a request
  // it already made (same idempotency key) adds nothing in flight: it gets that transaction, as at any other time.
  let place: Reservation | undefined
  try {
    place = await ctx.inFlight?.reserve(apiKeyName)
  } catch (err) {
    if (!(err instanceof TooManyRequestsError) || !(await storedWithKey(ctx, apiKeyName, req.idempotencyKey))) throw err
  }
  let result: AcceptResult
  try {
    result = await batcherFor(ctx).accept({ req, signer, apiKeyName })
  } catch (err) {
    place?.giveBack()
    throw err
  }
  // The batcher has already woken the sign stage for this signer. A retry of a stored request takes no place.
  if (result.created) place?.stored()
  else place?.giveBack()
  ctx.metrics?.accepted.inc({ chain_id: String(req.chainId), outcome: result.created ? 'created' : 'duplicate' })
  ctx.metrics?.observeStage(req.chainId, 'accept', started, new Date())
  return result
}
