import type { Address } from 'viem'
import type { ChainClients } from '../../chain/createChainClients.ts'
import { withTimeout } from '../../common/withTimeout.ts'
import type { Sql } from '../../db/connect.ts'
import { pgArray } from '../../db/pgArray.ts'
import { WAITS_FOR_SIGNER } from '../../sign/signQueued.ts'
import { countBySigner } from '../../store/countTransactions.ts'
import { requireRole } from '../auth.ts'
import { builder } from './builder.ts'

type SignerStatusView = {
  chainId: number
  name: string
  address: string
  kind: string
  /** Read only when `balance` or `balanceError` is asked for, and shared (BALANCE_REUSE_MS). */
  balance: () => Promise<{ wei: bigint | null; error: string | null }>
  nextNonce: number | null
  queued: number
  pending: number
  shortOfFundsSince: Date | null
  /** A remote signer failing to sign (down, or refusing everything) since when, and its last answer (signer_nonces). */
  signerFailingSince: Date | null
  signerFailure: string | null
  /** QUEUED rows set aside for its remote signer: failing (SIGNER_UNAVAILABLE) or refusing them (SIGNER_REFUSED). Read only when asked for, and shared (SIGNER_WAITS_REUSE_MS). */
  signerWaits: () => Promise<SignerWaits>
}

type SignerWaits = { unavailable: number; refused: number; lastError: string | null }

function signerWords(message: string | null): string | null {
  return message?.endsWith(WAITS_FOR_SIGNER) ? message.slice(0, -WAITS_FOR_SIGNER.length) : message
}

/** One read of the rows waiting for their remote signer serves every query for this long (dashboards poll). */
const SIGNER_WAITS_REUSE_MS = 5_000
const signerWaitReads = new WeakMap<object, { at: number; read: Promise<Map<string, SignerWaits>> }>()

/** Per chain and signer, the QUEUED rows set aside for their remote signer (a partial index holds just those). */
function sharedSignerWaits(sql: Sql, owner: object, chainIds: number[]): Promise<Map<string, SignerWaits>> {
  const hit = signerWaitReads.get(owner)
  if (hit && Date.now() - hit.at < SIGNER_WAITS_REUSE_MS) return hit.read
  const read = sql<{ chain_id: number; signer: string; unavailable: number; refused: number; last_error: string | null }[]>`
    SELECT chain_id, signer,
      count(*) FILTER (WHERE error_code = 'SIGNER_UNAVAILABLE')::int AS unavailable,
      count(*) FILTER (WHERE error_code = 'SIGNER_REFUSED')::int AS refused,
      (array_agg(error_message ORDER BY updated_at DESC) FILTER (WHERE error_code = 'SIGNER_UNAVAILABLE'))[1] AS last_error
    FROM transactions
    WHERE chain_id = ANY(${pgArray(chainIds)}::int[]) AND status = 'QUEUED' AND error_code IN ('SIGNER_UNAVAILABLE', 'SIGNER_REFUSED')
    GROUP BY chain_id, signer`.then(
    (rows) =>
      new Map(
        rows.map((r) => [
          `${r.chain_id}:${r.signer}`,
          // The signer's answer, without what the service adds to the request's message about waiting.
          { unavailable: r.unavailable, refused: r.refused, lastError: signerWords(r.last_error) },
        ]),
      ),
  )
  signerWaitReads.set(owner, { at: Date.now(), read })
  // A failed read is not reused.
  read.catch(() => signerWaitReads.get(owner)?.read === read && signerWaitReads.delete(owner))
  return read
}

/** A balance read waits at most this long: a chain whose providers are down must not hold the dashboard. */
const BALANCE_READ_MS = 2_000
/**
 * One balance read per chain and signer serves every query for this long: a reader key (or many open dashboards)
 * asking often, with aliases, must not turn into reads on the chain's providers, whose failures count against
 * their health.
 */
const BALANCE_REUSE_MS = 5_000
const balanceReads = new WeakMap<ChainClients, Map<Address, { at: number; read: Promise<{ wei: bigint | null; error: string | null }> }>>()

function sharedBalance(chain: ChainClients, address: Address): Promise<{ wei: bigint | null; error: string | null }> {
  let reads = balanceReads.get(chain)
  if (!reads) balanceReads.set(chain, (reads = new Map()))
  const key = address
  const hit = reads.get(key)
  if (hit && Date.now() - hit.at < BALANCE_REUSE_MS) return hit.read
  const read = withTimeout(chain.read.getBalance({ address, blockTag: 'latest' }), BALANCE_READ_MS, 'the balance read').then(
    (wei) => ({ wei, error: null }),
    (err: unknown) => ({ wei: null, error: chain.redact(err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err)) }),
  )
  reads.set(key, { at: Date.now(), read })
  return read
}

const SignerStatusType = builder.objectRef<SignerStatusView>('SignerStatus').implement({
  description: 'A signer of a chain, as the service sees it now. Its key is never shown.',
  fields: (t) => ({
    chainId: t.exposeInt('chainId'),
    name: t.exposeString('name', { description: 'Its name in the config' }),
    address: t.field({ type: 'Address', resolve: (s) => s.address }),
    kind: t.exposeString('kind', { description: 'privateKey, keystore or remote' }),
    balance: t.field({
      type: 'BigInt',
      nullable: true,
      description: 'Wei at the latest block, read at most every few seconds; null when the chain could not be read',
      resolve: async (s) => (await s.balance()).wei,
    }),
    balanceError: t.string({ nullable: true, description: 'Why the balance could not be read', resolve: async (s) => (await s.balance()).error }),
    nextNonce: t.field({
      type: 'BigInt',
      nullable: true,
      description:
        "The lowest nonce the service may assign next (it also never assigns one below the chain's count for the signer); null until the sign stage first worked for the signer",
      resolve: (s) => s.nextNonce,
    }),
    queued: t.exposeInt('queued', { description: 'Its QUEUED transactions' }),
    pending: t.exposeInt('pending', { description: 'Its PENDING transactions' }),
    shortOfFundsSince: t.field({
      type: 'DateTime',
      nullable: true,
      description:
        'Since when the sign stage has found it unable to pay for a request (and for a plain transfer): requests that name no signer go to other signers, and those it was given move to them. Fund it. Cleared once it can pay again.',
      resolve: (s) => s.shortOfFundsSince,
    }),
    waitingForSigner: t.int({
      description: 'Its QUEUED transactions waiting because its remote signer fails to sign (SIGNER_UNAVAILABLE: down, or refusing everything); read at most every few seconds',
      resolve: async (s) => (await s.signerWaits()).unavailable,
    }),
    refusedBySigner: t.int({
      description: 'Its QUEUED transactions its remote signer refused while it signs others (SIGNER_REFUSED): each fails after patience.signMs',
      resolve: async (s) => (await s.signerWaits()).refused,
    }),
    signerFailingSince: t.field({
      type: 'DateTime',
      nullable: true,
      description:
        'For a remote signer (Web3Signer, Clef) with QUEUED or PENDING work: since when the sign stage (or the bump stage, for a failure other than a refusal) has found it failing to sign (down, or refusing everything; not a refusal of one request while it signs others), until one of them gets a signature from it. Its requests wait, QUEUED (SIGNER_UNAVAILABLE) or PENDING (sent again as signed, without fee bumps).',
      resolve: (s) => s.signerFailingSince,
    }),
    signerError: t.string({
      nullable: true,
      description: 'What the remote signer last answered when it failed to sign, while signerFailingSince is set (else from a QUEUED request still waiting as SIGNER_UNAVAILABLE); null otherwise',
      resolve: async (s) => s.signerFailure ?? (await s.signerWaits()).lastError,
    }),
  }),
})

builder.queryField('signers', (t) =>
  t.field({
    type: [SignerStatusType],
    description: 'Every signer of every chain (of one chain, with chainId), in config order: balance, next nonce, backlog, and whether it is short of funds',
    args: { chainId: t.arg.int() },
    resolve: async (_, { chainId }, ctx) => {
      requireRole(ctx.principal, 'reader')
      const { sql } = ctx.service.db
      const chains = [...ctx.service.chains.values()].filter((c) => chainId == null || c.chainId === chainId)
      const ids = chains.map((c) => c.chainId)
      const nonceRows = ids.length
        ? await sql<{ chain_id: number; signer: string; next_nonce: number; short_of_funds_at: Date | null; remote_failing_since: Date | null; remote_error: string | null }[]>`
            SELECT chain_id, signer, next_nonce, short_of_funds_at, remote_failing_since, remote_error FROM signer_nonces WHERE chain_id = ANY(${pgArray(ids)}::int[])`
        : []
      const nonces = new Map(nonceRows.map((r) => [`${r.chain_id}:${r.signer}`, r]))
      // Every configured chain's, whatever this query asks for: the read is shared by the queries that follow.
      const waits = () => sharedSignerWaits(sql, ctx.service.chains, [...ctx.service.chains.keys()])
      const perChain = await Promise.all(
        chains.map(async (chain) => {
          const [queued, pending] = await Promise.all([countBySigner(sql, chain.chainId, ['QUEUED']), countBySigner(sql, chain.chainId, ['PENDING'])])
          return ctx.service.signers.forChain(chain.chainId).map((s): SignerStatusView => {
            const n = nonces.get(`${chain.chainId}:${s.address}`)
            const queuedHere = queued.get(s.address) ?? 0
            const pendingHere = pending.get(s.address) ?? 0
            // Only while it has work: a signer that failed and then had nothing left to sign (its requests moved
            // away, or mined as first signed) is never asked again, so nothing would clear it.
            const failing = s.kind === 'remote' && n?.remote_failing_since != null && queuedHere + pendingHere > 0
            return {
              chainId: chain.chainId,
              name: s.name,
              address: s.address,
              kind: s.kind,
              balance: () => sharedBalance(chain, s.address),
              nextNonce: n?.next_nonce ?? null,
              queued: queuedHere,
              pending: pendingHere,
              shortOfFundsSince: n?.short_of_funds_at ?? null,
              signerFailingSince: failing ? n!.remote_failing_since : null,
              signerFailure: failing ? (n!.remote_error ?? null) : null,
              signerWaits: async () => (await waits()).get(`${chain.chainId}:${s.address}`) ?? { unavailable: 0, refused: 0, lastError: null },
            }
          })
        }),
      )
      return perChain.flat()
    },
  }),
)
