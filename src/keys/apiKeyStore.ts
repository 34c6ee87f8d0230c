import { createHash, randomBytes } from 'node:crypto'
import type { Role } from '../api/auth.ts'
import type { Sql } from '../db/connect.ts'
import { pgArray } from '../db/pgArray.ts'

export type { Role }
export const ROLES: readonly Role[] = ['reader', 'submitter', 'admin']

export type ApiKeyRow = { name: string; role: Role; key_hash: string; created_at: Date; revoked_at: Date | null }
export type ApiKeyInfo = Omit<ApiKeyRow, 'key_hash'>

/** Postgres channel the CLI notifies after a change, so running services reload at once (they also poll). */
export const API_KEYS_CHANNEL = 'api_keys_changed'

/** Hex SHA-256: the only form in which a key is stored or compared. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

/** 32 random bytes; the prefix lets secret scanners and people recognise what it is. */
export function generateApiKey(): string {
  return `txb_${randomBytes(32).toString('base64url')}`
}

export class ApiKeyError extends Error {
  override name = 'ApiKeyError'
}

const NAME_RE = /^[\w.@-]{1,64}$/

/** Throws ApiKeyError when `name` is no valid key name (checked again when the key is stored). */
export function checkKeyName(name: string): void {
  if (!NAME_RE.test(name)) throw new ApiKeyError(`name: use 1-64 letters, digits, "_", "-", "." or "@" (got "${name.slice(0, 64)}")`)
}

/** Stores a new key (hash only) and its audit row in one transaction; returns the key, which is never stored. */
export async function createApiKey(sql: Sql, p: { name: string; role: Role; actor: string }): Promise<{ key: string; info: ApiKeyInfo }> {
  checkKeyName(p.name)
  if (!ROLES.includes(p.role)) throw new ApiKeyError(`role: expected one of ${ROLES.join(', ')}`)
  const key = generateApiKey()
  return sql.begin(async (tx) => {
    const [row] = await tx<ApiKeyInfo[]>`
      INSERT INTO api_keys (name, role, key_hash) VALUES (${p.name}, ${p.role}, ${hashApiKey(key)})
      ON CONFLICT (name) DO NOTHING
      RETURNING name, role, created_at, revoked_at`
    if (!row) throw new ApiKeyError(`a key named "${p.name}" already exists (names stay taken after a revoke, so the audit trail stays unambiguous)`)
    await tx`INSERT INTO audit_events (actor, action, subject, detail) VALUES (${p.actor}, 'api_key.created', ${p.name}, ${tx.json({ role: p.role })}::jsonb)`
    await tx`SELECT pg_notify(${API_KEYS_CHANNEL}, ${p.name})`
    return { key, info: row }
  })
}

export async function revokeApiKey(sql: Sql, p: { name: string; actor: string }): Promise<ApiKeyInfo> {
  return sql.begin(async (tx) => {
    const [row] = await tx<ApiKeyInfo[]>`
      UPDATE api_keys SET revoked_at = now() WHERE name = ${p.name} AND revoked_at IS NULL
      RETURNING name, role, created_at, revoked_at`
    if (!row) {
      const [existing] = await tx<ApiKeyInfo[]>`SELECT name, revoked_at FROM api_keys WHERE name = ${p.name}`
      throw new ApiKeyError(existing ? `key "${p.name}" was already revoked at ${existing.revoked_at!.toISOString()}` : `no key named "${p.name}"`)
    }
    await tx`INSERT INTO audit_events (actor, action, subject, detail) VALUES (${p.actor}, 'api_key.revoked', ${p.name}, ${tx.json({ role: row.role })}::jsonb)`
    await tx`SELECT pg_notify(${API_KEYS_CHANNEL}, ${p.name})`
    return row
  })
}

export async function listApiKeys(sql: Sql): Promise<ApiKeyInfo[]> {
  return sql<ApiKeyInfo[]>`SELECT name, role, created_at, revoked_at FROM api_keys ORDER BY created_at, name`
}

/** Which of `names` belonged to database keys since revoked: their names stay taken in the database. */
export async function revokedNamesAmong(sql: Sql, names: string[]): Promise<string[]> {
  if (names.length === 0) return []
  const rows = await sql<{ name: string }[]>`SELECT name FROM api_keys WHERE revoked_at IS NOT NULL AND name = ANY(${pgArray(names)}::text[])`
  return rows.map((r) => r.name)
}

/** Active keys as the authenticator needs them. */
export async function loadActiveApiKeys(sql: Sql): Promise<Array<{ name: string; role: Role; key_hash: string }>> {
  return sql<Array<{ name: string; role: Role; key_hash: string }>>`SELECT name, role, key_hash FROM api_keys WHERE revoked_at IS NULL`
}
