import type { Logger } from '../common/logger.ts'
import type { Sql } from '../db/connect.ts'
import { API_KEYS_CHANNEL, loadActiveApiKeys, type Role } from './apiKeyStore.ts'

/** Fallback when a NOTIFY is missed (e.g. the listening connection was down): a revoked key stops working within this. */
export const API_KEYS_REFRESH_MS = 5_000

export type DbApiKeys = {
  /** By hex SHA-256 of the presented key; synchronous, from the in-memory copy. */
  find: (keyHash: string) => { name: string; role: Role } | undefined
  size: () => number
  /** The names of the active keys, as last loaded. */
  names: () => string[]
  /** Reloads now (also called on NOTIFY from the CLI). */
  refresh: () => Promise<void>
  stop: () => Promise<void>
}

/**
 * An in-memory copy of the active rows of `api_keys` (a small table), reloaded every
 * few seconds and at once when the CLI announces a change: authentication stays a
 * synchronous lookup, and no request waits on the database to check its key.
 */
export async function startDbApiKeys(sql: Sql, log: Logger, refreshMs = API_KEYS_REFRESH_MS): Promise<DbApiKeys> {
  let byHash = new Map<string, { name: string; role: Role }>()
  let stopped = false
  let inFlight: Promise<void> | null = null
  const refresh = () =>
    (inFlight ??= loadActiveApiKeys(sql)
      .then((rows) => {
        byHash = new Map(rows.map((r) => [r.key_hash, { name: r.name, role: r.role }]))
      })
      .finally(() => {
        inFlight = null
      }))
  await refresh()
  const timer = setInterval(() => {
    if (!stopped) refresh().catch((err: Error) => log.warn({ error: err.message }, 'reloading API keys failed; keeping the last copy'))
  }, refreshMs)
  timer.unref()
  const listener = await sql
    .listen(API_KEYS_CHANNEL, () => void refresh().catch((err: Error) => log.warn({ error: err.message }, 'reloading API keys failed')))
    .catch((err: Error) => {
      log.warn({ error: err.message }, `cannot LISTEN for API key changes; polling every ${refreshMs} ms`)
      return null
    })
  return {
    find: (h) => byHash.get(h),
    size: () => byHash.size,
    names: () => [...byHash.values()].map((k) => k.name),
    refresh,
    async stop() {
      stopped = true
      clearInterval(timer)
      await listener?.unlisten().catch(() => {})
      await inFlight?.catch(() => {})
    },
  }
}
