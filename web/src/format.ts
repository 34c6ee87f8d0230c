/** Display helpers. Amounts arrive as decimal strings (wei) and stay BigInt: no precision is lost. */

export function shortHex(hex: string | null | undefined, head = 6, tail = 4): string {
  if (!hex) return '—'
  return hex.length <= head + tail + 1 ? hex : `${hex.slice(0, head)}…${hex.slice(-tail)}`
}

export const shortId = (id: string): string => id.slice(0, 8)

/** 1234567 → "1,234,567". (BigInt's toLocaleString builds a formatter per call: too slow for a table.) */
export const grouped = (n: bigint | number | string): string => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',')

function units(wei: bigint, decimals: number, maxFraction: number): string {
  const base = 10n ** BigInt(decimals)
  const whole = wei / base
  let fraction = (wei % base).toString().padStart(decimals, '0').slice(0, maxFraction).replace(/0+$/, '')
  return `${grouped(whole)}${fraction ? `.${fraction}` : ''}`
}

/** "1.5 ETH", "0.000123 POL", or "77 wei" below a micro-unit; `symbol` is the chain's native currency (Chain.currencySymbol). */
export function formatValue(wei: string | null | undefined, symbol = 'ETH'): string {
  if (wei == null) return '—'
  const v = BigInt(wei)
  if (v === 0n) return `0 ${symbol}`
  if (v < 10n ** 12n) return `${grouped(v)} wei`
  return `${units(v, 18, 6)} ${symbol}`
}

/**
 * "1.5 gwei", "30.123 gwei"; below 1 gwei four significant digits, so an L2's fees and their bumps stay apart
 * ("0.001 gwei", "0.001125 gwei"); below 0.001 gwei, wei. (The page puts the exact wei in a title.)
 */
export function formatGwei(wei: string | null | undefined): string {
  if (wei == null) return '—'
  const v = BigInt(wei)
  if (v !== 0n && v < 1_000_000n) return `${grouped(v)} wei`
  if (v >= 1_000_000_000n) return `${units(v, 9, 3)} gwei`
  // v < 1 gwei has at most 9 digits: keep 4 of them after the leading zeros of the fraction.
  return `${units(v, 9, 9 - v.toString().length + 4)} gwei`
}

export const formatInt = (n: string | number | null | undefined): string => (n == null ? '—' : grouped(BigInt(n)))

/** "4s", "12m", "3h", "5d": how long ago. */
export function age(iso: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86_400) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86_400)}d`
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  // The browser's time, with its zone named: the API's messages and exports are in UTC (ISO 8601 with Z).
  const offset = -d.getTimezoneOffset()
  const zone = offset === 0 ? 'UTC' : `UTC${offset > 0 ? '+' : '−'}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)} ${zone}`
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
export const HASH_RE = /^0x[0-9a-f]{64}$/i
export const ADDRESS_RE = /^0x[0-9a-f]{40}$/i
