/**
 * Fee policy: pure bigint arithmetic, no floats, no I/O.
 * Percentages are carried as basis points so 12.5 % is exact.
 */

export type Eip1559Fees = { type: 'eip1559'; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }
export type LegacyFees = { type: 'legacy'; gasPrice: bigint }
export type Fees = Eip1559Fees | LegacyFees

export type FeeMarket =
  | { type: 'eip1559'; baseFeePerGas: bigint; maxPriorityFeePerGas: bigint }
  | { type: 'legacy'; gasPrice: bigint }

const BPS = 10_000n

export function percentToBps(percent: number): bigint {
  return BigInt(Math.round(percent * 100))
}

/** x * (1 + bps/10000), rounded up so a bump is never below the node's minimum. */
export function raiseByBps(x: bigint, bps: bigint): bigint {
  return (x * (BPS + bps) + BPS - 1n) / BPS
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b
}
function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b
}

/** What caps a transaction's fees: the chain's `fees` config. */
export type FeeCaps = { maxFeePerGasCap: bigint; maxTxFeeWei: bigint | null }

/**
 * The highest max fee per gas (gas price on legacy chains) a transaction with this gas limit may be signed at: the
 * chain's `maxFeePerGasCap`, and no more than `maxTxFeeWei / gas`. Nodes refuse a transaction whose whole fee (gas
 * limit × max fee) is over their own cap (geth's `rpc.txfeecap`, 1 coin by default, and its forks'), in words the
 * classifier cannot act on: signed over it, a first attempt was refused until patience.sendMs failed it, and a
 * raise past it left the transaction PENDING with its refused bytes sent again, no `atFeeCap`, and the attempt a
 * node held never sent again. Under it, such a transaction goes out, and a raise that would pass it stops at the cap.
 */
export function feeCapFor(caps: FeeCaps, gas: bigint): bigint {
  if (caps.maxTxFeeWei === null || gas <= 0n) return caps.maxFeePerGasCap
  return min(caps.maxFeePerGasCap, caps.maxTxFeeWei / gas)
}

/**
 * Fees for a first attempt. maxFee = 2 × baseFee + tip survives six full blocks
 * of +12.5 % base fee growth before the transaction needs a bump.
 */
export function initialFees(market: FeeMarket, capWei: bigint): Fees {
  if (market.type === 'legacy') return { type: 'legacy', gasPrice: min(market.gasPrice, capWei) }
  const maxFeePerGas = min(market.baseFeePerGas * 2n + market.maxPriorityFeePerGas, capWei)
  return { type: 'eip1559', maxFeePerGas, maxPriorityFeePerGas: min(market.maxPriorityFeePerGas, maxFeePerGas) }
}

/**
 * Whether fees as signed stand at the cap: the bump stage has no raise left for them, so the transaction shows
 * `atFeeCap` from its first attempt on (a market above half the cap clips the first attempt's max fee to it).
 */
export function standsAtCap(fees: Fees, capWei: bigint): boolean {
  return (fees.type === 'legacy' ? fees.gasPrice : fees.maxFeePerGas) >= capWei
}

export type BumpDecision =
  /** New fees for a replacement; `reachedCap` when they are the cap. */
  | { kind: 'bump'; fees: Fees; reachedCap: boolean }
  /** No valid replacement fits under the cap: rebroadcast the same bytes and report the transaction as stuck at the cap. */
  | { kind: 'at_cap'; fees: Fees }

/** The smallest raise nodes take as a replacement of a pooled transaction (geth's and besu's default price bump). */
export const MIN_REPLACEMENT_BPS = 1000n

/**
 * The next attempt's fees: both fields raised by at least `bumpBps` (nodes refuse a
 * replacement that raises only one) and to at least today's estimate, but never
 * above the cap. When the full step would pass the cap, the cap itself is taken as
 * long as it is still a valid replacement (at least `MIN_REPLACEMENT_BPS` over the
 * previous); when even that does not fit, the answer is `at_cap`.
 */
export function nextBumpFees(previous: Fees, market: FeeMarket, bumpBps: bigint, capWei: bigint): BumpDecision {
  const current = initialFees(market, capWei)
  // The full step, or else the cap itself if that is still a replacement nodes take.
  const raised = (x: bigint): bigint | null => {
    const wanted = raiseByBps(x, bumpBps)
    if (wanted <= capWei) return wanted
    return raiseByBps(x, min(bumpBps, MIN_REPLACEMENT_BPS)) <= capWei ? capWei : null
  }
  if (previous.type === 'legacy') {
    const minimum = raised(previous.gasPrice)
    if (minimum === null) return { kind: 'at_cap', fees: previous }
    // Today's estimate in the previous attempt's kind (the model switched to eip1559 while it was pending): the base
    // fee plus today's tip. Taken as 0, a bump was only the step, and caught up with the market 12.5 % at a time.
    const today = market.type === 'legacy' ? market.gasPrice : market.baseFeePerGas + market.maxPriorityFeePerGas
    const wanted = min(max(minimum, today), capWei)
    return { kind: 'bump', fees: { type: 'legacy', gasPrice: wanted }, reachedCap: wanted === capWei }
  }
  // The model switched to legacy while it was pending: today's gas price as both fields (so it pays at most that).
  const cur = current.type === 'eip1559' ? current : { maxFeePerGas: current.gasPrice, maxPriorityFeePerGas: current.gasPrice }
  const minFee = raised(previous.maxFeePerGas)
  const minTip = raised(previous.maxPriorityFeePerGas)
  if (minFee === null || minTip === null) return { kind: 'at_cap', fees: previous }
  const maxFeePerGas = min(max(minFee, cur.maxFeePerGas), capWei)
  const maxPriorityFeePerGas = min(max(minTip, cur.maxPriorityFeePerGas), maxFeePerGas)
  return { kind: 'bump', fees: { type: 'eip1559', maxFeePerGas, maxPriorityFeePerGas }, reachedCap: maxFeePerGas === capWei }
}

/**
 * Fees at the cap, for a cancel past its deadline when no valid replacement fits under the cap: the max fee (or gas
 * price) is the cap, the tip the previous one or today's, whichever is higher, within the cap. A node still holding
 * the request refuses it as an underpriced replacement (nothing lost); one that dropped it takes it, and the cancel
 * takes the nonce instead of the request running late.
 */
export function feesAtCap(previous: Fees, market: FeeMarket, capWei: bigint): Fees {
  if (previous.type === 'legacy') return { type: 'legacy', gasPrice: capWei }
  const tip = max(previous.maxPriorityFeePerGas, market.type === 'eip1559' ? market.maxPriorityFeePerGas : 0n)
  return { type: 'eip1559', maxFeePerGas: capWei, maxPriorityFeePerGas: min(tip, capWei) }
}

/** EIP-7825: no transaction may have a gas limit over 2^24 on chains since Osaka. */
export const TX_GAS_LIMIT_CAP = 16_777_216n

/**
 * gas × (1 + margin), rounded up. On a chain with EIP-7825 (`txGasLimitCap`) the margin never lifts a limit past its
 * per-transaction cap, which nodes refuse outright; an estimate that fits leaves room to the cap, and one past it is
 * refused as invalid anyway.
 */
export function addGasMargin(gas: bigint, marginPercent: number, txGasLimitCap = true): bigint {
  const raised = raiseByBps(gas, percentToBps(marginPercent))
  return txGasLimitCap ? min(raised, max(gas, TX_GAS_LIMIT_CAP)) : raised
}

/** Most wei a transaction can cost up front: what the node checks against the balance. */
export function maxCostWei(fees: Fees, gasLimit: bigint, value: bigint): bigint {
  const perGas = fees.type === 'legacy' ? fees.gasPrice : fees.maxFeePerGas
  return perGas * gasLimit + value
}

/**
 * Whether fees as signed could be included in the next block at today's prices: the max fee covers the base fee
 * plus today's tip, and the tip is today's (legacy: the gas price is today's).
 */
export function meetsMarket(fees: Fees, market: FeeMarket): boolean {
  if (market.type === 'legacy') return (fees.type === 'legacy' ? fees.gasPrice : fees.maxFeePerGas) >= market.gasPrice
  if (fees.type === 'legacy') return fees.gasPrice >= market.baseFeePerGas + market.maxPriorityFeePerGas
  return fees.maxFeePerGas >= market.baseFeePerGas + market.maxPriorityFeePerGas && fees.maxPriorityFeePerGas >= market.maxPriorityFeePerGas
}

export type StalledAttempt = {
  /** The signer's lowest nonce still waiting: the one its later transactions wait behind. */
  headOfLine: boolean
  /** A node took the latest attempt (some provider answered "sent"). */
  taken: boolean
  /** A node refused it for its fees (too low now, or too small a raise over an attempt it holds). */
  refusedForFees: boolean
  fees: Fees
  market: FeeMarket
}

/**
 * What the timeout stage does with a transaction not included `bumpAfterMs` after its last send: raise its fees
 * (true), or send the same bytes again (false). Raising costs the signer real money on every transaction it
 * touches, so it is done only where fees are what holds the transaction back:
 * - its fees no longer meet the market: raise, wherever it is in the line;
 * - a node said the fees are too low and no node took it: raise (taken by another node, it waits there like any
 *   other: a provider that always refuses, such as one with a higher minimum price or a full pool, raised a whole
 *   backlog behind a stuck nonce on every pass, up to the cap);
 * - it is the signer's lowest waiting nonce and a node holds it at fees that meet the market: raise (the classic
 *   stuck transaction; a node may also have dropped it);
 * - otherwise it waits behind a lower nonce (which is bumped itself), or no node took it for another reason (an
 *   unrecognized refusal, short funds, all providers down): higher fees would not help, so the same bytes.
 */
export function shouldRaiseFees(s: StalledAttempt): boolean {
  if (!meetsMarket(s.fees, s.market)) return true
  if (s.refusedForFees && !s.taken) return true
  return s.headOfLine && s.taken
}
