import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseConfig } from '../config/loadConfig.ts'
import type { FileConfig } from '../config/schema.ts'
import { ANVIL_DEV_ACCOUNTS } from './startAnvil.ts'

/** The dev admin key is kept under the data dir, so it stays the same across restarts. */
export function devApiKey(dataDir: string): string {
  const file = join(dataDir, 'dev-api-key')
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  mkdirSync(dataDir, { recursive: true })
  const key = `dev_${randomBytes(24).toString('base64url')}`
  writeFileSync(file, `${key}\n`, { mode: 0o600 })
  return key
}

/** What `npm start` runs with when there is no config: the local anvil and its first funded account. */
export function devConfig(rpcUrl: string, apiKey: string): FileConfig {
  return parseConfig(
    {
      chains: [
        {
          chainId: 31337,
          name: 'anvil',
          providers: [{ name: 'anvil', url: rpcUrl }],
          confirmations: 2,
          blockTimeMs: 1000,
          fees: { bumpAfterMs: 10_000 },
        },
      ],
      signers: [{ name: 'anvil-0', chainIds: [31337], privateKey: ANVIL_DEV_ACCOUNTS[0].privateKey }],
      apiKeys: [{ name: 'dev-admin', role: 'admin', key: apiKey }],
    },
    {},
  )
}
