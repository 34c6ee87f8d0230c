import { describe, expect, it } from 'vitest'
import { currencySymbol } from '../src/chain/currencySymbol.ts'
import { formatGwei, formatValue } from '../web/src/format.ts'

describe("amounts in the chain's own currency (formatValue, currencySymbol)", () => {
  it('shows POL on Polygon, BNB on BNB Smart Chain, ETH where unknown, and what the config says first', () => {
    // Before, every amount on every chain read ETH.
    expect(currencySymbol({ chainId: 137 })).toBe('POL')
    expect(currencySymbol({ chainId: 56 })).toBe('BNB')
    expect(currencySymbol({ chainId: 1 })).toBe('ETH')
    expect(currencySymbol({ chainId: 31337 })).toBe('ETH')
    expect(currencySymbol({ chainId: 137, currencySymbol: 'MATIC' })).toBe('MATIC')
    expect(formatValue('1500000000000000000', 'POL')).toBe('1.5 POL')
    expect(formatValue('0', 'BNB')).toBe('0 BNB')
    expect(formatValue('1500000000000000000')).toBe('1.5 ETH')
  })
})

describe("the dashboard's fee format (formatGwei)", () => {
  it('keeps an L2 fee and its bump apart: four significant digits below 1 gwei', () => {
    // Before, both read "0.001 gwei": a 12.5% bump did not show.
    expect(formatGwei('1000000')).toBe('0.001 gwei')
    expect(formatGwei('1125000')).toBe('0.001125 gwei')
    expect(formatGwei('1265625')).toBe('0.001265 gwei')
    expect(formatGwei('10000000')).toBe('0.01 gwei')
    expect(formatGwei('11250000')).toBe('0.01125 gwei')
    expect(formatGwei('123456789')).toBe('0.1234 gwei')
    expect(formatGwei('999999999')).toBe('0.9999 gwei')
  })

  it('is unchanged elsewhere: wei below 0.001 gwei, three decimals from 1 gwei up', () => {
    expect(formatGwei(null)).toBe('—')
    expect(formatGwei('0')).toBe('0 gwei')
    expect(formatGwei('999999')).toBe('999,999 wei')
    expect(formatGwei('1000000000')).toBe('1 gwei')
    expect(formatGwei('1125000000')).toBe('1.125 gwei')
    expect(formatGwei('30123456789')).toBe('30.123 gwei')
    expect(formatGwei('1234567000000000')).toBe('1,234,567 gwei')
  })
})
