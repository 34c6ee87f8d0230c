import { parseAddress } from '../../accept/parseFields.ts'
import { currencySymbol } from '../../chain/currencySymbol.ts'
import type { ChainConfig } from '../../config/schema.ts'
import type { TxStatus } from '../../core/txStatus.ts'
import { countTransactionsByStatus } from '../../store/countTransactions.ts'
import { requireRole, type Principal } from '../auth.ts'
import { builder } from './builder.ts'
// A cycle with schema.ts, safe because Pothos reads these only inside field thunks, when the schema is built.
import { TransactionStatus } from './schema.ts'

const ViewerType = builder.objectRef<Principal>('Viewer').implement({
  description: 'Who is asking: the API key in use',
  fields: (t) => ({
    name: t.exposeString('name', { description: "The API key's name" }),
    role: t.exposeString('role', { description: 'reader, submitter or admin' }),
  }),
})

const ChainType = builder.objectRef<ChainConfig>('Chain').implement({
  description: 'A configured chain',
  fields: (t) => ({
    chainId: t.exposeInt('chainId'),
    name: t.exposeString('name'),
    currencySymbol: t.string({ description: 'The native currency amounts are in (value, balance): POL, BNB, ETH', resolve: (c) => currencySymbol(c) }),
    confirmations: t.exposeInt('confirmations', { description: 'Blocks (including the one holding it) before a transaction is CONFIRMED' }),
    explorerUrl: t.string({
      nullable: true,
      description: 'Block explorer base URL: transactions at {explorerUrl}/tx/{hash}, addresses at {explorerUrl}/address/{address}',
      resolve: (c) => (c.explorerUrl ? c.explorerUrl.replace(/\/+$/, '') : null),
    }),
  }),
})

const StatusCountType = builder.objectRef<{ status: TxStatus; count: number }>('StatusCount').implement({
  fields: (t) => ({
    status: t.field({ type: TransactionStatus, resolve: (c) => c.status }),
    count: t.exposeInt('count'),
  }),
})

builder.queryField('viewer', (t) =>
  t.field({
    type: ViewerType,
    description: 'The API key making this request',
    resolve: (_, __, ctx) => {
      requireRole(ctx.principal, 'reader')
      return ctx.principal
    },
  }),
)

builder.queryField('chains', (t) =>
  t.field({
    type: [ChainType],
    description: 'The configured chains, in config order',
    resolve: (_, __, ctx) => {
      requireRole(ctx.principal, 'reader')
      return ctx.service.config.chains
    },
  }),
)

builder.queryField('transactionCounts', (t) =>
  t.field({
    type: [StatusCountType],
    description: 'How many transactions are in each status (every status, zeros included), optionally of one chain and/or one signer',
    args: { chainId: t.arg.int(), from: t.arg({ type: 'Address' }) },
    resolve: async (_, args, ctx) => {
      requireRole(ctx.principal, 'reader')
      return countTransactionsByStatus(ctx.service.db.sql, { chainId: args.chainId, signer: args.from ? parseAddress(args.from, 'from') : null })
    },
  }),
)
