import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/**
 * `npm run build` (the TypeScript half): compiles src/ into a fresh directory and then swaps it in for
 * dist/, so a service already running from dist/ (whose pipeline child may be restarted at any time), a
 * bench or a test run never sees a half-written or emptied dist/. Types are checked by `npm test`, not here.
 */
const root = fileURLToPath(new URL('../..', import.meta.url))
const next = `${root}dist.next-${process.pid}`
const old = `${root}dist.old-${process.pid}`
const tsc = fileURLToPath(import.meta.resolve('typescript/bin/tsc'))
const result = spawnSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`, '--noCheck', '--outDir', next], { stdio: 'inherit' })
if (result.status !== 0) {
  rmSync(next, { recursive: true, force: true })
  process.exit(result.status ?? 1)
}
// Which build this is (src/pipeline/buildId.ts): a pipeline process restarted from a newer build refuses to run.
writeFileSync(`${next}/build-id`, `${new Date().toISOString()} ${randomUUID()}\n`)
const dist = `${root}dist`
if (existsSync(dist)) renameSync(dist, old)
renameSync(next, dist)
rmSync(old, { recursive: true, force: true })
