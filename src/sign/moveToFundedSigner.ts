import { ERROR_CODE } from '../core/errors.ts'
import type { ChainClients } from '../chain/createChainClients.ts'
import type { ServiceContext } from '../context.ts'
import { feeCapFor, initialFees, maxCostWei } from '../core/fees.ts'
import type { Sql } from '../db/connect.ts'
import { pgArray } from '../db/pgArray.ts'
import type { Signer } from '../signers/loadSigners.ts'
import type { TransactionRow } from '../store/transactionRow.ts'
import { readSignerState, spendNotInBalance } from './signerState.ts'
import { TRANSFER_GAS } from './buildAttempt.ts'
import { estimateRowGas } from './estimateRowGas.ts'

/** A QUEUED row its signer cannot pay for; `gas` when the sign stage already knows it. */
export type ShortRow = { row: TransactionRow; gas: bigint | null }

/** `cost`: most a request of this gas and value may cost it, at first fees under the request's own cap (feeCapFor). */
type Room = { signer: Signer; cost: (gas: bigint, value: bigint) => bigint; wei: bigint }

/** The event `e` records a move to another signer (of the execution in its detail; the caller matches that). */
const isMove = (sql: Sql) => sql`e.from_status = 'QUEUED' AND e.to_status = 'QUEUED' AND e.detail->>'action' = 'signer_changed'`

/** How many times the row `t` has moved to another signer in its current execution (its signer_changed events). */
export const movesThisExecution = (sql: Sql) => sql`(
  SELECT count(*) FROM transaction_events e
  WHERE e.transaction_id = t.id AND ${isMove(sql)} AND e.detail->>'execution' = t.execution::text)`

/** How many times a row may move to another signer in one execution, with `others` other signers on its chain. */
export const maxMoves = (others: number) => 2 * others

/** Why a row moved off a remote signer that failed to sign (signQueued.ts): it is not handed back to it. */
export const REMOTE_FAILED = 'its remote signer failed to sign'

/** Gas estimates in flight at once for rows being moved (up to a thousand rows of a failing remote signer). */
const ESTIMATES_AT_ONCE = 20

/** `fn` over `items`, at most `limit` at a time, results in order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/**
 * What a signer can still pay for: its balance, less what its unsent and unmined transactions may spend, less
 * the value and gas of what waits QUEUED for it (a row it will estimate counts a plain transfer's gas), but for
 * rows it already set aside as too dear (INSUFFICIENT_FUNDS): those are not signed before it is funded, and one
 * typo'd 100 ETH request on a 10 ETH signer kept it from taking anything for the request's whole patience. A read
 * outside its lock: a guess its own sign stage checks again, under the lock, before it spends a nonce.
 */
async function roomOf(ctx: ServiceContext, chain: ChainClients, signer: Signer): Promise<Room> {
  // Read now, not the sign stage's reuse of a read up to a few seconds old: a row handed on that read to a signer
  // drained since waited there, short, until a signer it could move to had room.
  const state = await readSignerState(chain, signer, { fresh: true })
  const caps = chain.config.fees
  const cost = (gas: bigint, value: bigint) => maxCostWei(initialFees(state.market, feeCapFor(caps, gas)), gas, value)
  // Per row, as `cost` (to within a wei per gas): gas at the max fee under the chain's cap, never over maxTxFeeWei.
  const perGas = maxCostWei(initialFees(state.market, caps.maxFeePerGasCap), 1n, 0n)
  const gasCost = caps.maxTxFeeWei === null ? ctx.db.sql`g.gas * ${perGas.toString()}::numeric` : ctx.db.sql`LEAST(g.gas * ${perGas.toString()}::numeric, ${caps.maxTxFeeWei.toString()}::numeric)`
  const [committed, [queued]] = await Promise.all([
    spendNotInBalance(ctx.db.sql, chain.chainId, signer.address, state.chainNonce),
    ctx.db.sql<{ wei: string }[]>`
      SELECT COALESCE(sum(value + ${gasCost}), 0)::text AS wei
      FROM transactions t CROSS JOIN LATERAL (SELECT COALESCE(t.gas_limit, ${TRANSFER_GAS.toString()}::numeric) AS gas) g
      WHERE chain_id = ${chain.chainId} AND signer = ${signer.address} AND status = 'QUEUED'
        AND error_code IS DISTINCT FROM ${ERROR_CODE.INSUFFICIENT_FUNDS}`,
  ])
  return { signer, cost, wei: state.balance - committed - BigInt(queued?.wei ?? '0') }
}

/**
 * Hands requests whose signer cannot pay for them to another of the chain's signers that can, when the service
 * chose the signer (the request named no `from`). Left where it was, such a request waited for funds that may
 * never come and failed INSUFFICIENT_FUNDS after the chain's patience, while the other signers sat idle.
 *
 * A row moves at most maxMoves(other signers) times per execution (twice per other signer): a guess gone wrong
 * cannot bounce it between signers for ever. It may go back to a signer it left, found able to pay now: a row
 * moved from s1 to s2, which another request then drained, used to wait on s2 for its whole patience while s1,
 * funded again, sat idle. Not back to a signer it left because its remote signer failed: that one waits to be
 * seen signing again (by the requests that named it). Its reason and patience start again on the new signer (a
 * different signer, a different wait), so it ends FAILED at the latest after the patience on each signer it was
 * given: at most (maxMoves + 1) × patience.fundsMs (three hours with two signers and the default hour), reached
 * only if every move was to a signer that had room when read and none by the time it signed.
 *
 * Only QUEUED rows move, and only from `from` (the update checks both): no nonce is spent and nothing of the
 * row's current execution was signed, so no attempt of it can be mined; any attempt of an earlier execution is
 * already known dead, which is what let it be queued again at all. The sign stage re-checks under the signer's
 * lock that a row is still its own before it signs it, so a stage that read the row before the move never signs
 * it. A target is picked by a balance read, not under its lock: if that read was too hopeful, the target's own
 * sign stage finds it short and moves the row on, or sets it aside as before.
 *
 * Never moved, whoever asks: a row that named its signer (signer_pinned), and one a remote signer refused
 * (refused_by: its "no" may be the operator's policy for that key). They are left out here, before any estimate
 * or share of a target's room, and the UPDATE checks both again against the row as it is then.
 *
 * Returns how many rows moved.
 */
export async function moveToFundedSigner(
  ctx: ServiceContext,
  chain: ChainClients,
  from: Signer,
  rows: ShortRow[],
  reason = 'the signer first chosen cannot pay for it',
): Promise<number> {
  const others = ctx.signers.forChain(chain.chainId).filter((s) => s.address !== from.address)
  const unpinned = rows.filter(({ row }) => !row.signer_pinned && row.refused_by === null)
  if (others.length === 0 || unpinned.length === 0) return 0

  // Each row's moves in this execution, and the signers it left because their remote signer failed (never handed
  // back to them). Rows that moved as often as they may stay, left out before any read, estimate or share of a
  // target's room: the UPDATE below would refuse them, and the room they took was lost to rows that could move.
  const history = await ctx.db.sql<{ id: string; moves: number; failing: string[] }[]>`
    SELECT e.transaction_id AS id, count(*)::int AS moves,
      COALESCE(array_agg(DISTINCT e.detail->>'from') FILTER (WHERE e.detail->>'reason' = ${REMOTE_FAILED}), '{}') AS failing
    FROM transaction_events e JOIN unnest(${pgArray(unpinned.map((w) => w.row.id))}::uuid[], ${pgArray(unpinned.map((w) => w.row.execution))}::int[]) AS v(id, execution)
      ON e.transaction_id = v.id AND e.detail->>'execution' = v.execution::text
    WHERE ${isMove(ctx.db.sql)}
    GROUP BY e.transaction_id`
  const past = new Map(history.map((h) => [h.id, h]))
  const short = unpinned.filter(({ row }) => (past.get(row.id)?.moves ?? 0) < maxMoves(others.length))
  if (short.length === 0) return 0

  // Not to a signer whose remote signer is failing (every instance sees it on its signer_nonces row): the row would
  // wait out its time-out there, and move again.
  const failing = new Set(
    (await ctx.db.sql<{ signer: string }[]>`
      SELECT signer FROM signer_nonces WHERE chain_id = ${chain.chainId} AND remote_failing_since IS NOT NULL`).map((r) => r.signer),
  )
  const rooms = (await Promise.all(others.filter((s) => !failing.has(s.address)).map((s) => roomOf(ctx, chain, s).catch(() => null))))
    .filter((r): r is Room => r !== null && r.wei > 0n)
    .sort((a, b) => (b.wei > a.wei ? 1 : b.wei < a.wei ? -1 : 0))
  if (rooms.length === 0) return 0

  // Rows with no gas yet (their estimate failed for lack of funds) are estimated from the roomiest signer;
  // one its node still refuses stays where it is.
  const withGas = await mapLimited(
    short,
    ESTIMATES_AT_ONCE,
    async ({ row, gas }) => {
      if (gas !== null) return { row, gas }
      if (row.gas_limit) return { row, gas: BigInt(row.gas_limit) }
      try {
        return { row, gas: (await estimateRowGas(chain, rooms[0]!.signer.address, row)).gas }
      } catch {
        return { row, gas: null }
      }
    },
  )

  const moves: { id: string; execution: number; to: string }[] = []
  for (const { row, gas } of withGas) {
    if (gas === null) continue
    const failing = past.get(row.id)?.failing
    // The roomiest first, so one signer's room is not spent on what another could take as well.
    const target = rooms.find((r) => !failing?.includes(r.signer.address) && r.cost(gas, BigInt(row.value)) <= r.wei)
    if (!target) continue
    target.wei -= target.cost(gas, BigInt(row.value))
    moves.push({ id: row.id, execution: row.execution, to: target.signer.address })
  }
  if (moves.length === 0) return 0

  const moved = await ctx.db.sql<{ id: string; signer: string }[]>`
    WITH moved AS (
      -- No reason any more: its new signer takes it at once, and a wait there starts its own patience.
      UPDATE transactions t SET signer = v.signer, error_code = NULL, error_message = NULL, waiting_since = NULL, updated_at = now()
      FROM unnest(${pgArray(moves.map((m) => m.id))}::uuid[], ${pgArray(moves.map((m) => m.execution))}::int[], ${pgArray(moves.map((m) => m.to))}::text[])
        AS v(id, execution, signer)
      WHERE t.id = v.id AND t.execution = v.execution AND t.status = 'QUEUED' AND t.signer = ${from.address} AND NOT t.signer_pinned
        AND ${movesThisExecution(ctx.db.sql)} < ${maxMoves(others.length)} AND t.refused_by IS NULL
      RETURNING t.id, t.signer, t.execution
    ), events AS (
      INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
      SELECT id, 'QUEUED', 'QUEUED', jsonb_build_object('action', 'signer_changed', 'from', ${from.address}::text, 'to', signer,
        'reason', ${reason}::text, 'execution', execution)
      FROM moved
    )
    SELECT id, signer FROM moved`
  const byTarget = new Map<string, number>()
  for (const m of moved) byTarget.set(m.signer, (byTarget.get(m.signer) ?? 0) + 1)
  for (const to of byTarget.keys()) ctx.kickSigner(chain.chainId, to)
  if (moved.length)
    ctx.log.warn(
      { chainId: chain.chainId, signer: from.address, moved: Object.fromEntries(byTarget) },
      `requests that named no signer moved to other signers: ${reason}`,
    )
  return moved.length
}
