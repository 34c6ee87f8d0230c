import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BUILT_SERVICE_ARGS } from '../../src/dev/builtService.ts'
import { freePort } from '../../src/dev/freePort.ts'

/** The service as its own OS process (the build in dist/, as `npm start` runs it, with `--config ...`), so tests can SIGKILL it. */
export type ServiceProcess = {
  pid: number
  port: number
  url: string
  /** Everything it printed so far. */
  output: () => string
  kill9: () => Promise<void>
  alive: () => boolean
}

/** Writes a config file (with `${NAME}` placeholders allowed) into a temp dir and returns its path. */
export function writeConfigFile(config: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'txb-config-')), 'config.json')
  writeFileSync(path, JSON.stringify(config))
  return path
}

export async function startServiceProcess(opts: {
  configPath: string
  databaseUrl: string
  port?: number
  env?: Record<string, string>
  logLevel?: string
}): Promise<ServiceProcess> {
  // A port found free can be taken by another test file's anvil or service before the child binds it:
  // with no port asked for, such a start is retried on a new one.
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort())
    try {
      return await launch(opts, port)
    } catch (err) {
      if (opts.port !== undefined || attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err
    }
  }
}

async function launch(
  opts: { configPath: string; databaseUrl: string; env?: Record<string, string>; logLevel?: string },
  port: number,
): Promise<ServiceProcess> {
  const child: ChildProcess = spawn(process.execPath, [...BUILT_SERVICE_ARGS, '--config', opts.configPath], {
    cwd: join(import.meta.dirname, '..', '..'),
    env: { ...process.env, ...opts.env, DATABASE_URL: opts.databaseUrl, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: opts.logLevel ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start:\n${out.slice(-3000)}`)), 60_000)
    const onData = () => {
      if (out.includes('tx-broadcaster is running')) {
        clearTimeout(timer)
        child.stdout!.off('data', onData)
        child.off('exit', onExit)
        resolve()
      }
    }
    const onExit = (code: number | null) => {
      clearTimeout(timer)
      reject(new Error(`service exited (${code}) during start:\n${out.slice(-3000)}`))
    }
    child.stdout!.on('data', onData)
    child.once('exit', onExit)
  })
  return {
    pid: child.pid!,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    alive: () => child.exitCode === null && child.signalCode === null,
    kill9: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGKILL')
      }),
  }
}
