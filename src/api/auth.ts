import { timingSafeEqual, createHash } from 'node:crypto'
import type { ApiKeyConfig } from '../config/schema.ts'
import { ERROR_CODE, InputError } from '../core/errors.ts'

export type Role = 'reader' | 'submitter' | 'admin'
export type Principal = { name: string; role: Role }

const RANK: Record<Role, number> = { reader: 0, submitter: 1, admin: 2 }

export type Authenticator = {
  enabled: boolean
  /** Resolves an `Authorization` header; throws 401 when auth is on and the key is missing, unknown or revoked. */
  authenticate: (authorization: string | null | undefined) => Principal
}

/** Keys created with the CLI (`api_keys` table), looked up by hex SHA-256; see keys/dbApiKeys.ts. */
export type KeyLookup = { find: (keyHash: string) => Principal | undefined }

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

export function createAuthenticator(keys: ApiKeyConfig[], mode: 'enabled' | 'disabled', dbKeys?: KeyLookup): Authenticator {
  const table = keys.map((k) => ({ name: k.name, role: k.role, digest: digest(k.key) }))
  const configNames = new Set(keys.map((k) => k.name))
  const enabled = mode === 'enabled'
  // Clients send the same few keys on every request: remember each presented key's digest (not a
  // verdict, so a revoked CLI key is refused at once). Bounded, so random guesses cannot grow it.
  const digests = new Map<string, Buffer>()
  const digestOf = (key: string): Buffer => {
    let d = digests.get(key)
    if (!d) {
      d = digest(key)
      if (digests.size >= 1_000) digests.clear()
      digests.set(key, d)
    }
    return d
  }
  return {
    enabled,
    authenticate(header) {
      const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
      if (!match) {
        if (!enabled) return { name: 'anonymous', role: 'admin' }
        throw new InputError(ERROR_CODE.UNAUTHENTICATED, 'Missing API key: send "Authorization: Bearer <key>"', undefined, 401)
      }
      const d = digestOf(match[1]!)
      // Compare digests in constant time so response timing tells nothing about a key.
      const found = table.find((k) => timingSafeEqual(k.digest, d))
      if (found) return { name: found.name, role: found.role }
      // A map lookup by digest leaks nothing useful: an attacker cannot steer the digest of a guess.
      const stored = dbKeys?.find(d.toString('hex'))
      if (stored && !configNames.has(stored.name)) return { name: stored.name, role: stored.role }
      if (!enabled) return { name: 'anonymous', role: 'admin' }
      // A key is known by its name: in the audit trail, the timeline ("by ops"), the per-key limits and CORS origins.
      // A CLI key named like a config key would act, and count, as that key, whatever its role. (Auth disabled:
      // such a key counts as anonymous admin above, as no key would.)
      if (stored)
        throw new InputError(
          ERROR_CODE.UNAUTHENTICATED,
          `API key "${stored.name}" from the database has the same name as a key in the config file, so the two could not be told apart; it is not accepted until it is revoked (tx-broadcaster keys revoke --name ${stored.name}; create it again under another name)`,
          undefined,
          401,
        )
      throw new InputError(ERROR_CODE.UNAUTHENTICATED, 'Unknown or revoked API key', undefined, 401)
    },
  }
}

/** Whether the header's key is (still) accepted: a stream opened with it looks again now and then (revocation). */
export function keyIsValid(auth: Authenticator, authorization: string | null | undefined): boolean {
  try {
    auth.authenticate(authorization)
    return true
  } catch {
    return false
  }
}

export function requireRole(p: Principal, needed: Role): void {
  if (RANK[p.role] < RANK[needed])
    throw new InputError(ERROR_CODE.FORBIDDEN, `This needs the "${needed}" role; key "${p.name}" has "${p.role}"`, undefined, 403)
}
