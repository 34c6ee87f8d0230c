import { spawn } from 'node:child_process'

/**
 * The service as `npm start` runs it: the build in dist/ (`npm run build`) under plain Node. The bench and the
 * tests that start the service as its own process use this, so they measure and test what users run (the
 * build's Node process is about 70 MB smaller than the same code run through tsx's loader).
 */
export const BUILT_SERVICE_ARGS = ['--enable-source-maps', 'dist/main.js']

/** Runs `npm run build` in the repository; rejects with the build's output when it fails. */
export function buildService(repoRoot: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', 'build'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (c: Buffer) => (output += c.toString()))
    child.stderr.on('data', (c: Buffer) => (output += c.toString()))
    child.once('error', reject)
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`npm run build failed (${signal ?? `exit ${code}`}):\n${output.slice(-4_000)}`)),
    )
  })
}
