import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parseOptions } from '../bench/options.ts'

const REPO = fileURLToPath(new URL('..', import.meta.url))

/** Smoke test of `npm run bench`: the short run completes, cleans up and prints its table. No timing assertions. (dist/ is built by the test run's global setup.) */
describe('bench --quick', () => {
  it('runs to the end, exits 0 and prints the results table', async () => {
    // Not the default interval, so the smoke test also sees --block-time reach anvil, the service and the table.
    const child = spawn('npx', ['tsx', 'bench/run.ts', '--quick', '--no-build', '--block-time', '0.5'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const killer = setTimeout(() => {
      // The whole process group: npx, tsx and the bench (which stops its own anvil and service on SIGTERM).
      try {
        process.kill(-child.pid!, 'SIGTERM')
      } catch {}
    }, 140_000)
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
    clearTimeout(killer)
    const context = `exit ${code}\n--- stdout ---\n${stdout}\n--- stderr (tail) ---\n${stderr.slice(-4_000)}`
    expect(code, context).toBe(0)
    expect(stdout, context).toMatch(/tx-broadcaster bench \(--quick\)/)
    expect(stdout, context).toMatch(/measure\s+\| result\s+\| target\s+\| verdict/)
    for (const row of ['baseline', 'accept graphql', 'accept rest', 'drain', 'accept -> first broadcast', 'dashboard: first page', 'peak RSS'])
      expect(stdout, context).toContain(row)
    expect(stdout, context).toMatch(/accept -> included at [\d,]+\/s .*\(0\.5 s blocks\)/)
    expect(stderr, context).toContain('starting anvil (0.5 s blocks')
    expect(stdout, context).toMatch(/peak RSS of the service .*MB at most during the drain/)
    expect(stderr, context).toContain('database dropped')
    // CI installs chromium for the dashboard tests, so the dashboard step runs rather than being skipped.
    expect(stdout, context).toMatch(/dashboard: first page, [\d,]+ rows in the table \| [\d,]+ ms best of 3/)
  }, 150_000)
})

describe('bench options', () => {
  it('--block-time takes seconds from 0.1 to 60, and says so otherwise', () => {
    expect(parseOptions(['--block-time', '0.25'])).toMatchObject({ blockTimeSec: 0.25 })
    expect(parseOptions([])).toMatchObject({ blockTimeSec: 1 })
    expect(() => parseOptions(['--block-time', '0.01'])).toThrow(/--block-time: expected a number from 0.1 to 60, got "0.01"/)
    expect(() => parseOptions(['--block-time'])).toThrow(/--block-time needs a value/)
  })
})

describe('bench:receipts', () => {
  it('times receipts for blocks of the sizes given and prints the fitted ceiling', async () => {
    const child = spawn('npx', ['tsx', 'bench/receiptCost.ts', '20,60'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
    expect(code, out).toBe(0)
    expect(out).toMatch(/^\s+20\s+\d+\s+\d+\s+\d+/m)
    expect(out).toMatch(/^\s+60\s+\d+\s+\d+\s+\d+/m)
    expect(out).toMatch(/keeps up with at most ~[\d,]+ tx\/s/)
  }, 60_000)
})
