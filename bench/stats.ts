/** Small numeric helpers for the bench. */

export type Percentiles = { count: number; min: number; p50: number; p95: number; p99: number; max: number; mean: number }

/** Nearest-rank percentiles; null for an empty sample. */
export function percentiles(values: ArrayLike<number>): Percentiles | null {
  const n = values.length
  if (n === 0) return null
  const sorted = Float64Array.from(values).sort()
  const at = (p: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!
  let sum = 0
  for (let i = 0; i < n; i++) sum += sorted[i]!
  return { count: n, min: sorted[0]!, p50: at(50), p95: at(95), p99: at(99), max: sorted[n - 1]!, mean: sum / n }
}

export function round(n: number, digits = 1): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}


export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)
}
