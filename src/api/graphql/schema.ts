import { lexicographicSortSchema, type GraphQLSchema } from 'graphql'
import { parseAddress, parseIdPrefix, parseInteger, parseTransactionId } from '../../accept/parseFields.ts'
import { acceptTransaction } from '../../accept/acceptTransaction.ts'
import { cancelTransaction } from '../../admin/cancelTransaction.ts'
import { retryTransaction } from '../../admin/retryTransaction.ts'
import { validateBroadcastRequest } from '../../accept/validateBroadcastRequest.ts'
import { ERROR_CODE, InputError } from '../../core/errors.ts'
import { chargeData } from './createYoga.ts'
import { TX_STATUSES, type TxStatus } from '../../core/txStatus.ts'
import { confirmationsOf } from '../../core/confirmations.ts'
import { getTransaction, getTransactionByHash, getTransactionsInIdRange, listTransactions } from '../../store/readTransactions.ts'
import type { AttemptView, EventRow, ListedTransactionRow, ProviderAnswer, TransactionRow } from '../../store/transactionRow.ts'
import { requireRole } from '../auth.ts'
import { builder } from './builder.ts'
import { checkEverySubmission, partlyStored, refuseOverBurst, submissionFields } from './submissions.ts'
import './scalars.ts'
import './subscriptions.ts'
import './providersQuery.ts'
import './signersQuery.ts'
import './dashboardQueries.ts'

export const TransactionStatus = builder.enumType('TransactionStatus', { values: TX_STATUSES })

const ProviderAnswerType = builder.objectRef<ProviderAnswer>('ProviderAnswer').implement({
  description: "One provider's answer to one broadcast of an attempt.",
  fields: (t) => ({
    name: t.exposeString('name'),
    outcome: t.exposeString('outcome', { description: 'sent, nonce_too_low, replacement_underpriced, fee_too_low, insufficient_funds, invalid, provider_error or unknown' }),
    error: t.exposeString('error', { nullable: true }),
    at: t.field({ type: 'DateTime', resolve: (p) => p.at }),
  }),
})

const AttemptType = builder.objectRef<AttemptView>('Attempt').implement({
  description: 'One signed version of a transaction. Stored before it is ever sent; rebroadcasts send these same bytes.',
  fields: (t) => ({
    hash: t.field({ type: 'Hex', resolve: (a) => a.hash }),
    nonce: t.field({ type: 'BigInt', resolve: (a) => a.nonce }),
    gasLimit: t.field({ type: 'BigInt', resolve: (a) => a.gas_limit }),
    maxFeePerGas: t.field({ type: 'BigInt', nullable: true, resolve: (a) => a.max_fee_per_gas }),
    maxPriorityFeePerGas: t.field({ type: 'BigInt', nullable: true, resolve: (a) => a.max_priority_fee_per_gas }),
    gasPrice: t.field({ type: 'BigInt', nullable: true, resolve: (a) => a.gas_price }),
    status: t.exposeString('status', { description: 'SIGNED (stored, not yet accepted by a provider), SENT, MINED, REPLACED or REJECTED' }),
    receiptStatus: t.exposeString('receipt_status', {
      nullable: true,
      description: "For a MINED attempt, its receipt's status: success, or reverted (mined, the call failed; its fee was paid)",
    }),
    execution: t.exposeInt('execution'),
    purpose: t.exposeString('purpose', { description: 'REQUEST (the call as asked) or CANCEL (a zero-value self-transfer at the same nonce)' }),
    createdAt: t.field({ type: 'DateTime', resolve: (a) => a.created_at }),
    sentAt: t.field({ type: 'DateTime', nullable: true, resolve: (a) => a.sent_at }),
    providers: t.field({ type: [ProviderAnswerType], resolve: (a) => a.providers }),
  }),
})

const EventType = builder.objectRef<EventRow>('TransactionEvent').implement({
  description: 'A status change: the timeline.',
  fields: (t) => ({
    fromStatus: t.field({ type: TransactionStatus, nullable: true, resolve: (e) => e.from_status }),
    toStatus: t.field({ type: TransactionStatus, resolve: (e) => e.to_status }),
    actor: t.exposeString('actor'),
    detail: t.string({ nullable: true, description: 'JSON', resolve: (e) => (e.detail ? JSON.stringify(e.detail) : null) }),
    at: t.field({ type: 'DateTime', resolve: (e) => e.at }),
  }),
})

const TransactionErrorType = builder.objectRef<{ code: string; message: string }>('TransactionError').implement({
  fields: (t) => ({ code: t.exposeString('code'), message: t.exposeString('message') }),
})

export const TransactionType = builder.objectRef<TransactionRow | ListedTransactionRow>('Transaction').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    status: t.field({ type: TransactionStatus, resolve: (r) => r.status }),
    chainId: t.exposeInt('chain_id'),
    from: t.field({ type: 'Address', resolve: (r) => r.signer }),
    to: t.field({ type: 'Address', nullable: true, resolve: (r) => r.to }),
    data: t.field({
      type: 'Hex',
      // Lists and the change feed leave long calldata out: read now (within the request's budget), if still there.
      resolve: async (r, _, ctx) => {
        const data = r.data ?? (await ctx.loaders.data.load(r.id))
        if (data === null) throw new InputError(ERROR_CODE.NOT_FOUND, `Transaction ${r.id} is gone (retention deleted it)`, 'id', 404)
        // Each value written into the answer counts, short ones and one asked for under several aliases too: the
        // loader reads a row once however many times the answer repeats it.
        chargeData(ctx.loaders.dataRead, data.length)
        return data
      },
    }),
    value: t.field({ type: 'BigInt', resolve: (r) => r.value }),
    nonce: t.field({ type: 'BigInt', nullable: true, resolve: (r) => r.nonce }),
    gasLimit: t.field({
      type: 'BigInt',
      nullable: true,
      description: 'As requested, else the gas limit of the latest attempt',
      resolve: async (r, _, ctx) => r.gas_limit ?? (await ctx.loaders.attempts.load(r.id)).at(-1)?.gas_limit ?? null,
    }),
    hash: t.field({
      type: 'Hex',
      nullable: true,
      description: 'The attempt that mined, else the latest',
      resolve: async (r, _, ctx) => r.mined_hash ?? (await ctx.loaders.attempts.load(r.id)).at(-1)?.hash ?? null,
    }),
    attempts: t.field({ type: [AttemptType], resolve: (r, _, ctx) => ctx.loaders.attempts.load(r.id) }),
    events: t.field({ type: [EventType], resolve: (r, _, ctx) => ctx.loaders.events.load(r.id) }),
    blockNumber: t.field({ type: 'BigInt', nullable: true, resolve: (r) => r.block_number }),
    blockHash: t.field({ type: 'Hex', nullable: true, resolve: (r) => r.block_hash }),
    confirmations: t.int({
      nullable: true,
      description:
        "Blocks on top of (and including) the one holding it, as last seen by the chain's watcher (at most the chain's confirmation depth); null until included",
      resolve: async (r, _, ctx) => {
        const depth = ctx.service.chains.get(r.chain_id)?.config.confirmations ?? 1
        const head = r.status === 'INCLUDED' ? await ctx.loaders.scannedHeads.load(r.chain_id) : null
        return confirmationsOf(r, head, depth)
      },
    }),
    receiptStatus: t.exposeString('receipt_status', {
      nullable: true,
      description: "Its receipt's status once mined: success, or reverted. Known while INCLUDED too, before the confirmation depth makes it REVERTED",
    }),
    revertReason: t.exposeString('revert_reason', { nullable: true, description: 'Why the call reverted, where it could be decoded' }),
    gasUsed: t.field({ type: 'BigInt', nullable: true, resolve: (r) => r.gas_used }),
    effectiveGasPrice: t.field({ type: 'BigInt', nullable: true, resolve: (r) => r.effective_gas_price }),
    contractAddress: t.field({
      type: 'Address',
      nullable: true,
      description: 'The contract a deployment (a transaction without `to`) created, from its receipt',
      resolve: (r) => r.contract_address,
    }),
    execution: t.exposeInt('execution', { description: '1, plus one for each retry or re-sign at a new nonce' }),
    kind: t.exposeString('kind', { description: 'REQUEST (a client\'s) or FILLER (a zero-value self-transfer the service sent to fill a nonce hole)' }),
    idempotencyKey: t.exposeString('idempotency_key', { nullable: true }),
    validUntil: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.valid_until }),
    atFeeCap: t.boolean({ description: "True while fee bumping is stopped at the fee cap: the chain's maxFeePerGasCap, or maxTxFeeWei over the gas limit", resolve: (r) => r.at_fee_cap !== null }),
    error: t.field({
      type: TransactionErrorType,
      nullable: true,
      description: 'Why it failed, or why it is waiting',
      resolve: (r) => (r.error_code ? { code: r.error_code, message: r.error_message ?? '' } : null),
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (r) => r.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (r) => r.updated_at }),
    firstSentAt: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.first_sent_at }),
    includedAt: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.included_at }),
    finalAt: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.final_at }),
  }),
})

const BroadcastTransactionInput = builder.inputType('BroadcastTransactionInput', {
  fields: (t) => ({
    chainId: t.int({ description: 'May be left out when one chain is configured' }),
    to: t.field({ type: 'Address', description: 'Leave out to create a contract from data' }),
    data: t.field({ type: 'Hex' }),
    value: t.field({ type: 'BigInt', description: 'Wei' }),
    gasLimit: t.field({ type: 'BigInt', description: 'Leave out to estimate (with a margin)' }),
    idempotencyKey: t.string({
      description: "A retry with the same key (from the same API key's name) returns the same transaction; without one, a retry is a second transaction",
    }),
    validUntil: t.field({
      type: 'DateTime',
      description: 'Not broadcast by then: FAILED with EXPIRED. Sent but not mined by then: replaced by a zero-value self-transfer, CANCELLED with EXPIRED',
    }),
    from: t.field({
      type: 'Address',
      description: "The signer to send from (one of the chain's signers); left out: the least loaded of the chain's signers that can pay for it",
    }),
  }),
})

function decodeCursor(cursor: string): number {
  const m = /^seq:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString())
  // Our cursors are row sequence numbers (safe integers); anything longer was not made by this API.
  if (!m) throw new InputError(ERROR_CODE.INVALID_INPUT, 'after: not a cursor from this API', 'after')
  return Number(m[1])
}
const encodeCursor = (seq: number) => Buffer.from(`seq:${seq}`).toString('base64url')

builder.queryType({
  fields: (t) => ({
    transaction: t.field({
      type: TransactionType,
      nullable: true,
      args: { id: t.arg.id({ required: true }) },
      resolve: async (_, { id }, ctx) => {
        requireRole(ctx.principal, 'reader')
        return getTransaction(ctx.service.db.sql, parseTransactionId(String(id)))
      },
    }),
    transactionByHash: t.field({
      type: TransactionType,
      nullable: true,
      description: 'By the hash of any of its attempts',
      args: { hash: t.arg({ type: 'Hex', required: true }) },
      resolve: async (_, { hash }, ctx) => {
        requireRole(ctx.principal, 'reader')
        if (hash.length !== 66) throw new InputError(ERROR_CODE.INVALID_HEX, 'hash: expected 32 bytes', 'hash')
        return getTransactionByHash(ctx.service.db.sql, hash)
      },
    }),
    transactionsByIdPrefix: t.field({
      type: [TransactionType],
      description: 'Transactions whose id starts with `prefix` (at least its first 8 hex digits, as the dashboard shows ids; dashes optional), at most 10',
      args: { prefix: t.arg.string({ required: true }) },
      resolve: async (_, { prefix }, ctx) => {
        requireRole(ctx.principal, 'reader')
        return getTransactionsInIdRange(ctx.service.db.sql, parseIdPrefix(prefix), 10)
      },
    }),
    transactions: t.connection(
      {
        type: TransactionType,
        description: 'Newest first; first: at most 500 (default 50); forward only (last/before are refused)',
        args: {
          status: t.arg({ type: [TransactionStatus] }),
          chainId: t.arg.int(),
          from: t.arg({ type: 'Address' }),
        },
        resolve: async (_, args, ctx) => {
          requireRole(ctx.principal, 'reader')
          if (args.last != null || args.before != null)
            throw new InputError(ERROR_CODE.INVALID_INPUT, 'last/before: only forward pagination (first/after) is supported', args.last != null ? 'last' : 'before')
          const first = args.first == null ? 50 : parseInteger(args.first, 'first', { min: 1, max: 500 })
          // An empty cursor is refused, not read as the first page (a paging loop would read page 1 for ever).
          const beforeSeq = args.after != null ? decodeCursor(args.after) : null
          const rows = await listTransactions(
            ctx.service.db.sql,
            { statuses: args.status as TxStatus[] | null, chainId: args.chainId, signer: args.from ? parseAddress(args.from, 'from') : null },
            first + 1,
            beforeSeq,
          )
          const page = rows.slice(0, first)
          return {
            edges: page.map((node) => ({ node, cursor: encodeCursor(node.seq) })),
            pageInfo: {
              hasNextPage: rows.length > first,
              hasPreviousPage: beforeSeq !== null,
              startCursor: page[0] ? encodeCursor(page[0].seq) : null,
              endCursor: page.at(-1) ? encodeCursor(page.at(-1)!.seq) : null,
            },
          }
        },
      },
      // DESIGN's names for the page types (Pothos's default was QueryTransactionsConnection / ...Edge).
      { name: 'TransactionConnection' },
      { name: 'TransactionEdge' },
    ),
  }),
})

builder.mutationType({
  fields: (t) => ({
    retryTransaction: t.field({
      type: TransactionType,
      description: 'Admin: a FAILED or REVERTED transaction goes back to QUEUED as a new execution; its history stays',
      args: {
        id: t.arg.id({ required: true }),
        execution: t.arg.int({
          description:
            'The execution the admin saw end (the `execution` field). Given, a retry sent again (its answer lost) or made by a second admin after the first is answered with the transaction as it is, not a third execution',
        }),
      },
      resolve: async (_, { id, execution }, ctx) => {
        requireRole(ctx.principal, 'admin')
        if (execution != null && execution < 1) throw new InputError(ERROR_CODE.INVALID_INPUT, 'execution starts at 1', 'execution', 400)
        return retryTransaction(ctx.service, parseTransactionId(String(id)), ctx.principal.name, execution ?? undefined)
      },
    }),
    cancelTransaction: t.field({
      type: TransactionType,
      description:
        'Admin: QUEUED → FAILED (code CANCELLED); PENDING → a zero-value self-transfer replaces it at the same nonce, and it ends CANCELLED only if that replacement mines',
      args: { id: t.arg.id({ required: true }) },
      resolve: async (_, { id }, ctx) => {
        requireRole(ctx.principal, 'admin')
        return cancelTransaction(ctx.service, parseTransactionId(String(id)), ctx.principal.name)
      },
    }),
    broadcastTransaction: t.field({
      type: TransactionType,
      description: 'Stores the request durably and returns at once; signing and sending happen in the background',
      args: { input: t.arg({ type: BroadcastTransactionInput, required: true }) },
      resolve: async (_, { input }, ctx, info) => {
        requireRole(ctx.principal, 'submitter')
        // Several in one request (aliases): all of them at the first, before anything is stored (submissions.ts). Each
        // past the first takes a rate token of its own (one request carried up to 16 submissions for one token), and
        // every input is checked.
        if (!ctx.submissions) {
          const fields = submissionFields(info)
          if (fields.length > 1) {
            if (ctx.takeToken) refuseOverBurst(fields.length, ctx.service.config.limits.burst)
            ctx.takeToken?.(fields.length - 1)
            await checkEverySubmission(ctx, info, fields)
          }
        }
        ctx.submissions = (ctx.submissions ?? 0) + 1
        const stored = (ctx.stored ??= [])
        try {
          const req = validateBroadcastRequest(input, ctx.service.config)
          const { transaction } = await acceptTransaction(ctx.service, req, ctx.principal.name)
          stored.push({ field: String(info.path.key), id: transaction.id })
          return transaction
        } catch (err) {
          throw stored.length ? partlyStored(ctx, err, stored) : err
        }
      },
    }),
  }),
})

export function buildSchema(): GraphQLSchema {
  return lexicographicSortSchema(builder.toSchema())
}
