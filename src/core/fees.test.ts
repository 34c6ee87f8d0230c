import { describe, it, expect } from 'vitest'
import {
  addGasMargin,
  initialFees,
  maxCostWei,
  nextBumpFees,
  shouldRaiseFees,
  feeCapFor,
  feesAtCap,
  standsAtCap,
  percentToBps,
  raiseByBps,
  type Eip1559Fees,
  type FeeMarket,
  type Fees,
  type LegacyFees,
} from './fees.ts'

const GWEI = 1_000_000_000n
const BUMP = 1250n // 12.5 %
const CAP = 300n * GWEI

/** ceil(x * 1.125), independently of raiseByBps. */
const times1125Up = (x: bigint) => (x * 9n + 7n) / 8n

describe('percentToBps', () => {
  it.each([
    [12.5, 1250n],
    [10, 1000n],
    [0, 0n],
    [20, 2000n],
    [100, 10000n],
    [0.01, 1n],
    [1000, 100000n],
  ])('%s %% -> %s bps', (percent, bps) => {
    expect(percentToBps(percent)).toBe(bps)
  })
})

describe('raiseByBps', () => {
  it.each([
    // [x, bps, expected]
    [100n, 1250n, 113n], // 112.5 rounds up
    [8n, 1250n, 9n], // exact
    [1n, 1250n, 2n], // 1.125 rounds up
    [0n, 1250n, 0n],
    [1n, 0n, 1n],
    [7n, 1n, 8n], // 7.0007 rounds up
    [10_000n, 1n, 10_001n], // exact
    [1000n, 1000n, 1100n],
    [30n * GWEI, 1250n, 33_750_000_000n],
    [2n ** 255n, 10_000n, 2n ** 256n],
  ])('%s raised by %s bps = %s', (x, bps, expected) => {
    expect(raiseByBps(x, bps)).toBe(expected)
  })

  it('is never below the exact product (rounds up)', () => {
    for (const x of [1n, 3n, 7n, 99n, 12_345_678_901n, 999_999_999_999n]) {
      const r = raiseByBps(x, BUMP)
      expect(r * 10_000n).toBeGreaterThanOrEqual(x * 11_250n)
      expect((r - 1n) * 10_000n).toBeLessThan(x * 11_250n)
    }
  })
})

describe('initialFees', () => {
  const cases: ReadonlyArray<{ label: string; market: FeeMarket; cap: bigint; expected: Fees }> = [
    {
      label: 'eip1559: 2 × base + tip under the cap',
      market: { type: 'eip1559', baseFeePerGas: 10n * GWEI, maxPriorityFeePerGas: 2n * GWEI },
      cap: CAP,
      expected: { type: 'eip1559', maxFeePerGas: 22n * GWEI, maxPriorityFeePerGas: 2n * GWEI },
    },
    {
      label: 'eip1559: exactly at the cap',
      market: { type: 'eip1559', baseFeePerGas: 100n, maxPriorityFeePerGas: 10n },
      cap: 210n,
      expected: { type: 'eip1559', maxFeePerGas: 210n, maxPriorityFeePerGas: 10n },
    },
    {
      label: 'eip1559: capped',
      market: { type: 'eip1559', baseFeePerGas: 200n * GWEI, maxPriorityFeePerGas: 3n * GWEI },
      cap: CAP,
      expected: { type: 'eip1559', maxFeePerGas: CAP, maxPriorityFeePerGas: 3n * GWEI },
    },
    {
      label: 'eip1559: tip above the cap is clamped to maxFee',
      market: { type: 'eip1559', baseFeePerGas: 1n, maxPriorityFeePerGas: 500n },
      cap: 100n,
      expected: { type: 'eip1559', maxFeePerGas: 100n, maxPriorityFeePerGas: 100n },
    },
    {
      label: 'eip1559: zero tip',
      market: { type: 'eip1559', baseFeePerGas: 7n, maxPriorityFeePerGas: 0n },
      cap: CAP,
      expected: { type: 'eip1559', maxFeePerGas: 14n, maxPriorityFeePerGas: 0n },
    },
    {
      label: 'legacy: under the cap',
      market: { type: 'legacy', gasPrice: 5n * GWEI },
      cap: CAP,
      expected: { type: 'legacy', gasPrice: 5n * GWEI },
    },
    {
      label: 'legacy: capped',
      market: { type: 'legacy', gasPrice: 500n * GWEI },
      cap: CAP,
      expected: { type: 'legacy', gasPrice: CAP },
    },
  ]

  it.each(cases)('$label', ({ market, cap, expected }) => {
    expect(initialFees(market, cap)).toEqual(expected)
  })
})

describe('feeCapFor', () => {
  const ONE_COIN = 10n ** 18n
  it('is the chain cap until gas × cap would pass the whole-fee cap, then that cap over the gas, rounded down', () => {
    const caps = { maxFeePerGasCap: 500n * GWEI, maxTxFeeWei: ONE_COIN }
    expect(feeCapFor(caps, 21_000n)).toBe(500n * GWEI)
    expect(feeCapFor(caps, 2_000_000n)).toBe(500n * GWEI)
    // 3M gas: 1 coin / 3M = 333.33 gwei; 3M × that is just under 1 coin (geth refuses only over it).
    const cap = feeCapFor(caps, 3_000_000n)
    expect(cap).toBe(ONE_COIN / 3_000_000n)
    expect(cap * 3_000_000n <= ONE_COIN && (cap + 1n) * 3_000_000n > ONE_COIN).toBe(true)
    // The first fees and a raise stop there.
    expect(initialFees({ type: 'eip1559', baseFeePerGas: 200n * GWEI, maxPriorityFeePerGas: GWEI }, cap)).toEqual({ type: 'eip1559', maxFeePerGas: cap, maxPriorityFeePerGas: GWEI })
    expect(nextBumpFees({ type: 'eip1559', maxFeePerGas: cap, maxPriorityFeePerGas: GWEI }, { type: 'eip1559', baseFeePerGas: 300n * GWEI, maxPriorityFeePerGas: GWEI }, BUMP, cap).kind).toBe('at_cap')
  })
  it('null: no whole-fee cap', () => {
    expect(feeCapFor({ maxFeePerGasCap: 500n * GWEI, maxTxFeeWei: null }, 30_000_000n)).toBe(500n * GWEI)
  })
})

describe('standsAtCap', () => {
  it('is true exactly when the first attempt has no raise left under the cap', () => {
    // Clipped to the cap (2 × 200 gwei + tip is over 300 gwei), and exactly at it.
    expect(standsAtCap(initialFees({ type: 'eip1559', baseFeePerGas: 200n * GWEI, maxPriorityFeePerGas: GWEI }, CAP), CAP)).toBe(true)
    expect(standsAtCap({ type: 'eip1559', maxFeePerGas: CAP, maxPriorityFeePerGas: GWEI }, CAP)).toBe(true)
    expect(standsAtCap(initialFees({ type: 'legacy', gasPrice: 500n * GWEI }, CAP), CAP)).toBe(true)
    // Under the cap, even by one wei: the bump stage can still raise it (to the cap).
    expect(standsAtCap({ type: 'eip1559', maxFeePerGas: CAP - 1n, maxPriorityFeePerGas: CAP - 1n }, CAP)).toBe(false)
    expect(standsAtCap(initialFees({ type: 'eip1559', baseFeePerGas: 100n * GWEI, maxPriorityFeePerGas: GWEI }, CAP), CAP)).toBe(false)
    expect(standsAtCap(initialFees({ type: 'legacy', gasPrice: 299n * GWEI }, CAP), CAP)).toBe(false)
    // As the bump stage sees it: fees standing at the cap get no raise.
    expect(nextBumpFees({ type: 'eip1559', maxFeePerGas: CAP, maxPriorityFeePerGas: GWEI }, { type: 'eip1559', baseFeePerGas: GWEI, maxPriorityFeePerGas: GWEI }, BUMP, CAP).kind).toBe('at_cap')
  })
})

describe('nextBumpFees', () => {
  const quietMarket: FeeMarket = { type: 'eip1559', baseFeePerGas: 1n * GWEI, maxPriorityFeePerGas: 1n * GWEI }

  describe('eip1559', () => {
    const previous: Eip1559Fees = { type: 'eip1559', maxFeePerGas: 40n * GWEI, maxPriorityFeePerGas: 2n * GWEI }

    const cases: ReadonlyArray<{ label: string; previous: Eip1559Fees; market: FeeMarket; cap: bigint; expected: ReturnType<typeof nextBumpFees> }> = [
      {
        label: 'both fields raised by 12.5 % when the market is quiet',
        previous,
        market: quietMarket,
        cap: CAP,
        expected: { kind: 'bump', fees: { type: 'eip1559', maxFeePerGas: 45n * GWEI, maxPriorityFeePerGas: 2_250_000_000n }, reachedCap: false },
      },
      {
        label: 'rounds up odd values',
        previous: { type: 'eip1559', maxFeePerGas: 101n, maxPriorityFeePerGas: 3n },
        market: { type: 'eip1559', baseFeePerGas: 1n, maxPriorityFeePerGas: 1n },
        cap: CAP,
        expected: { kind: 'bump', fees: { type: 'eip1559', maxFeePerGas: 114n, maxPriorityFeePerGas: 4n }, reachedCap: false },
      },
      {
        label: 'takes the current estimate when it is higher than the bump',
        previous,
        market: { type: 'eip1559', baseFeePerGas: 50n * GWEI, maxPriorityFeePerGas: 5n * GWEI },
        cap: CAP,
        expected: { kind: 'bump', fees: { type: 'eip1559', maxFeePerGas: 105n * GWEI, maxPriorityFeePerGas: 5n * GWEI }, reachedCap: false },
      },
      {
        label: 'mixes: estimate for maxFee, bump for the tip',
        previous,
        market: { type: 'eip1559', baseFeePerGas: 30n * GWEI, maxPriorityFeePerGas: 1n * GWEI },
        cap: CAP,
        expected: { kind: 'bump', fees: { type: 'eip1559', maxFeePerGas: 61n * GWEI, maxPriorityFeePerGas: 2_250_000_000n }, reachedCap: false },
      },
      {
        label: 'current estimate above the cap is capped, bump still fits',
        previous,
        market: { type: 'eip1559', baseFeePerGas: 400n * GWEI, maxPriorityFeePerGas: 2n * GWEI },
        cap: CAP,
        expected: { kind: 'bump', fees: { type: 'eip1559', maxFeePerGas: CAP, maxPriorityFeePerGas: 2_250_000_000n }, reachedCap: true },
      },
      {
        label: 'bump landing exactly on the cap is allowed',
        previous: { type: 'eip1559', maxFeePerGas: 80n, maxPriorityFeePerGas: 8n },
        market: { type: 'eip1559', baseFeePerGas: 1n, maxPriorityFeePerGas: 1n },
        cap: 90n,
        expected: { kind: 'bump', fees: { type: 'eip1559', maxFeePerGas: 90n, maxPriorityFeePerGas: 9n }, reachedCap: true },
      },
      {
        label: 'at_cap when the bump would exceed the cap: previous fees returned',
        previous: { type: 'eip1559', maxFeePerGas: 280n * GWEI, maxPriorityFeePerGas: 2n * GWEI },
        market: quietMarket,
        cap: CAP,
        expected: { kind: 'at_cap', fees: { type: 'eip1559', maxFeePerGas: 280n * GWEI, maxPriorityFeePerGas: 2n * GWEI } },
      },
      {
        label: 'at_cap when already at the cap',
        previous: { type: 'eip1559', maxFeePerGas: CAP, maxPriorityFeePerGas: 2n * GWEI },
        market: { type: 'eip1559', baseFeePerGas: 500n * GWEI, maxPriorityFeePerGas: 2n * GWEI },
        cap: CAP,
        expected: { kind: 'at_cap', fees: { type: 'eip1559', maxFeePerGas: CAP, maxPriorityFeePerGas: 2n * GWEI } },
      },
      {
        label: 'the full step passes the cap but the cap is still a 10 % raise: the cap',
        previous: { type: 'eip1559', maxFeePerGas: 80n, maxPriorityFeePerGas: 8n },
        market: { type: 'eip1559', baseFeePerGas: 1n, maxPriorityFeePerGas: 1n },
        cap: 89n,
        expected: { kind: 'bump', fees: { type: 'eip1559', maxFeePerGas: 89n, maxPriorityFeePerGas: 9n }, reachedCap: true },
      },
      {
        label: 'at_cap when even a 10 % raise passes the cap',
        previous: { type: 'eip1559', maxFeePerGas: 80n, maxPriorityFeePerGas: 8n },
        market: { type: 'eip1559', baseFeePerGas: 1n, maxPriorityFeePerGas: 1n },
        cap: 87n,
        expected: { kind: 'at_cap', fees: { type: 'eip1559', maxFeePerGas: 80n, maxPriorityFeePerGas: 8n } },
      },
      {
        label: 'a tip next to the max fee: both go to the cap when it is a 10 % raise of each',
        previous: { type: 'eip1559', maxFeePerGas: 100n, maxPriorityFeePerGas: 100n },
        market: { type: 'eip1559', baseFeePerGas: 1n, maxPriorityFeePerGas: 1n },
        cap: 111n,
        expected: { kind: 'bump', fees: { type: 'eip1559', maxFeePerGas: 111n, maxPriorityFeePerGas: 111n }, reachedCap: true },
      },
      {
        label: 'tip bump never exceeds the new maxFee',
        previous: { type: 'eip1559', maxFeePerGas: 100n, maxPriorityFeePerGas: 100n },
        market: { type: 'eip1559', baseFeePerGas: 1n, maxPriorityFeePerGas: 1n },
        cap: CAP,
        expected: { kind: 'bump', fees: { type: 'eip1559', maxFeePerGas: 113n, maxPriorityFeePerGas: 113n }, reachedCap: false },
      },
    ]

    it.each(cases)('$label', ({ previous, market, cap, expected }) => {
      expect(nextBumpFees(previous, market, BUMP, cap)).toEqual(expected)
    })

    it.each([
      { maxFeePerGas: 1n, maxPriorityFeePerGas: 1n },
      { maxFeePerGas: 7n, maxPriorityFeePerGas: 3n },
      { maxFeePerGas: 21_000_000_001n, maxPriorityFeePerGas: 1_000_000_001n },
      { maxFeePerGas: 123_456_789_012n, maxPriorityFeePerGas: 98_765_431n },
    ])('each field ≥ previous × 1.125 rounded up ($maxFeePerGas, $maxPriorityFeePerGas)', (prev) => {
      const decision = nextBumpFees({ type: 'eip1559', ...prev }, quietMarket, BUMP, CAP)
      expect(decision.kind).toBe('bump')
      const fees = decision.fees as Eip1559Fees
      expect(fees.maxFeePerGas).toBeGreaterThanOrEqual(times1125Up(prev.maxFeePerGas))
      expect(fees.maxPriorityFeePerGas).toBeGreaterThanOrEqual(times1125Up(prev.maxPriorityFeePerGas))
      expect(fees.maxPriorityFeePerGas).toBeLessThanOrEqual(fees.maxFeePerGas)
      expect(fees.maxFeePerGas).toBeLessThanOrEqual(CAP)
    })

    it('successive bumps keep growing by ≥ 12.5 % until at_cap', () => {
      let fees: Fees = initialFees(quietMarket, CAP)
      let bumps = 0
      for (;;) {
        const d = nextBumpFees(fees, quietMarket, BUMP, CAP)
        if (d.kind === 'at_cap') {
          expect(d.fees).toEqual(fees)
          break
        }
        const prev = fees as Eip1559Fees
        const next = d.fees as Eip1559Fees
        expect(next.maxFeePerGas).toBeGreaterThanOrEqual(times1125Up(prev.maxFeePerGas))
        expect(next.maxPriorityFeePerGas).toBeGreaterThanOrEqual(times1125Up(prev.maxPriorityFeePerGas))
        fees = next
        bumps++
        expect(bumps).toBeLessThan(100)
      }
      expect(bumps).toBeGreaterThan(0)
    })
  })

  describe('legacy', () => {
    const legacyMarket = (gasPrice: bigint): FeeMarket => ({ type: 'legacy', gasPrice })
    const cases: ReadonlyArray<{ label: string; previous: LegacyFees; market: FeeMarket; cap: bigint; expected: ReturnType<typeof nextBumpFees> }> = [
      {
        label: 'raised by 12.5 %',
        previous: { type: 'legacy', gasPrice: 20n * GWEI },
        market: legacyMarket(10n * GWEI),
        cap: CAP,
        expected: { kind: 'bump', fees: { type: 'legacy', gasPrice: 22_500_000_000n }, reachedCap: false },
      },
      {
        label: 'rounded up',
        previous: { type: 'legacy', gasPrice: 9n },
        market: legacyMarket(1n),
        cap: CAP,
        expected: { kind: 'bump', fees: { type: 'legacy', gasPrice: 11n }, reachedCap: false },
      },
      {
        label: 'takes the current gas price when higher',
        previous: { type: 'legacy', gasPrice: 20n * GWEI },
        market: legacyMarket(50n * GWEI),
        cap: CAP,
        expected: { kind: 'bump', fees: { type: 'legacy', gasPrice: 50n * GWEI }, reachedCap: false },
      },
      {
        label: 'current price above the cap is capped',
        previous: { type: 'legacy', gasPrice: 20n * GWEI },
        market: legacyMarket(900n * GWEI),
        cap: CAP,
        expected: { kind: 'bump', fees: { type: 'legacy', gasPrice: CAP }, reachedCap: true },
      },
      {
        label: 'at_cap when the bump would exceed the cap',
        previous: { type: 'legacy', gasPrice: 280n * GWEI },
        market: legacyMarket(10n * GWEI),
        cap: CAP,
        expected: { kind: 'at_cap', fees: { type: 'legacy', gasPrice: 280n * GWEI } },
      },
      {
        label: 'bump exactly at the cap is allowed',
        previous: { type: 'legacy', gasPrice: 80n },
        market: legacyMarket(1n),
        cap: 90n,
        expected: { kind: 'bump', fees: { type: 'legacy', gasPrice: 90n }, reachedCap: true },
      },
      {
        label: 'the full step passes the cap but the cap is still a 10 % raise: the cap',
        previous: { type: 'legacy', gasPrice: 100n },
        market: legacyMarket(1n),
        cap: 111n,
        expected: { kind: 'bump', fees: { type: 'legacy', gasPrice: 111n }, reachedCap: true },
      },
      {
        label: 'at_cap when even a 10 % raise passes the cap',
        previous: { type: 'legacy', gasPrice: 100n },
        market: legacyMarket(1n),
        cap: 109n,
        expected: { kind: 'at_cap', fees: { type: 'legacy', gasPrice: 100n } },
      },
    ]

    it('after a "replacement underpriced" (a doubled step) the cap is still taken when it is a 10 % raise', () => {
      expect(nextBumpFees({ type: 'legacy', gasPrice: 100n }, legacyMarket(1n), BUMP * 2n, 120n)).toEqual({
        kind: 'bump',
        fees: { type: 'legacy', gasPrice: 120n },
        reachedCap: true,
      })
    })

    it.each(cases)('$label', ({ previous, market, cap, expected }) => {
      expect(nextBumpFees(previous, market, BUMP, cap)).toEqual(expected)
    })

    it('on an eip1559 market still bumps by the step, and to at least its base fee plus tip', () => {
      expect(nextBumpFees({ type: 'legacy', gasPrice: 8n * GWEI }, quietMarket, BUMP, CAP)).toEqual({ kind: 'bump', fees: { type: 'legacy', gasPrice: 9n * GWEI }, reachedCap: false })
      expect(nextBumpFees({ type: 'legacy', gasPrice: 8n }, quietMarket, BUMP, CAP)).toEqual({ kind: 'bump', fees: { type: 'legacy', gasPrice: 2n * GWEI }, reachedCap: false })
    })
  })
})

describe('nextBumpFees after the chain\'s fee model changed while it was pending', () => {
  it('a legacy attempt on a market now read as eip1559 is raised to at least the base fee plus today\'s tip', () => {
    // Before: today's estimate counted as 0 for it: 3.375 gwei against a market at 42, catching up 12.5 % a pass.
    const market: FeeMarket = { type: 'eip1559', baseFeePerGas: 40n * GWEI, maxPriorityFeePerGas: 2n * GWEI }
    expect(nextBumpFees({ type: 'legacy', gasPrice: 3n * GWEI }, market, BUMP, CAP)).toEqual({ kind: 'bump', fees: { type: 'legacy', gasPrice: 42n * GWEI }, reachedCap: false })
  })

  it('an eip1559 attempt on a market now read as legacy is raised to at least today\'s gas price in both fields', () => {
    const market: FeeMarket = { type: 'legacy', gasPrice: 50n * GWEI }
    expect(nextBumpFees({ type: 'eip1559', maxFeePerGas: 4n * GWEI, maxPriorityFeePerGas: 1n * GWEI }, market, BUMP, CAP)).toEqual({
      kind: 'bump',
      fees: { type: 'eip1559', maxFeePerGas: 50n * GWEI, maxPriorityFeePerGas: 50n * GWEI },
      reachedCap: false,
    })
  })
})

describe('addGasMargin', () => {
  it.each([
    [21_000n, 20, 25_200n],
    [21_000n, 0, 21_000n],
    [100_001n, 20, 120_002n], // 120001.2 rounds up
    [50_000n, 12.5, 56_250n],
    [1n, 20, 2n],
    [0n, 20, 0n],
    [33_333n, 200, 99_999n],
    // EIP-7825: the margin stops at 2^24 when the estimate fits under it, and adds nothing to one past it.
    [14_000_000n, 20, 16_777_216n],
    [17_000_000n, 20, 17_000_000n],
  ])('%s gas + %s %% = %s', (gas, margin, expected) => {
    expect(addGasMargin(gas, margin)).toBe(expected)
  })

  it('on a chain without EIP-7825 (txGasLimitCap false) the margin applies in full past 2^24', () => {
    // Before: cut to 2^24 on every chain (a 20M-gas estimate got no margin at all on Arbitrum).
    expect(addGasMargin(14_000_000n, 20, false)).toBe(16_800_000n)
    expect(addGasMargin(20_000_000n, 20, false)).toBe(24_000_000n)
  })
})

describe('maxCostWei', () => {
  it.each<{ label: string; fees: Fees; gasLimit: bigint; value: bigint; expected: bigint }>([
    {
      label: 'eip1559 uses maxFeePerGas, not the tip',
      fees: { type: 'eip1559', maxFeePerGas: 30n * GWEI, maxPriorityFeePerGas: 2n * GWEI },
      gasLimit: 21_000n,
      value: 0n,
      expected: 630_000n * GWEI,
    },
    {
      label: 'eip1559 plus value',
      fees: { type: 'eip1559', maxFeePerGas: 10n, maxPriorityFeePerGas: 1n },
      gasLimit: 100n,
      value: 5n,
      expected: 1005n,
    },
    {
      label: 'legacy uses gasPrice',
      fees: { type: 'legacy', gasPrice: 7n },
      gasLimit: 21_000n,
      value: 10n ** 18n,
      expected: 147_000n + 10n ** 18n,
    },
    {
      label: 'no overflow past 2^64 (bigint)',
      fees: { type: 'legacy', gasPrice: 2n ** 64n },
      gasLimit: 2n ** 32n,
      value: 1n,
      expected: 2n ** 96n + 1n,
    },
  ])('$label', ({ fees, gasLimit, value, expected }) => {
    expect(maxCostWei(fees, gasLimit, value)).toBe(expected)
  })
})

describe('feesAtCap', () => {
  const market: FeeMarket = { type: 'eip1559', baseFeePerGas: 10n * GWEI, maxPriorityFeePerGas: 2n * GWEI }
  it('takes the cap as max fee and the higher of the previous and today\'s tip, within the cap', () => {
    expect(feesAtCap({ type: 'eip1559', maxFeePerGas: 20n * GWEI, maxPriorityFeePerGas: GWEI }, market, 25n * GWEI)).toEqual({
      type: 'eip1559',
      maxFeePerGas: 25n * GWEI,
      maxPriorityFeePerGas: 2n * GWEI,
    })
    expect(feesAtCap({ type: 'eip1559', maxFeePerGas: 20n * GWEI, maxPriorityFeePerGas: 3n * GWEI }, market, 25n * GWEI)).toMatchObject({ maxPriorityFeePerGas: 3n * GWEI })
    expect(feesAtCap({ type: 'eip1559', maxFeePerGas: 20n * GWEI, maxPriorityFeePerGas: 30n * GWEI }, market, 25n * GWEI)).toMatchObject({ maxPriorityFeePerGas: 25n * GWEI })
  })
  it('legacy: the gas price is the cap', () => {
    expect(feesAtCap({ type: 'legacy', gasPrice: 20n * GWEI }, { type: 'legacy', gasPrice: 30n * GWEI }, 25n * GWEI)).toEqual({ type: 'legacy', gasPrice: 25n * GWEI })
  })
})

describe('shouldRaiseFees', () => {
  const market: FeeMarket = { type: 'eip1559', baseFeePerGas: 10n * GWEI, maxPriorityFeePerGas: GWEI }
  const meets: Eip1559Fees = { type: 'eip1559', maxFeePerGas: 21n * GWEI, maxPriorityFeePerGas: GWEI }
  const base = { headOfLine: false, taken: true, refusedForFees: false, fees: meets, market }

  it('raises the lowest waiting nonce that a node holds', () => {
    expect(shouldRaiseFees({ ...base, headOfLine: true })).toBe(true)
  })
  it('sends the same bytes for one waiting behind a lower nonce while its fees meet the market', () => {
    expect(shouldRaiseFees(base)).toBe(false)
  })
  it('raises one behind a lower nonce once the base fee passed its max fee, or the tip its tip', () => {
    expect(shouldRaiseFees({ ...base, fees: { ...meets, maxFeePerGas: 11n * GWEI - 1n } })).toBe(true)
    expect(shouldRaiseFees({ ...base, fees: { ...meets, maxFeePerGas: 11n * GWEI } })).toBe(false)
    expect(shouldRaiseFees({ ...base, fees: { ...meets, maxPriorityFeePerGas: GWEI - 1n } })).toBe(true)
  })
  it('raises when a node refused it for its fees and none took it, wherever it is in the line', () => {
    expect(shouldRaiseFees({ ...base, refusedForFees: true, taken: false })).toBe(true)
  })
  it('sends the same bytes behind a lower nonce when one node refused it for its fees but another took it', () => {
    expect(shouldRaiseFees({ ...base, refusedForFees: true })).toBe(false)
    expect(shouldRaiseFees({ ...base, refusedForFees: true, headOfLine: true })).toBe(true)
  })
  it('sends the same bytes at the head of the line when no node took it for another reason', () => {
    expect(shouldRaiseFees({ ...base, headOfLine: true, taken: false })).toBe(false)
  })
  it('legacy: compares the gas price with the market', () => {
    const legacyMarket: FeeMarket = { type: 'legacy', gasPrice: 5n * GWEI }
    const fees: LegacyFees = { type: 'legacy', gasPrice: 5n * GWEI }
    expect(shouldRaiseFees({ ...base, market: legacyMarket, fees })).toBe(false)
    expect(shouldRaiseFees({ ...base, market: legacyMarket, fees: { type: 'legacy', gasPrice: 5n * GWEI - 1n } })).toBe(true)
    expect(shouldRaiseFees({ ...base, market, fees: { type: 'legacy', gasPrice: 11n * GWEI } })).toBe(false)
  })
})
