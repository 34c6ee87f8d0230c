import { Writable } from 'node:stream'
import { createPublicClient, http, type PublicClient } from 'viem'
import { parseConfig } from '../../src/config/loadConfig.ts'
import type { FileConfig } from '../../src/config/schema.ts'
import { createLogger, type Logger } from '../../src/common/logger.ts'
import { ANVIL_DEV_ACCOUNTS, startAnvil, type Anvil, type StartAnvilOptions } from '../../src/dev/startAnvil.ts'
import { startService, type RunningService } from '../../src/service.ts'
import { createTestDatabase } from './database.ts'

export const ADMIN_KEY = 'test-admin-key-0123456789'
export const SIGNER = ANVIL_DEV_ACCOUNTS[0]
export const RECIPIENT = ANVIL_DEV_ACCOUNTS[2].address

export type TestEnv = {
  anvil: Anvil
  service: RunningService
  chain: PublicClient
  databaseUrl: string
  /** POST JSON to the service with the admin key. */
  post: (path: string, body: unknown, headers?: Record<string, string>) => Promise<{ status: number; json: any }>
  get: (path: string) => Promise<{ status: number; json: any }>
  graphql: (query: string, variables?: Record<string, unknown>) => Promise<{ status: number; json: any }>
  stop: () => Promise<void>
}

export function testConfig(rpcUrl: string, overrides: (c: Record<string, any>) => void = () => {}): FileConfig {
  const raw: Record<string, any> = {
    chains: [{ chainId: 31337, name: 'anvil', providers: [{ name: 'anvil', url: rpcUrl }], confirmations: 1, blockTimeMs: 200 }],
    signers: [{ name: 'anvil-0', chainIds: [31337], privateKey: SIGNER.privateKey }],
    apiKeys: [{ name: 'test-admin', role: 'admin', key: ADMIN_KEY }],
  }
  overrides(raw)
  return parseConfig(raw, {})
}

export type StartTestEnvOptions = {
  anvil?: StartAnvilOptions
  /** Changes the raw config before it is parsed; gets the anvil, e.g. to put proxies in front of it. */
  config?: (c: Record<string, any>, anvil: Anvil) => void
  /** Runs after anvil is up and before the config is built (start proxies, a second chain, ...). */
  setup?: (anvil: Anvil) => Promise<void> | void
  /** The service's logger (default: silent, or TEST_LOG_LEVEL); pass one to capture what it logs. */
  log?: Logger
  /** Another way to name the fresh database (e.g. its Unix socket); gets its TCP URL. */
  databaseUrl?: (tcpUrl: string) => string
}

/** A real anvil, a fresh database and the real service on a free port. */
export async function startTestEnv(opts: StartTestEnvOptions = {}): Promise<TestEnv> {
  const anvil = await startAnvil(opts.anvil ?? {})
  const db = await createTestDatabase()
  const log = opts.log ?? createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false })
  let service: RunningService
  try {
    await opts.setup?.(anvil)
    const config = testConfig(anvil.url, opts.config ? (c) => opts.config!(c, anvil) : undefined)
    service = await startService({ config, databaseUrl: opts.databaseUrl?.(db.url) ?? db.url, port: 0, host: '127.0.0.1', log })
  } catch (err) {
    // Leave nothing running when start-up fails.
    await anvil.stop()
    await db.drop()
    throw err
  }
  const auth = { authorization: `Bearer ${ADMIN_KEY}` }
  const call = async (path: string, init: RequestInit) => {
    const res = await fetch(`${service.url}${path}`, init)
    const text = await res.text()
    let json: any = null
    try {
      json = JSON.parse(text)
    } catch {
      json = text
    }
    return { status: res.status, json }
  }
  return {
    anvil,
    service,
    databaseUrl: db.url,
    chain: createPublicClient({ transport: http(anvil.url) }) as PublicClient,
    post: (path, body, headers = {}) =>
      call(path, { method: 'POST', headers: { 'content-type': 'application/json', ...auth, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) }),
    get: (path) => call(path, { headers: auth }),
    graphql: (query, variables) =>
      call('/graphql', { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ query, variables }) }),
    stop: async () => {
      await service.stop()
      await anvil.stop()
      await db.drop()
    },
  }
}

/** A debug-level logger whose lines the test can read (e.g. to prove no secret is ever logged). */
export function capturedLogger(level = 'debug'): { log: Logger; lines: string[] } {
  const lines: string[] = []
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString())
      done()
    },
  })
  return { log: createLogger({ level, pretty: false, destination }), lines }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    await new Promise((r) => setTimeout(r, everyMs))
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
}
