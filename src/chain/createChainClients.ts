import { createPublicClient, fallback, type PublicClient } from 'viem'
import type { ChainConfig } from '../config/schema.ts'
import { createProviderHealth, type HealthPolicy, type ProviderHealth } from './providerHealth.ts'
import { providerTransport } from './providerTransport.ts'
import { createUrlRedactor, type Redact } from './redactUrls.ts'

export type ProviderClient = { name: string; url: string; client: PublicClient }

/** Everything that talks to one chain: one client per provider for broadcasting, one fallback client for reads. */
export type ChainClients = {
  chainId: number
  config: ChainConfig
  /** Reads (fees, estimates, nonces, receipts, blocks): viem fallback over the providers that are not down or lagging. */
  read: PublicClient
  /** One per provider: each raw transaction goes to all that are not down, at once. Also what the health check uses. */
  providers: ProviderClient[]
  /** Each provider's health, fed by every request and by the periodic check (checkProviders). */
  health: ProviderHealth
  /** Removes the providers' URL credentials from a text: for anything logged, stored or shown. */
  redact: Redact
}

/** Errors counted for "errorsLastMinute" and for degraded. */
const ERROR_WINDOW_MS = 60_000

export function healthPolicy(config: ChainConfig): HealthPolicy {
  const rpc = config.rpc
  return {
    downAfterFailures: rpc.downAfterFailures,
    downForMs: rpc.downForMs,
    maxDownForMs: Math.max(rpc.maxDownForMs, rpc.downForMs),
    maxLagBlocks: rpc.maxLagBlocks,
    // Half the timeout: a provider this slow is close to failing.
    slowMs: Math.floor(rpc.timeoutMs / 2),
    windowMs: ERROR_WINDOW_MS,
  }
}

export function createChainClients(config: ChainConfig, opts: { now?: () => number } = {}): ChainClients {
  const timeoutMs = config.rpc.timeoutMs
  const redact = createUrlRedactor(config.providers.map((p) => p.url))
  const health = createProviderHealth({ chainId: config.chainId, names: config.providers.map((p) => p.name), policy: healthPolicy(config), now: opts.now })
  const providers = config.providers.map((p) => ({
    name: p.name,
    url: p.url,
    // Not gated: the broadcast stage picks providers by health itself, and the health check must reach down ones.
    client: createPublicClient({ transport: providerTransport({ name: p.name, url: p.url, timeoutMs, health, redact }) }) as PublicClient,
  }))
  // Higher weight first: fallback tries transports in order until ranking reorders them.
  const byWeight = [...config.providers].sort((a, b) => b.weight - a.weight)
  const only = config.providers.length === 1 ? config.providers[0]! : null
  const read = createPublicClient({
    transport: only
      ? // One provider: nothing to fail over to, so let viem retry it.
        providerTransport({ name: only.name, url: only.url, timeoutMs, health, redact, retryCount: 2 })
      : fallback(
          byWeight.map((p) => providerTransport({ name: p.name, url: p.url, timeoutMs, health, redact, gateReads: true })),
          { rank: { interval: 10_000, sampleCount: 5 }, retryCount: 2 },
        ),
    pollingInterval: Math.max(100, Math.floor(config.blockTimeMs / 2)),
  }) as PublicClient
  return { chainId: config.chainId, config, read, providers, health, redact }
}
