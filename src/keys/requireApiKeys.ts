import type { FileConfig } from '../config/schema.ts'

export class NoApiKeysError extends Error {
  override name = 'NoApiKeysError'
}

/**
 * Outside dev mode a service with auth on and no key at all could serve nobody; more
 * likely its config lost its keys. Refuse to start and say how to fix it.
 */
export function requireApiKeys(config: Pick<FileConfig, 'apiKeys' | 'auth'>, dbKeyCount: number, devMode: boolean): void {
  if (devMode || config.auth === 'disabled' || config.apiKeys.length > 0 || dbKeyCount > 0) return
  throw new NoApiKeysError(
    'No API keys: the config has no "apiKeys" and the database has no active key. ' +
      'Create one with `DATABASE_URL=... npx tx-broadcaster keys create --name ops --role admin`, ' +
      'add "apiKeys" to the config, or set "auth": "disabled" to let every request in as admin.',
  )
}
