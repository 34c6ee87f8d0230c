import { describe, expect, it } from 'vitest'
import { requireApiKeys } from './requireApiKeys.ts'

const key = { name: 'k', role: 'admin' as const, key: 'k'.repeat(16) }

describe('requireApiKeys (start-up)', () => {
  it.each([
    ['config keys', { apiKeys: [key], auth: 'enabled' as const }, 0, false, true],
    ['database keys', { apiKeys: [], auth: 'enabled' as const }, 2, false, true],
    ['auth disabled', { apiKeys: [], auth: 'disabled' as const }, 0, false, true],
    ['dev mode', { apiKeys: [], auth: 'enabled' as const }, 0, true, true],
    ['no key anywhere', { apiKeys: [], auth: 'enabled' as const }, 0, false, false],
  ])('%s', (_, config, dbKeys, devMode, starts) => {
    const run = () => requireApiKeys(config, dbKeys, devMode)
    if (starts) expect(run).not.toThrow()
    else expect(run).toThrow(/No API keys.*keys create.*"auth": "disabled"/s)
  })
})
