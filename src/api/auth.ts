import { timingSafeEqual, createHash } from 'node:crypto'
import type { ApiKeyConfig } from '../config/schema.ts'
import { ERROR_CODE, InputError } from '../core/errors.ts'

export type Role = 'reader' | 'submitter' | 'admin'
export type Principal = { name: string; role: Role }

const RANK: Record<Role, number> = { reader: 0, submitter: 1, admin: 2 }

export type Authenticator = {
  enabled: boolean
  /** Resolves an `Authorization` header; throws 401 when auth is on and the key is missing or unknown. */
  authenticate: (authorization: string | null | undefined) => Principal
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

export function createAuthenticator(keys: ApiKeyConfig[], mode: 'enabled' | 'disabled'): Authenticator {
  const table = keys.map((k) => ({ name: k.name, role: k.role, digest: digest(k.key) }))
  const enabled = mode === 'enabled'
  return {
    enabled,
    authenticate(header) {
      const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
      if (!match) {
        if (!enabled) return { name: 'anonymous', role: 'admin' }
        throw new InputError(ERROR_CODE.UNAUTHENTICATED, 'Missing API key: send "Authorization: Bearer <key>"', undefined, 401)
      }
      const d = digest(match[1]!)
      // Compare digests in constant time so response timing tells nothing about a key.
      const found = table.find((k) => timingSafeEqual(k.digest, d))
      if (!found) {
        if (!enabled) return { name: 'anonymous', role: 'admin' }
        throw new InputError(ERROR_CODE.UNAUTHENTICATED, 'Unknown API key', undefined, 401)
      }
      return { name: found.name, role: found.role }
    },
  }
}

export function requireRole(p: Principal, needed: Role): void {
  if (RANK[p.role] < RANK[needed])
    throw new InputError(ERROR_CODE.FORBIDDEN, `This needs the "${needed}" role; key "${p.name}" has "${p.role}"`, undefined, 403)
}
