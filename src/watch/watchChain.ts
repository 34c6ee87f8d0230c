import { BlockNotFoundError, getAddress, type Address, type Hash, type Hex, type TransactionReceipt } from 'viem'
import { replayRevert } from '../chain/replayRevert.ts'
import { broadcastAttempts } from '../broadcast/broadcastAttempts.ts'
import type { ChainClients } from '../chain/createChainClients.ts'
import type { ServiceContext } from '../context.ts'
import { startLoop } from '../common/startLoop.ts'
import { TimedOutError, withTimeout } from '../common/withTimeout.ts'
import { pgArray } from '../db/pgArray.ts'
import { clearMinedColumns } from '../store/minedColumns.ts'
import { reopenMinedMany, type MinedRow } from '../store/reopenMined.ts'
import { unconfiguredPendingSigners } from '../store/unconfiguredPendingSigners.ts'
import { isMethodUnsupported } from '../chain/isMethodUnsupported.ts'
import { BlockNotServedError } from '../chain/providerTransport.ts'
import { transactionCountAt } from '../chain/transactionCountAt.ts'
import { ERROR_CODE } from '../core/errors.ts'

/** Advisory lock namespace for watcher leadership; the second key is the chain id. */
export const WATCH_LOCK_NAMESPACE = 73_022
/** Blocks fetched per tick when catching up, so one tick never runs for minutes. */
const MAX_BLOCKS_PER_TICK = 200
/** How far back a new or reorged cursor starts scanning. */
const RESCAN_DEPTH = 64
/**
 * A cursor loaded this far behind the head (the service stopped for hours, a chain added back after weeks) moves to
 * RESCAN_DEPTH below the head instead of reading every block in between: that read one block per call, 200 per tick,
 * hundreds of thousands of calls for a day of a fast chain, against providers' rate limits. What of ours those blocks
 * hold is what the receipt sweep looks up by hash, keyed on the signer's count at the cursor (transactions mined
 * before it): PENDING ones of the configured signers, and failed ones whose bytes were mined anyway; INCLUDED ones
 * advanceConfirmations follows by their own block. Not while a signer no longer configured has a PENDING one (the
 * sweep goes over the configured signers only), and only for a cursor just loaded (start-up, leadership taken): a
 * watcher fallen behind while it ran (a provider's outage, a burst) reads its blocks as before, since the sweep's
 * receipt reads by hash cost far more per transaction in a burst. The blocks passed are not searched for final
 * transactions a reorg during the outage moved (a rescan does that for the last RESCAN_DEPTH blocks).
 */
const JUMP_AFTER_BLOCKS = 1_000
/** A tick that takes longer is abandoned (a hung connection) and leadership is checked again. */
const TICK_TIMEOUT_MS = 30_000
/** Receipts asked for one by one go out this many at a time (one JSON-RPC batch), one batch after another. */
const RECEIPT_CHUNK = 100
/**
 * From the start of a scan, receipts are read for at most this long (a bulk read takes at most 15 s); the
 * rest waits for the next tick. Below TICK_TIMEOUT_MS, so a tick ends before it is abandoned.
 */
const RECEIPTS_BUDGET_MS = 20_000
/**
 * How long the scan waits before a block holding a final transaction of ours mined again (after a deep reorg) whose
 * receipt in that block no provider serves yet; in time, not ticks (a tick is 50 ms on a fast chain).
 */
const REMINED_RECEIPT_WAIT_MS = 60_000
/** ... asking again this often meanwhile. */
const REMINED_RETRY_MS = 1_000
/** Ticks the cursor may stop before the same block; then it moves on, and the receipt sweep covers that block. */
const MAX_TICKS_STUCK = 20
/** How often a leading watcher checks that its lock's connection still holds the lock. */
const LEADERSHIP_CHECK_MS = 5_000
/**
 * A leader whose lock connection has not answered a check for this long steps down, slow or not: Postgres has ended
 * that idle session by then (idle_session_timeout, 60 s, set on it in tryLead) and another instance may lead.
 */
const LOCK_SILENT_STEP_DOWN_MS = 60_000
/** A REVERTED transaction's message, before the reason its replay found (revert_reason). */
const REVERTED_BECAUSE = 'execution reverted: '
/** Reverted transactions replayed for their reason per settled batch: a block of reverts must not hold up the tick. */
const MAX_REPLAYS_PER_SETTLE = 20
/** Blocks remembered as "eth_getBlockReceipts failed, read one by one" (and as "not served yet", with their ticks). */
const MAX_BULK_FAILED = 1_000
/**
 * Ticks a block's receipts may come back "no such block" from every provider (none has them yet: a node serves a
 * block before its receipts, or all but the one that served the block are behind) before the block is read one by
 * one. About two block times (a tick is a quarter of one); meanwhile the cursor waits before the block.
 */
const MAX_TICKS_NOT_SERVED = 8
/** How long each provider has to answer for a block before its transactions are final (heightsInDispute). */
const DISPUTE_ANSWER_MS = 1_000
/** The codes the reconciler fails a request with after its nonce was given (its signed bytes exist). */
const FAILED_AFTER_SIGNING: string[] = [ERROR_CODE.SEND_REFUSED, ERROR_CODE.INVALID_TRANSACTION]
/** Every this many ticks, look up receipts of old PENDING attempts directly (covers blocks the scan missed). */
const RECEIPT_SWEEP_EVERY_TICKS = 10
/** How often the receipt sweep looks again for PENDING rows of signers not in the config (each look reads every PENDING row). */
const UNCONFIGURED_PENDING_EVERY_MS = 60_000
/** Transactions per signer one receipt sweep looks up (with all their attempts); the next sweep goes on from there. */
const SWEEP_MAX_TRANSACTIONS = 1_000

export type ChainWatcher = { stop: () => Promise<void>; isLeader: () => boolean }

type Cursor = { number: number; hash: Hash }

type Match = { hash: Hash; transaction_id: string }

/** What the receipt reads need of a block the scan read (transaction hashes only). */
type ScannedBlock = { hash: Hash | null; number: bigint | null; transactions: readonly unknown[] }

/**
 * A mined transaction's final status, error code and message, as SQL over the attempt that mined
 * (joined as `a`: the client's call, or our zero-value CANCEL replacement) and the receipt status,
 * which is the incoming value (`v`) when a receipt is settled and the stored one (`t`) when an
 * INCLUDED row reaches its depth.
 */
function finalOutcomeSql(sql: ServiceContext['db']['sql'], receiptColumn: 'v.receipt_status' | 't.receipt_status') {
  const receipt = sql.unsafe(receiptColumn)
  return {
    status: sql`CASE WHEN a.purpose = 'CANCEL' THEN 'CANCELLED' WHEN ${receipt} = 'success' THEN 'CONFIRMED' ELSE 'REVERTED' END`,
    errorCode: sql`CASE WHEN a.purpose = 'CANCEL' THEN COALESCE(t.error_code, 'CANCELLED') WHEN ${receipt} = 'success' THEN NULL ELSE 'EXECUTION_REVERTED' END`,
    errorMessage: sql`CASE WHEN a.purpose = 'CANCEL' THEN COALESCE(t.error_message, 'replaced by a zero-value self-transfer')
                      WHEN ${receipt} = 'success' THEN NULL
                      ELSE COALESCE(${REVERTED_BECAUSE} || t.revert_reason, 'mined with status 0 (reverted)') END`,
  }
}

/**
 * One per chain, leader-elected across instances by a Postgres advisory lock held
 * on a dedicated connection (it is released if this process dies).
 * Each tick: scan new blocks for our attempts, settle receipts, advance
 * confirmations, and move transactions whose block was reorged out back to PENDING.
 */
export function startChainWatcher(ctx: ServiceContext, chain: ChainClients): ChainWatcher {
  const { sql } = ctx.db
  const chainId = chain.chainId
  const log = ctx.log.child({ module: 'watch', chainId })
  const pollMs = Math.min(1_000, Math.max(50, Math.floor(chain.config.blockTimeMs / 4)))
  let leader = false
  type Reserved = Awaited<ReturnType<typeof sql.reserve>>
  let reserved: Reserved | null = null
  /**
   * Lock connections checkLeadership gave up on without an answer (not pooled: one may still hold the lock).
   * If one answers after all, tryLead unlocks it and hands it back.
   */
  const abandoned = new Set<Reserved>()
  let cursor: Cursor | null = null
  let ticks = 0
  /** Whether "no provider has eth_getBlockReceipts; one by one from now on" was logged. */
  let loggedNoBlockReceipts = false
  /** Blocks whose eth_getBlockReceipts failed: read one by one from then on. */
  const bulkFailed = new Set<Hash>()
  /** Blocks whose eth_getBlockReceipts no provider served yet (null), and on how many ticks: asked again later. */
  const notServed = new Map<Hash, number>()
  /** The block the cursor last stopped before (not read in full), and on how many ticks in a row. */
  let stuck: { hash: Hash; ticks: number } | null = null
  /**
   * After a reorg under the cursor: the cursor's height then. Until the scan is RESCAN_DEPTH blocks past it, scanned
   * blocks are also searched for mined transactions of ours (INCLUDED or final) mined again in the new chain (minedAgain).
   */
  let rescanTo: number | null = null
  /**
   * The highest block a scan settled receipts in while the cursor stopped below it (a block before it not read in
   * full: its receipts not served yet). Until the cursor passes it, scanned blocks are also searched for mined
   * transactions mined again elsewhere (minedAgain): a reorg of those blocks alone leaves the cursor's block as it
   * was, and is seen nowhere else. Before, a transaction final there kept a block no longer on chain.
   */
  let settledAhead: number | null = null
  /**
   * While the scan waits before a block holding a final transaction mined again whose receipt there is not read yet
   * (minedAgain): since when, its last look, and whether this rescan's wait is used up (one wait per rescan, not one
   * per such block: N of them held the cursor N minutes).
   */
  let reminedWait: { since: number; tried: number; gaveUp: boolean } | null = null
  /** The head and tip at which advanceConfirmations last left nothing undecided; and whether rows became INCLUDED since. */
  let settledAt: { head: bigint; tip: string | undefined } | null = null
  let includedMoved = true
  /** The canonical hash of each height advanceConfirmations read, at the head it read them at. */
  let checkedAt: { head: bigint; tip: string | undefined; hashes: Map<number, Hash> } | null = null
  /** Per signer, the nonce the last receipt sweep stopped at (it took SWEEP_MAX_TRANSACTIONS); the next goes on after it. */
  const sweptTo = new Map<string, number>()
  /** Signers not in this config with PENDING rows on the chain (read at most once a minute), for the receipt sweep. */
  let sweptUnconfigured: { at: number; signers: Address[] } | null = null
  /** The cursor jumped (JUMP_AFTER_BLOCKS): the receipt sweep runs on this tick, not up to ten ticks later. */
  let sweepNow = false
  /** The cursor was loaded (start-up, leadership taken) and not yet looked at for a jump (JUMP_AFTER_BLOCKS). */
  let cursorJustLoaded = false

  async function tryLead(signal: AbortSignal): Promise<boolean> {
    if (leader) return true
    if (!reserved) {
      const fresh = await ctx.db.locks.reserve()
      if (signal.aborted) fresh.release()
      signal.throwIfAborted()
      // A leader's lock connection answers a check every few seconds (LEADERSHIP_CHECK_MS, after a tick of at most
      // TICK_TIMEOUT_MS). Idle for a minute, its instance is paused or cut off (keepalives do not catch a paused VM:
      // its kernel still answers them): Postgres ends the session and another instance leads. Postgres 14+.
      await fresh`SET idle_session_timeout = '60s'`.catch(() => {})
      reserved = fresh
    }
    const conn = reserved
    const [row] = await conn<{ ok: boolean }[]>`SELECT pg_try_advisory_lock(${WATCH_LOCK_NAMESPACE}::int, ${chainId}::int) AS ok`
    if (signal.aborted) {
      // Given up while the lock was asked for: checkLeadership has looked at (or abandoned) this connection
      // since, so an answer this late must not make this instance the leader. If it was abandoned, it
      // answers after all: let go of whatever it holds and hand it back.
      if (abandoned.delete(conn)) {
        await conn`SELECT pg_advisory_unlock_all()`.then(
          () => conn.release(),
          () => {},
        )
      }
      signal.throwIfAborted()
    }
    leader = row!.ok
    lockAnsweredAt = Date.now()
    if (!leader) {
      // Not taken: this connection holds nothing. A follower kept it for good before, one per chain.
      reserved = null
      conn.release()
      return false
    }
    // From the stored cursor, not the one this instance held when it last led: another leader may have moved it
    // on for days since, and scanning forward from the old one also saved it backwards, block by block.
    cursor = null
    stuck = null
    rescanTo = null
    settledAhead = null
    reminedWait = null
    includedMoved = true
    log.info('watching chain (leader)')
    return true
  }

  async function loadCursor(head: bigint): Promise<Cursor> {
    const [row] = await sql<{ block_number: number; block_hash: Hash }[]>`SELECT block_number, block_hash FROM chain_cursors WHERE chain_id = ${chainId}`
    if (row) return { number: row.block_number, hash: row.block_hash }
    const start = Math.max(0, Number(head) - RESCAN_DEPTH)
    const block = await chain.read.getBlock({ blockNumber: BigInt(start) })
    return { number: start, hash: block.hash! }
  }

  /**
   * What the receipt sweep looks at beyond the configured signers: those with PENDING transactions, and those with
   * requests failed after they were signed lately (minedAfterFailed): a key rotated out the day one failed so left
   * it FAILED for good if its bytes were mined after all, its client submitting it again.
   */
  async function unconfiguredToSweep(): Promise<Address[]> {
    const configured = ctx.signers.forChain(chainId).map((s) => s.address)
    const rows = await sql<{ signer: Address }[]>`
      SELECT signer FROM transactions WHERE chain_id = ${chainId} AND status = 'PENDING' AND signer <> ALL(${pgArray(configured)}::text[])
      UNION
      SELECT signer FROM transactions WHERE chain_id = ${chainId} AND status = 'FAILED' AND final_at > now() - interval '1 day'
        AND error_code = ANY(${pgArray(FAILED_AFTER_SIGNING)}::text[]) AND signer <> ALL(${pgArray(configured)}::text[])`
    return rows.map((r) => r.signer)
  }

  async function saveCursor(c: Cursor): Promise<void> {
    await sql`
      INSERT INTO chain_cursors (chain_id, block_number, block_hash) VALUES (${chainId}, ${c.number}, ${c.hash})
      ON CONFLICT (chain_id) DO UPDATE SET block_number = EXCLUDED.block_number, block_hash = EXCLUDED.block_hash, updated_at = now()`
  }

  /**
   * Receipts found: PENDING -> INCLUDED. A receipt whose block is already at the confirmation depth
   * (depth 1, or a watcher catching up) goes on to its final status in the same UPDATE (one row
   * version instead of two), with both events written, so the timeline reads the same either way.
   * `includedOnly`: receipts whose block was not checked against a block the scan read (the receipt sweep looks them
   * up by transaction hash, from whichever provider answers, maybe one on a losing fork): INCLUDED only, even at depth
   * 1; advanceConfirmations makes them final once their block is the canonical one at its height.
   */
  async function settleReceipts(
    receipts: TransactionReceipt[],
    matches: Map<Hash, string>,
    head: bigint,
    signal: AbortSignal,
    opts: { includedOnly?: boolean } = {},
  ): Promise<void> {
    if (receipts.length === 0) return
    // A tick given up (startLoop's timeout) starts no more writes: the next tick settles these itself.
    signal.throwIfAborted()
    const ids = receipts.map((r) => matches.get(r.transactionHash)!)
    const depth = chain.config.confirmations
    // At depth 1 a receipt is final once it exists, even from a block newer than the head read at the start
    // of the tick. At a greater depth only the head counts: a receipt from a lagging or forked provider must
    // not make others look deeper than the canonical chain is.
    const tip = depth === 1 ? receipts.reduce((max, r) => (r.blockNumber > max ? r.blockNumber : max), head) : head
    const deepEnough = receipts.map((r) => !opts.includedOnly && Number(tip) - Number(r.blockNumber) + 1 >= depth)
    // Final at once only where every provider has that block (heightsInDispute); else INCLUDED, for advanceConfirmations.
    const disputed = await heightsInDispute(new Map(receipts.filter((_, i) => deepEnough[i]).map((r) => [Number(r.blockNumber), r.blockHash])), head, { nearTipOnly: true })
    const atDepth = receipts.map((r, i) => deepEnough[i]! && !disputed.has(Number(r.blockNumber)))
    type Moved = { id: string; status: string; mined_hash: string; first_sent_at: Date | null; created_at: Date; included_at: Date; final_at: Date | null; execution: number }
    let moved: Moved[] = []
    const outcome = finalOutcomeSql(sql, 'v.receipt_status')
    await sql.begin(async (tx) => {
      moved = await tx<Moved[]>`
        UPDATE transactions t SET
          status = CASE WHEN NOT v.final THEN 'INCLUDED' ELSE ${outcome.status} END,
          -- The request itself mined: an admin's cancel did not take (it showed CANCELLED while INCLUDED before).
          error_code = CASE WHEN v.final THEN ${outcome.errorCode} WHEN a.purpose = 'REQUEST' AND t.error_code = 'CANCELLED' THEN NULL ELSE t.error_code END,
          error_message = CASE WHEN v.final THEN ${outcome.errorMessage} WHEN a.purpose = 'REQUEST' AND t.error_code = 'CANCELLED' THEN NULL ELSE t.error_message END,
          final_at = CASE WHEN v.final THEN now() END,
          mined_hash = v.hash, block_number = v.block_number, block_hash = v.block_hash,
          receipt_status = v.receipt_status, gas_used = v.gas_used, effective_gas_price = v.price, contract_address = v.contract_address,
          included_at = now(), updated_at = now(), at_fee_cap = NULL
        FROM unnest(${pgArray(ids)}::uuid[], ${pgArray(receipts.map((r) => r.transactionHash))}::text[], ${pgArray(receipts.map((r) => Number(r.blockNumber)))}::bigint[],
                    ${pgArray(receipts.map((r) => r.blockHash))}::text[], ${pgArray(receipts.map((r) => r.status))}::text[],
                    ${pgArray(receipts.map((r) => r.gasUsed.toString()))}::numeric[], ${pgArray(receipts.map((r) => (r.effectiveGasPrice ?? 0n).toString()))}::numeric[],
                    ${pgArray(atDepth)}::boolean[], ${pgArray(receipts.map((r) => (r.contractAddress ? getAddress(r.contractAddress) : null)))}::text[])
             AS v(id, hash, block_number, block_hash, receipt_status, gas_used, price, final, contract_address)
        JOIN attempts a ON a.hash = v.hash
        WHERE t.id = v.id AND t.status = 'PENDING'
        RETURNING t.id, t.status, t.mined_hash, t.first_sent_at, t.created_at, t.included_at, t.final_at, t.execution`
      if (moved.length === 0) return
      includedMoved = true
      const movedIds = pgArray(moved.map((m) => m.id))
      // The attempt that mined is MINED; every other attempt of the same execution was replaced by it.
      // By their ids, with each row's execution as the update above left it: joined through transactions instead,
      // the planner read both tables whole while their statistics were a fresh table's (a block of 937 in a burst's
      // drain: 24 ms, 9 of it the scan of transactions).
      await tx`
        UPDATE attempts a SET status = CASE WHEN a.hash = m.mined_hash THEN 'MINED' ELSE 'REPLACED' END
        FROM unnest(${movedIds}::uuid[], ${pgArray(moved.map((m) => m.mined_hash))}::text[], ${pgArray(moved.map((m) => m.execution))}::int[])
          AS m(id, mined_hash, execution)
        WHERE a.transaction_id = ANY(${movedIds}::uuid[]) AND a.transaction_id = m.id AND a.execution = m.execution`
      await tx`
        INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
        SELECT t.id, 'PENDING', 'INCLUDED', jsonb_build_object('hash', t.mined_hash, 'blockNumber', t.block_number, 'receiptStatus', t.receipt_status)
        FROM transactions t WHERE t.id = ANY(${movedIds}::uuid[]) ORDER BY t.block_number, t.nonce`
      const final = moved.filter((m) => m.status !== 'INCLUDED')
      if (final.length)
        await tx`
          INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
          SELECT t.id, 'INCLUDED', t.status, jsonb_build_object('confirmations', ${depth}::int)
          FROM transactions t WHERE t.id = ANY(${pgArray(final.map((m) => m.id))}::uuid[]) ORDER BY t.block_number, t.nonce`
    })
    if (receipts.some((r) => r.status === 'reverted')) await explainReverts(moved.map((m) => m.id), signal)
    for (const m of moved) {
      if (m.execution === 1) ctx.metrics?.observeStage(chainId, 'first_broadcast', m.created_at, m.first_sent_at)
      ctx.metrics?.observeStage(chainId, 'inclusion', m.first_sent_at, m.included_at)
      if (m.final_at) ctx.metrics?.observeStage(chainId, 'confirmation', m.included_at, m.final_at)
    }
  }

  /**
   * DESIGN.md: "the revert reason is shown where it can be decoded". The client's calls among `ids` that mined
   * with status 0 are replayed at their block (a read per reverted transaction, rare) and the reason is stored;
   * the REVERTED status says it from then on. Best effort: a replay that fails leaves the plain message.
   */
  async function explainReverts(ids: string[], signal: AbortSignal): Promise<void> {
    const reverted = await sql<{ id: string; signer: Address; to: Address | null; data: Hex; value: string; gas_limit: string; block_number: number; mined_hash: string }[]>`
      SELECT t.id, t.signer, t."to", t.data, t.value::text, a.gas_limit::text, t.block_number, t.mined_hash
      FROM transactions t JOIN attempts a ON a.hash = t.mined_hash
      WHERE t.id = ANY(${pgArray(ids)}::uuid[]) AND t.receipt_status = 'reverted' AND a.purpose = 'REQUEST'
      LIMIT ${MAX_REPLAYS_PER_SETTLE}`
    if (reverted.length === 0 || signal.aborted) return
    // All at once: the calls of one tick go out as one JSON-RPC batch. One after the other, a burst of reverts (a
    // paused contract) cost up to 20 round trips per settled chunk, and the receipt reads slowed that much.
    const reasons = await Promise.all(
      reverted.map((t) =>
        replayRevert(chain, {
          from: t.signer,
          to: t.to,
          data: t.data,
          value: BigInt(t.value),
          gas: BigInt(t.gas_limit),
          blockNumber: BigInt(t.block_number),
        }).catch(() => null),
      ),
    )
    const explained = reverted.flatMap((t, i) => (reasons[i] === null ? [] : [{ id: t.id, minedHash: t.mined_hash, reason: reasons[i]! }]))
    if (explained.length === 0 || signal.aborted) return
    await sql.begin(async (tx) => {
      const stored = await tx<{ id: string; status: string; reason: string }[]>`
        UPDATE transactions t SET revert_reason = v.reason, updated_at = now(),
          error_message = CASE WHEN t.status = 'REVERTED' THEN ${REVERTED_BECAUSE} || v.reason ELSE t.error_message END
        FROM unnest(${pgArray(explained.map((e) => e.id))}::uuid[], ${pgArray(explained.map((e) => e.minedHash))}::text[],
                    ${pgArray(explained.map((e) => e.reason))}::text[]) AS v(id, mined_hash, reason)
        WHERE t.id = v.id AND t.mined_hash = v.mined_hash
        RETURNING t.id, t.status, v.reason`
      // An event of its own (the status unchanged, as a bump's): the change feed announces only events, and a page
      // or subscriber that read the REVERTED row a moment before kept "mined with status 0" for good.
      if (stored.length)
        await tx`
          INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
          SELECT v.id, v.status, v.status, jsonb_build_object('revertReason', v.reason)
          FROM unnest(${pgArray(stored.map((r) => r.id))}::uuid[], ${pgArray(stored.map((r) => r.status))}::text[], ${pgArray(stored.map((r) => r.reason))}::text[]) AS v(id, status, reason)`
    })
  }

  async function matchAttempts(hashes: readonly Hash[]): Promise<Map<Hash, string>> {
    if (hashes.length === 0) return new Map()
    const rows = await sql<Match[]>`
      SELECT a.hash, a.transaction_id FROM attempts a JOIN transactions t ON t.id = a.transaction_id
      WHERE a.hash = ANY(${pgArray(hashes as Hash[])}::text[]) AND t.status = 'PENDING' AND a.execution = t.execution`
    return new Map(rows.map((r) => [r.hash, r.transaction_id]))
  }

  async function fetchReceipts(hashes: Hash[]): Promise<TransactionReceipt[]> {
    const receipts = await Promise.all(hashes.map((hash) => chain.read.getTransactionReceipt({ hash }).catch(() => null)))
    return receipts.filter((r): r is TransactionReceipt => r !== null)
  }

  /**
   * Reads and settles the receipts of our transactions in `blocks` (in chain order, each holding some of
   * `matches`), until `deadline`. Returns the first block not read in full, if any, and how many of ours
   * in it are left.
   */
  async function readReceiptsOf<B extends ScannedBlock>(
    blocks: B[],
    matches: Map<Hash, string>,
    head: bigint,
    deadline: number,
    signal: AbortSignal,
  ): Promise<{ block: B; left: number } | undefined> {
    const oursIn = (b: B) => (b.transactions as Hash[]).filter((h) => matches.has(h))
    /** Per block of ours (by hash): the receipts still to read. */
    const missing = new Map<Hash, Set<Hash>>(blocks.map((b) => [b.hash!, new Set(oursIn(b))]))
    // 1. Blocks holding several of ours: one eth_getBlockReceipts each (a block can hold thousands of ours),
    // on a bulk client (a timeout for the block's size, each request alone, no retries: a node computes a
    // call in full even after the client gave up, so asking again only piles work on it).
    const blockReceipts = !chain.bulkUnsupported('eth_getBlockReceipts')
    if (!blockReceipts && !loggedNoBlockReceipts) {
      log.info('no provider has eth_getBlockReceipts; fetching receipts one by one')
      loggedNoBlockReceipts = true
    }
    const bulk = blocks.filter((b) => blockReceipts && missing.get(b.hash!)!.size > 1 && !bulkFailed.has(b.hash!))
    const results = await Promise.allSettled(bulk.map((b) => chain.bulkRead(b.transactions.length).getBlockReceipts({ blockHash: b.hash! })))
    const found: TransactionReceipt[] = []
    /** Blocks no provider served yet: neither read one by one nor passed by the cursor on this tick. */
    const later = new Set<Hash>()
    // After the reads: a provider that answered "method not found" during them is counted.
    const noneHaveIt = chain.bulkUnsupported('eth_getBlockReceipts')
    results.forEach((r, i) => {
      const b = bulk[i]!
      if (r.status === 'fulfilled') {
        notServed.delete(b.hash!)
        const left = missing.get(b.hash!)!
        for (const x of r.value) if (left.delete(x.transactionHash)) found.push(x)
        return
      }
      const err = r.reason as Error
      // "Method not found" while some provider has the method: the fallback's last error, from a provider without
      // it after those with it answered "no such block" (viem throws the last transport's error).
      const unserved =
        err instanceof BlockNotServedError || err instanceof BlockNotFoundError || (isMethodUnsupported(err) && !noneHaveIt)
      const ticksUnserved = unserved ? (notServed.get(b.hash!) ?? 0) + 1 : 0
      if (unserved && ticksUnserved < MAX_TICKS_NOT_SERVED) {
        // Every provider asked answered "no such block" (the one that served the scan is ahead of the others, or
        // serves a block before its receipts): not a failure, asked again on the next tick. Taken for one, it
        // sent nearly every block of a fast chain to the one-by-one reads (behind by a block, for good).
        if (notServed.size >= MAX_BULK_FAILED) notServed.clear()
        notServed.set(b.hash!, ticksUnserved)
        later.add(b.hash!)
      } else if (isMethodUnsupported(err) && noneHaveIt) {
        // Not in any provider's API: one by one from now on (logged above on the next read).
      } else {
        // Too large for the node within the timeout, a failure, or a block still not served after many ticks:
        // this block is read one by one from now on.
        notServed.delete(b.hash!)
        if (bulkFailed.size >= MAX_BULK_FAILED) bulkFailed.clear()
        bulkFailed.add(b.hash!)
        log.warn({ err, block: Number(b.number), ours: missing.get(b.hash!)!.size }, 'eth_getBlockReceipts failed; reading the block one by one')
      }
    })
    await settleReceipts(found, matches, head, signal)
    // 2. What is left (blocks with one of ours, blocks whose bulk read failed or came back short), one by one:
    // RECEIPT_CHUNK at a time across blocks in block order, each chunk settled as it arrives, each call small
    // enough for any timeout (on anvil the same total work as the bulk read, none thrown away).
    const queue = blocks.filter((b) => !later.has(b.hash!)).flatMap((b) => [...missing.get(b.hash!)!].map((hash) => ({ block: b.hash!, hash })))
    for (let i = 0; i < queue.length && performance.now() < deadline; i += RECEIPT_CHUNK) {
      const chunk = queue.slice(i, i + RECEIPT_CHUNK)
      // Asked by transaction hash, so any block may come back: only a receipt from the block the scan read counts
      // (as the bulk read asks by that block's hash). One from a provider on a losing fork went straight to CONFIRMED
      // at depth 1, with that fork's block and status; now it is asked again on the next tick.
      const blockOf = new Map(chunk.map((c) => [c.hash, c.block]))
      const receipts = (await fetchReceipts(chunk.map((c) => c.hash))).filter((r) => r.blockHash === blockOf.get(r.transactionHash))
      await settleReceipts(receipts, matches, head, signal)
      const got = new Set(receipts.map((r) => r.transactionHash))
      for (const c of chunk) if (got.has(c.hash)) missing.get(c.block)!.delete(c.hash)
      if (got.size < chunk.length) break // a failed call or a provider behind: the next tick asks again
    }
    const block = blocks.find((b) => missing.get(b.hash!)!.size > 0)
    return block && { block, left: missing.get(block.hash!)!.size }
  }

  /** New blocks since the cursor: find our attempts in them and settle. */
  async function scanBlocks(head: bigint, signal: AbortSignal): Promise<void> {
    const deadline = performance.now() + RECEIPTS_BUDGET_MS
    if (!cursor) {
      const loaded = await loadCursor(head)
      signal.throwIfAborted()
      cursor = loaded
      cursorJustLoaded = true
    }
    if (cursorJustLoaded && rescanTo === null && reminedWait === null && Number(head) - cursor.number > JUMP_AFTER_BLOCKS && (await unconfiguredPendingSigners(sql, ctx.signers, chainId)).length === 0) {
      const to = Number(head) - RESCAN_DEPTH
      const block = await chain.read.getBlock({ blockNumber: BigInt(to) })
      signal.throwIfAborted()
      log.warn(
        { from: cursor.number, to, head: Number(head) },
        `the watcher is ${Number(head) - cursor.number} blocks behind: going on from ${to}, without reading the blocks in between; the receipt sweep looks up what of ours they hold`,
      )
      const skipped = to - cursor.number
      cursor = { number: to, hash: block.hash! }
      stuck = null
      await saveCursor(cursor)
      sweepNow = true
      // The warning alone scrolls away: a counter an alert can watch (a jump every start-up is a watcher that keeps dying).
      ctx.metrics?.blocksSkipped.inc({ chain_id: String(chainId) }, skipped)
    }
    // Cleared once looked at in full: a tick that failed on the way (the read of the block to go on from) looks again.
    cursorJustLoaded = false
    // A failed read fails the tick (tried again on the next); only a different hash at that height is a reorg.
    // Taken for one, a provider's hiccup made the watcher rescan 64 blocks and log a reorg that never was.
    const atCursor = await chain.read.getBlock({ blockNumber: BigInt(cursor.number) })
    if (atCursor.hash !== cursor.hash) {
      // The block we stopped at is no longer canonical: rescan from further back.
      const back = Math.max(0, cursor.number - RESCAN_DEPTH)
      const block = await chain.read.getBlock({ blockNumber: BigInt(back) })
      signal.throwIfAborted()
      log.warn({ from: cursor.number, to: back }, 'reorg under the cursor; rescanning')
      rescanTo = Math.max(rescanTo ?? 0, cursor.number)
      cursor = { number: back, hash: block.hash! }
    }
    // Waiting for a re-mined transaction's receipt: asked again about once a second, not on every tick (50 ms on a fast chain).
    if (reminedWait && !reminedWait.gaveUp && Date.now() - reminedWait.tried < REMINED_RETRY_MS) return
    const last = Math.min(Number(head), cursor.number + MAX_BLOCKS_PER_TICK)
    if (last <= cursor.number) return
    const numbers = Array.from({ length: last - cursor.number }, (_, i) => BigInt(cursor!.number + 1 + i))
    // The blocks up to the first one that could not be read (a provider's hiccup, a node a block behind): the next
    // tick goes on from there. One failure among 200 reads threw away the others, tick after tick.
    const reads = await Promise.allSettled(numbers.map((blockNumber) => chain.read.getBlock({ blockNumber })))
    const firstFailed = reads.findIndex((r) => r.status === 'rejected')
    if (firstFailed === 0) throw (reads[0] as PromiseRejectedResult).reason
    const blocks = (firstFailed < 0 ? reads : reads.slice(0, firstFailed)).map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof chain.read.getBlock>>>).value)
    let next = cursor
    const consistent: typeof blocks = []
    for (const block of blocks) {
      if (block.parentHash !== next.hash) break // a reorg mid-scan; the next tick starts from what was consistent
      consistent.push(block)
      next = { number: Number(block.number), hash: block.hash! }
    }
    /** The cursor that stops the scan before `block` (one of `consistent`): the next tick reads it again. */
    const stopBefore = (block: (typeof consistent)[number]): Cursor => {
      const at = consistent.indexOf(block)
      return at > 0 ? { number: Number(consistent[at - 1]!.number), hash: consistent[at - 1]!.hash! } : cursor!
    }
    // After a reorg under the cursor, every block of the rescan; else only those up to settledAhead: during a burst the
    // cursor often stops before a block whose receipts are not read yet, and the blocks above are read tick after tick.
    const searchTo = rescanTo !== null ? Infinity : (settledAhead ?? -Infinity)
    const searched = consistent.filter((b) => Number(b.number) <= searchTo)
    const unresolved = searched.length ? await minedAgain(searched, head, signal) : null
    const matches = await matchAttempts(consistent.flatMap((b) => b.transactions as Hash[]))
    /** The last block of ours this scan read receipts in. */
    let lastOurs: number | null = null
    if (matches.size) {
      const ours = consistent.filter((b) => (b.transactions as Hash[]).some((h) => matches.has(h)))
      lastOurs = Number(ours.at(-1)!.number)
      // The cursor stops before the first block not read in full; the next tick goes on with what is still
      // PENDING there (settled receipts stay settled). A block that stays unread for MAX_TICKS_STUCK ticks
      // is passed: the receipt sweep then looks its transactions up (their nonces are below the count there).
      const unread = await readReceiptsOf(ours, matches, head, deadline, signal)
      signal.throwIfAborted()
      if (!unread) stuck = null
      else {
        const { block, left } = unread
        stuck = stuck?.hash === block.hash ? { hash: block.hash!, ticks: stuck.ticks + 1 } : { hash: block.hash!, ticks: 1 }
        if (stuck.ticks < MAX_TICKS_STUCK) {
          next = stopBefore(block)
        } else {
          log.warn({ block: Number(block.number), unread: left, ticks: stuck.ticks }, 'receipts of a block still not read; moving on, the receipt sweep looks them up')
          stuck = null
        }
      }
    }
    // A final transaction seen in another block whose receipt there could not be read yet (providers disagreeing
    // right after the reorg): the cursor stops before that block and the next tick looks again. Passed, it stayed
    // in its old block for good (the reconciler only revives finals whose nonce the chain no longer counts).
    if (unresolved && !reminedWait?.gaveUp) {
      reminedWait ??= { since: Date.now(), tried: 0, gaveUp: false }
      reminedWait.tried = Date.now()
      if (Date.now() - reminedWait.since < REMINED_RECEIPT_WAIT_MS) {
        const before = stopBefore(unresolved)
        if (before.number < next.number) next = before
        // Searched again on the next ticks, whether or not a reorg under the cursor started the search.
        if (rescanTo === null) settledAhead = Math.max(settledAhead ?? 0, Number(unresolved.number))
      } else {
        log.warn({ block: Number(unresolved.number) }, 'a transaction of ours mined again in this block after a reorg: its receipt there still not read after a minute; moving on')
        reminedWait.gaveUp = true
      }
    } else if (!unresolved && reminedWait && !reminedWait.gaveUp) reminedWait = null
    if (lastOurs !== null && next.number < lastOurs) settledAhead = Math.max(settledAhead ?? 0, lastOurs)
    if (next === cursor) return
    signal.throwIfAborted()
    cursor = next
    await saveCursor(next)
    // Passed by a scan that searched its blocks (above): a reorg of them from now on changes the cursor's block.
    if (settledAhead !== null && next.number >= settledAhead) {
      settledAhead = null
      // Its wait for a re-mined receipt, used up or not, is not the next reorg's.
      if (rescanTo === null) reminedWait = null
    }
    if (rescanTo !== null && next.number >= rescanTo + RESCAN_DEPTH) {
      rescanTo = null
      reminedWait = null
    }
  }

  /**
   * Mined transactions of ours (INCLUDED or final) found in the blocks of a rescan after a reorg, in another block
   * than the one they were settled in: the reorg took their block, and the new chain holds the same bytes in
   * another. The receipt in the new block is what counts: back to PENDING (an event `reorg` for an INCLUDED one,
   * `reorged_out_after_final` for a final one, deeper than the confirmation depth) and settled from it, INCLUDED
   * until it is at the depth again, and REVERTED now if it reverted there. Only on the watcher's own consistent scan
   * of the new chain, with a receipt from that very block: the view the watcher settles everything by, not one
   * provider's word that the old block is gone.
   *
   * Before, a final one kept the old block (number, hash, gas, status of a receipt no longer on chain). An INCLUDED
   * one was matched by nothing here (the scan matches PENDING rows): the rescan passed its new block, then
   * advanceConfirmations moved it back to PENDING, and only the receipt sweep (up to ten ticks later, and never for a
   * signer no longer configured) found it again.
   */
  async function minedAgain<B extends ScannedBlock>(blocks: readonly B[], head: bigint, signal: AbortSignal): Promise<B | null> {
    const blockOf = new Map<Hash, Hash>()
    for (const b of blocks) for (const h of b.transactions as Hash[]) blockOf.set(h, b.hash!)
    if (blockOf.size === 0) return null
    // Any attempt of the execution, not only the one that mined: a request whose cancel was mined in the replaced
    // block and the request itself in the new one (or the other way round) showed CANCELLED while the request ran
    // (its client could submit it again), or CONFIRMED while only the self-transfer did.
    const mined = await sql<(MinedRow & { hash: Hash; block_number: number; mined_hash: Hash })[]>`
      SELECT t.id, t.status, t.nonce, t.block_hash, t.block_number, t.execution, t.mined_hash, a.hash
      FROM attempts a JOIN transactions t ON t.id = a.transaction_id AND t.execution = a.execution
      WHERE a.hash = ANY(${pgArray([...blockOf.keys()])}::text[]) AND t.chain_id = ${chainId} AND t.status IN ('INCLUDED', 'CONFIRMED', 'REVERTED', 'CANCELLED')`
    const moved = mined.filter((t) => t.hash !== t.mined_hash || t.block_hash !== blockOf.get(t.hash))
    if (moved.length === 0) return null
    const receipts = (await fetchReceipts(moved.map((t) => t.hash))).filter((r) => r.blockHash === blockOf.get(r.transactionHash))
    const read = new Set(receipts.map((r) => r.transactionHash))
    const missing = new Set(moved.filter((t) => !read.has(t.hash)).map((t) => blockOf.get(t.hash)!))
    const matches = new Map<Hash, string>()
    const byHash = new Map(moved.map((m) => [m.hash, m]))
    const reopening = receipts.map((receipt) => {
      const t = byHash.get(receipt.transactionHash)!
      const final = t.status !== 'INCLUDED'
      return { row: t, receipt, final, detail: { reason: final ? 'reorged_out_after_final' : 'reorg', hash: t.hash, nonce: t.nonce, block: t.block_number, minedAgainIn: Number(receipt.blockNumber) } }
    })
    signal.throwIfAborted()
    // One commit for all of them: a reorg of a busy stretch moves thousands, and one commit each outlasted the tick.
    const reopened = await reopenMinedMany(sql, reopening)
    let notFinal = 0
    for (const { row: t, receipt, final } of reopening) {
      if (!reopened.has(t.id)) continue
      matches.set(t.hash, t.id)
      if (!final) notFinal++
      else log.error({ txId: t.id, hash: t.hash, was: t.block_number, now: Number(receipt.blockNumber) }, 'a final transaction\'s block was reorged out (deeper than the confirmation depth); mined again in another block, settled from it')
    }
    if (notFinal) log.warn({ transactions: notFinal }, 'block reorged out; mined again in another block, settled from it')
    // A crash between the two leaves it PENDING with its nonce used: the receipt sweep settles it.
    await settleReceipts(receipts.filter((r) => matches.has(r.transactionHash)), matches, head, signal)
    // The first block (in chain order) holding one whose receipt there was not read.
    return blocks.find((b) => missing.has(b.hash!)) ?? null
  }

  /**
   * Receipts for PENDING transactions whose nonce the chain had already used at the cursor: one of our
   * attempts mined in a block the scan missed (a restart past the rescan depth), or someone else's
   * transaction took the nonce (the reconciler's case). Keyed on the signer's mined count, so a backlog
   * waiting its turn costs nothing. The count is read at the cursor's block, not at the head: what was
   * mined after the cursor is the scan's next work, and asking for those receipts one by one as well
   * fetched each of them twice (thousands of calls per block during a burst; a node such as anvil
   * answers nothing else meanwhile). A receipt found here names a block nothing has checked: INCLUDED only, and final
   * once advanceConfirmations finds that block canonical (at depth 1, on the same tick); one from a provider on a
   * losing fork goes back to PENDING there, as a reorg, instead of CONFIRMED in that fork's block.
   */
  async function receiptSweep(head: bigint, signal: AbortSignal): Promise<void> {
    if (!cursor) return
    const scanned = BigInt(cursor.number)
    const configured = ctx.signers.forChain(chainId).map((s) => s.address)
    // Also signers no longer in the config (a key rotated out with transactions in flight): reading receipts needs
    // only the address. A transaction of theirs mined in a block the scan passed without its receipt (receipts lagging
    // for 20 ticks, a leader change mid-rescan) otherwise stayed PENDING for good: nothing else looks at them.
    if (!sweptUnconfigured || Date.now() - sweptUnconfigured.at > UNCONFIGURED_PENDING_EVERY_MS)
      sweptUnconfigured = { at: Date.now(), signers: await unconfiguredToSweep() }
    for (const address of [...configured, ...sweptUnconfigured.signers]) {
      const latest = await transactionCountAt(chain, address, scanned)
      // In nonce order from where the last sweep of this signer stopped, round and round: without an order, the
      // same rows could come back first every time and leave others past the limit.
      const after = sweptTo.get(address) ?? -1
      const rows = await sql<(Match & { nonce: number })[]>`
        SELECT a.hash, a.transaction_id, t.nonce::int AS nonce FROM (
          SELECT id, execution, nonce FROM transactions
          WHERE chain_id = ${chainId} AND signer = ${address} AND status = 'PENDING' AND nonce < ${latest} AND nonce > ${after}
          ORDER BY nonce LIMIT ${SWEEP_MAX_TRANSACTIONS}) t
        JOIN attempts a ON a.transaction_id = t.id AND a.execution = t.execution
        ORDER BY t.nonce, a.id`
      const swept = new Set(rows.map((r) => r.transaction_id)).size
      if (swept < SWEEP_MAX_TRANSACTIONS) sweptTo.delete(address)
      else sweptTo.set(address, rows.at(-1)!.nonce)
      if (rows.length) {
        const matches = new Map(rows.map((r) => [r.hash, r.transaction_id]))
        // Not checked against a block the scan read: INCLUDED only, final once advanceConfirmations finds the block canonical.
        await settleReceipts(await fetchReceipts([...matches.keys()]), matches, head, signal, { includedOnly: true })
      }
      await minedAfterFailed(address, latest, head, signal)
    }
  }

  /**
   * A request the reconciler failed after its nonce was given (SEND_REFUSED: no provider it asks had it; or
   * INVALID_TRANSACTION) whose signed bytes a node it does not ask (one marked down, a private pool) mined anyway,
   * before the filler. It ran: left FAILED, its client would submit it again. Found by its receipt, it goes back
   * to PENDING at its nonce (an event `mined_after_failed`, an error in the log) and is settled as any mined one.
   * Looked for among those failed in the last day, at nonces the chain has used; not while the filler still holds
   * the nonce (it fails as NONCE_USED_ELSEWHERE, then this runs again). Fillers too: one failed so whose bytes mined
   * stayed FAILED, the filler sent after it FAILED as NONCE_USED_ELSEWHERE, and no row held the nonce it took.
   */
  async function minedAfterFailed(signer: string, latest: number, head: bigint, signal: AbortSignal): Promise<void> {
    const rows = await sql<(Match & { nonce: number })[]>`
      SELECT a.hash, a.transaction_id, a.nonce::int AS nonce FROM transactions t JOIN attempts a ON a.transaction_id = t.id AND a.execution = t.execution
      WHERE t.final_at > now() - interval '1 day' AND t.chain_id = ${chainId} AND t.signer = ${signer} AND t.status = 'FAILED'
        AND t.error_code = ANY(${pgArray(FAILED_AFTER_SIGNING)}::text[]) AND a.nonce < ${latest}
        -- Not once a final transaction of ours holds that nonce (its filler mined): its bytes can no longer be.
        AND NOT EXISTS (SELECT 1 FROM transactions f WHERE f.chain_id = t.chain_id AND f.signer = t.signer AND f.nonce = a.nonce
                        AND f.status IN ('CONFIRMED', 'REVERTED', 'CANCELLED'))
      ORDER BY t.final_at DESC LIMIT 200`
    if (rows.length === 0) return
    // At the confirmation depth only: reopened from a block a reorg then took away, the request (whose client was
    // told FAILED) would be sent again and run, where the filler would have taken its nonce.
    const depth = chain.config.confirmations
    const receipts = (await fetchReceipts(rows.map((r) => r.hash))).filter((r) => Number(head) - Number(r.blockNumber) + 1 >= depth)
    for (const receipt of receipts) {
      const row = rows.find((r) => r.hash === receipt.transactionHash)!
      signal.throwIfAborted()
      const reopened = await sql
        .begin(async (tx) => {
          const back = await tx`
            UPDATE transactions SET status = 'PENDING', nonce = ${row.nonce}, error_code = NULL, error_message = NULL, final_at = NULL, updated_at = now()
            WHERE id = ${row.transaction_id} AND status = 'FAILED' AND error_code = ANY(${pgArray(FAILED_AFTER_SIGNING)}::text[])
              AND execution = (SELECT execution FROM attempts WHERE hash = ${receipt.transactionHash})`
          if (!back.count) return false
          await tx`
            INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
            VALUES (${row.transaction_id}, 'FAILED', 'PENDING', ${tx.json({ reason: 'mined_after_failed', hash: receipt.transactionHash, blockNumber: Number(receipt.blockNumber) })}::jsonb)`
          return true
        })
        // Its nonce is still held by the filler sent for it: looked at again once that one has failed.
        .catch((err: unknown) => ((err as { code?: string }).code === '23505' ? false : Promise.reject(err)))
      if (!reopened) continue
      log.error({ txId: row.transaction_id, hash: receipt.transactionHash, block: Number(receipt.blockNumber) }, 'a request failed after it was signed was mined anyway (by a node the service does not send to); settled as mined')
      await settleReceipts([receipt], new Map([[receipt.transactionHash, row.transaction_id]]), head, signal, { includedOnly: true })
    }
  }

  /** Blocks (height:hash) every provider asked agreed on, and those some disputed, at the head they were asked at (asked once per block). */
  let agreedAt: { head: bigint; blocks: Set<string>; disputed: Set<string> } | null = null
  /** Disputes said in the log (once each), with the providers that had another block. */
  const disputesLogged = new Map<string, string[]>()
  /** Disputes said on their transactions' timelines (once each, by this process). */
  const disputesNoted = new Set<string>()

  /**
   * The heights (of those given, each with the block hash the watcher has there) at which some provider that is not
   * down has another block. A transaction is final only where none has: the watcher's blocks are one provider's (the
   * read client's first), and one on a minority branch (or answering a head far ahead, which made the others look
   * behind) settled our transactions in its blocks, for good. A provider that has not reached the height, or fails,
   * holds nothing up (nor one slower than DISPUTE_ANSWER_MS: a hung one held every settlement up to its time-out);
   * one that disagrees does, said in the log, until it agrees or is down. One provider: nothing asked.
   */
  async function heightsInDispute(blocks: Map<number, Hash>, head: bigint, opts: { nearTipOnly?: boolean } = {}): Promise<Set<number>> {
    const disputed = new Set<number>()
    const asked = chain.providers.filter((p) => chain.health.usableForSend(p.name))
    if (asked.length < 2 || blocks.size === 0) return disputed
    if (agreedAt?.head !== head) agreedAt = { head, blocks: new Set(), disputed: new Set() }
    const { blocks: agreed, disputed: disputedHere } = agreedAt
    for (const [n, hash] of blocks) if (disputedHere.has(`${n}:${hash}`)) disputed.add(n)
    await Promise.all(
      [...blocks]
        // Blocks the scan finds further than the rescan window past the confirmation depth are not asked about (they
        // are final at once, as before): a watcher catching up on a backlog asked every provider for every block of it
        // again. Not so for one held INCLUDED by a dispute (advanceConfirmations): it stays held for as long as that lasts.
        .filter(([n]) => !(opts.nearTipOnly && Number(head) - n >= chain.config.confirmations + RESCAN_DEPTH))
        .filter(([n, hash]) => !agreed.has(`${n}:${hash}`) && !disputedHere.has(`${n}:${hash}`))
        .map(async ([n, hash]) => {
          const hashes = await Promise.all(
            asked.map((p) => withTimeout(p.client.getBlock({ blockNumber: BigInt(n) }), DISPUTE_ANSWER_MS, 'a block read').then((b) => b.hash, () => null)),
          )
          const others = asked.filter((_, i) => hashes[i] !== null && hashes[i] !== hash)
          if (others.length === 0) return void agreed.add(`${n}:${hash}`)
          disputed.add(n)
          disputedHere.add(`${n}:${hash}`)
          if (disputesLogged.has(`${n}:${hash}`)) return
          disputesLogged.set(`${n}:${hash}`, others.map((p) => p.name))
          if (disputesLogged.size > 1_000) disputesLogged.delete(disputesLogged.keys().next().value!)
          log.warn(
            { block: n, hash, otherProviders: others.map((p) => p.name) },
            'providers disagree on the block at this height: its transactions stay INCLUDED (not final) until they agree',
          )
        }),
    )
    return disputed
  }

  /**
   * Held INCLUDED at their depth by a dispute: said on each one's timeline (an event INCLUDED → INCLUDED, reason
   * providers_disagree), once, so the dashboard says why it is not final, not only the log.
   */
  async function noteDisputes(held: { id: string; block_number: number; block_hash: Hash }[]): Promise<void> {
    const fresh = held.filter((r) => !disputesNoted.has(`${r.id}:${r.block_hash}`))
    if (fresh.length === 0) return
    await sql`
      INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
      SELECT v.id, 'INCLUDED', 'INCLUDED', jsonb_build_object('reason', 'providers_disagree', 'block', v.block, 'otherProviders', v.others::jsonb)
      FROM unnest(${pgArray(fresh.map((r) => r.id))}::uuid[], ${pgArray(fresh.map((r) => r.block_number))}::bigint[],
                  ${pgArray(fresh.map((r) => JSON.stringify(disputesLogged.get(`${r.block_number}:${r.block_hash}`) ?? [])))}::text[]) AS v(id, block, others)
      WHERE EXISTS (SELECT 1 FROM transactions t WHERE t.id = v.id AND t.status = 'INCLUDED')
        -- Once per block, also across restarts and leader changes.
        AND NOT EXISTS (SELECT 1 FROM transaction_events e WHERE e.transaction_id = v.id AND e.to_status = 'INCLUDED'
                        AND e.detail->>'reason' = 'providers_disagree' AND (e.detail->>'block')::bigint = v.block)`
    for (const r of fresh) disputesNoted.add(`${r.id}:${r.block_hash}`)
    if (disputesNoted.size > 100_000) disputesNoted.clear()
  }

  /** INCLUDED transactions: confirmed at depth, or back to PENDING if their block left the canonical chain. */
  async function advanceConfirmations(head: bigint, signal: AbortSignal): Promise<void> {
    // Nothing to do again until the head, the tip or the INCLUDED rows change: a tick is a quarter of a block, and
    // each read every INCLUDED row (at 200/s with 12 confirmations on mainnet, about 29,000) to find nothing new.
    if (!includedMoved && settledAt?.head === head && settledAt.tip === cursor?.hash) return
    settledAt = null
    includedMoved = false
    const included = await sql<{ id: string; block_number: number; block_hash: Hash; receipt_status: string }[]>`
      SELECT id, block_number, block_hash, receipt_status FROM transactions WHERE chain_id = ${chainId} AND status = 'INCLUDED'`
    if (included.length === 0) return void (settledAt = { head, tip: cursor?.hash })
    const numbers = [...new Set(included.map((r) => r.block_number))]
    // A height read at this same head is not read again: a tick is a quarter of a block, and each read is a whole
    // block's list of transaction hashes (hundreds of KB on a busy chain, for every height down to the depth).
    // Keyed on the scan's last block too: a reorg of the tip keeps the head's number, not its hash.
    if (checkedAt?.head !== head || checkedAt.tip !== cursor?.hash) checkedAt = { head, tip: cursor?.hash, hashes: new Map() }
    const canonical = checkedAt.hashes
    await Promise.all(
      numbers
        .filter((n) => !canonical.has(n))
        .map(async (n) => {
          const b = await chain.read.getBlock({ blockNumber: BigInt(n) }).catch(() => null)
          // Not remembered when not found: a lagging node may have it on the next tick.
          if (b?.hash) canonical.set(n, b.hash)
        }),
    )
    // Only a different hash at that height is a reorg; a block the provider cannot find yet (a lagging
    // node) proves nothing, and the transaction is checked again next tick.
    const reorged = included.filter((r) => {
      const hash = canonical.get(r.block_number)
      return hash !== null && hash !== undefined && hash !== r.block_hash
    })
    const depth = chain.config.confirmations
    const atDepth = included.filter((r) => canonical.get(r.block_number) === r.block_hash && Number(head) - r.block_number + 1 >= depth)
    const disputed = await heightsInDispute(new Map(atDepth.map((r) => [r.block_number, r.block_hash])), head)
    const done = atDepth.filter((r) => !disputed.has(r.block_number))
    await noteDisputes(atDepth.filter((r) => disputed.has(r.block_number)))
    // Looked at again on the next tick (not the next block) where a height's block was not found (a lagging node) or
    // is disputed; else only once something changes.
    let decided = disputed.size === 0 && numbers.every((n) => canonical.has(n))
    signal.throwIfAborted()
    if (reorged.length) {
      log.warn({ transactions: reorged.map((r) => r.id) }, 'block reorged out; back to PENDING')
      await sql.begin(async (tx) => {
        // Compare-and-set on the block too: a row settled again in another block since it was read (by a second
        // leader briefly overlapping this one) is not this list's to move.
        const moved = await tx<{ id: string }[]>`
          UPDATE transactions t SET status = 'PENDING', ${clearMinedColumns(sql)}, updated_at = now()
          FROM unnest(${pgArray(reorged.map((r) => r.id))}::uuid[], ${pgArray(reorged.map((r) => r.block_hash))}::text[]) AS v(id, block_hash)
          WHERE t.id = v.id AND t.status = 'INCLUDED' AND t.block_hash = v.block_hash RETURNING t.id`
        // This execution's attempts only: a retried request's earlier ones keep the outcome they had.
        await tx`
          UPDATE attempts a SET status = 'SENT' FROM transactions t
          WHERE t.id = ANY(${pgArray(moved.map((m) => m.id))}::uuid[]) AND a.transaction_id = t.id AND a.execution = t.execution AND a.status IN ('MINED', 'REPLACED')`
        await tx`
          INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
          SELECT id, 'INCLUDED', 'PENDING', '{"reason":"reorg"}'::jsonb FROM unnest(${pgArray(moved.map((m) => m.id))}::uuid[]) AS id`
      })
      // The new chain may not carry them: send the latest attempt of each again (same bytes, so this is safe
      // even from a tick given up after the commit above: no signal check here). Not a request's own bytes past its
      // validUntil: sent again, they ran after the deadline, ahead of the cancel the bump stage sends on its next pass.
      const latest = await sql<{ transaction_id: string; nonce: number; hash: Hash; raw: Hash; purpose: string; past_valid_until: boolean }[]>`
        SELECT DISTINCT ON (a.transaction_id) a.transaction_id, a.nonce, a.hash, a.raw, a.purpose, COALESCE(t.valid_until <= now(), false) AS past_valid_until
        FROM attempts a JOIN transactions t ON t.id = a.transaction_id AND a.execution = t.execution
        WHERE t.id = ANY(${pgArray(reorged.map((r) => r.id))}::uuid[]) AND t.status = 'PENDING'
        ORDER BY a.transaction_id, a.id DESC`
      const again = latest.filter((r) => !(r.purpose === 'REQUEST' && r.past_valid_until))
      await broadcastAttempts(ctx, chain, again.map((r) => ({ transactionId: r.transaction_id, nonce: r.nonce, hash: r.hash, raw: r.raw })))
    }
    if (done.length) {
      signal.throwIfAborted()
      let finished: { included_at: Date | null; final_at: Date | null }[] = []
      const outcome = finalOutcomeSql(sql, 't.receipt_status')
      await sql.begin(async (tx) => {
        // Whichever attempt mined decides: the client's call (CONFIRMED/REVERTED) or our zero-value replacement (CANCELLED).
        const moved = await tx<{ id: string; status: string; included_at: Date | null; final_at: Date | null }[]>`
          UPDATE transactions t SET
            status = ${outcome.status},
            error_code = ${outcome.errorCode},
            error_message = ${outcome.errorMessage},
            at_fee_cap = NULL, final_at = now(), updated_at = now()
          FROM attempts a, unnest(${pgArray(done.map((r) => r.id))}::uuid[], ${pgArray(done.map((r) => r.block_hash))}::text[]) AS v(id, block_hash)
          -- Only in the block found canonical at its depth: one the row was settled in since (another leader) is not.
          WHERE t.id = v.id AND t.status = 'INCLUDED' AND t.block_hash = v.block_hash AND a.hash = t.mined_hash
          RETURNING t.id, t.status, t.included_at, t.final_at`
        finished = moved
        await tx`
          INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
          SELECT v.id, 'INCLUDED', v.status, jsonb_build_object('confirmations', ${depth}::int)
          FROM unnest(${pgArray(moved.map((m) => m.id))}::uuid[], ${pgArray(moved.map((m) => m.status))}::text[]) AS v(id, status)`
      })
      for (const m of finished) ctx.metrics?.observeStage(chainId, 'confirmation', m.included_at, m.final_at)
      // Some changed under it (another leader overlapping this one for a moment): looked at again next tick.
      if (finished.length < done.length) decided = false
    }
    if (decided) settledAt = { head, tip: cursor?.hash }
  }

  /** When the lock's connection was last seen holding it (a leader checks it every LEADERSHIP_CHECK_MS). */
  let leadershipCheckedAt = 0
  /** When the lock's connection last answered that it holds the lock (or took it). */
  let lockAnsweredAt = 0

  async function tick(signal: AbortSignal): Promise<void> {
    if (!(await tryLead(signal))) return
    // The lock lives on a connection nothing else uses: one dropped by an idle timeout, a pooler or a firewall
    // fails no tick (they use the pool), and Postgres gives the lock to another instance. Without this check
    // both went on leading, for good.
    if (Date.now() - leadershipCheckedAt >= LEADERSHIP_CHECK_MS) {
      await checkLeadership({ routine: true })
      if (!leader) return
      leadershipCheckedAt = Date.now()
    }
    const head = await chain.read.getBlockNumber({ cacheTime: 0 })
    // Confirmations and reorgs of INCLUDED transactions are followed even while the scan of new blocks fails (a
    // block a provider cannot serve): they need only their own blocks. The scan's error still fails the tick.
    let scanFailed: { err: unknown } | null = null
    try {
      await scanBlocks(head, signal)
    } catch (err) {
      if (signal.aborted) throw err
      scanFailed = { err }
    }
    // The safety net runs whether or not the scan did: it covers blocks the cursor already passed, and only ran
    // after a scan that did not fail (a block no provider serves stopped it for as long as that lasted).
    if (++ticks % RECEIPT_SWEEP_EVERY_TICKS === 0 || sweepNow) {
      try {
        await receiptSweep(head, signal)
        // Only once it ran: a jump's sweep that failed runs again on the next tick, not ten ticks later.
        sweepNow = false
      } catch (err) {
        if (signal.aborted) throw err
        scanFailed ??= { err }
      }
    }
    await advanceConfirmations(head, signal)
    if (scanFailed) throw scanFailed.err
  }

  /**
   * After a failed tick, make sure we still hold the lock we think we hold. If the
   * lock's connection died (Postgres restarted, network cut), Postgres released the
   * lock and another instance may lead now: step down and compete again. A reserved
   * connection is never returned to the pool while it may still hold the lock.
   */
  async function checkLeadership(opts: { routine?: boolean } = {}): Promise<void> {
    if (!reserved) return
    const conn = reserved
    const query = conn<{ held: boolean }[]>`
        SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                       AND classid = ${WATCH_LOCK_NAMESPACE} AND objid = ${chainId} AND granted) AS held`
    let slow = false
    const held = await withTimeout(query, 5_000, 'leadership check').then(
      ([row]) => row!.held,
      (err: Error) => {
        slow = err instanceof TimedOutError
        return null
      },
    )
    if (leader && held) {
      lockAnsweredAt = Date.now()
      return
    }
    // A slow answer on a routine check says nothing about the lock (Postgres, or this event loop, busy): stepping
    // down would leave the lock held by a connection nobody uses, and no instance watching. Checked again soon.
    // Not for ever: a lock connection silenced alone (a dropped NAT entry, a firewall failover) while the pool's
    // work well left this instance leading for as long as TCP took to give up (about 15 min), beside the instance
    // that took the lock once Postgres ended the silent session.
    if (opts.routine && slow && leader && Date.now() - lockAnsweredAt < LOCK_SILENT_STEP_DOWN_MS) return
    if (leader) log.warn('lost the watcher lock (its connection failed); competing for leadership again')
    leader = false
    reserved = null
    // An answering connection is unlocked and handed back; one that does not answer is abandoned, not pooled,
    // and unlocked and handed back if it answers after all (else it would hold the lock with no watcher behind it).
    if (held !== null) {
      await withTimeout(conn`SELECT pg_advisory_unlock_all()`, 5_000, 'unlock').catch(() => {})
      conn.release()
    } else {
      abandoned.add(conn)
      query.then(
        () => {
          if (!abandoned.delete(conn)) return
          conn`SELECT pg_advisory_unlock_all()`.then(
            () => conn.release(),
            () => {},
          )
        },
        () => abandoned.delete(conn),
      )
    }
  }

  // Followers try for the lock every 5 s; after a failed or hung tick, check we still hold it.
  const loop = startLoop(`watch ${chainId}`, () => (leader ? pollMs : 5_000), tick, log, { runTimeoutMs: TICK_TIMEOUT_MS, onError: () => checkLeadership() })

  return {
    isLeader: () => leader,
    async stop() {
      const ended = await loop.stop()
      // A tick still running past the stop's wait may still write: the lock is not handed back while it may (another
      // instance would lead beside it); it ends with the pool when the service closes its database.
      if (reserved && !ended && leader) {
        // Not leading from here on, whatever the tick still does (the leader gauge reads this).
        leader = false
        return
      }
      if (reserved) {
        // Bounded: a silent lock connection held the stop until main.ts's limit. Not handed back then (it may answer
        // later, still holding the lock): ended with the pool.
        const unlocked = leader
          ? await withTimeout(reserved`SELECT pg_advisory_unlock(${WATCH_LOCK_NAMESPACE}::int, ${chainId}::int)`, 5_000, 'unlock').then(
              () => true,
              (err: unknown) => !(err instanceof TimedOutError),
            )
          : true
        if (unlocked) reserved.release()
      }
      leader = false
    },
  }
}
