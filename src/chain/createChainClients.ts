import { createPublicClient, fallback, http, type PublicClient, type Transport } from 'viem'
import type { ChainConfig } from '../config/schema.ts'

export type ProviderClient = { name: string; url: string; client: PublicClient }

/** Everything that talks to one chain: one client per provider for broadcasting, one fallback client for reads. */
export type ChainClients = {
  chainId: number
  config: ChainConfig
  /** Reads (fees, estimates, nonces, receipts, blocks): viem fallback over all providers. */
  read: PublicClient
  /** One per provider: each raw transaction goes to all of them at once. */
  providers: ProviderClient[]
}

/** Requests inside one tick share an HTTP round trip; that is what makes batches of receipts and estimates cheap. */
const BATCH = { batchSize: 200, wait: 0 }

function providerTransport(url: string, timeoutMs: number): Transport {
  // Our own failover and retry policy decides; viem's retries would hide a slow provider.
  return http(url, { batch: BATCH, retryCount: 0, timeout: timeoutMs })
}

export function createChainClients(config: ChainConfig): ChainClients {
  const timeoutMs = 10_000
  const providers = config.providers.map((p) => ({
    name: p.name,
    url: p.url,
    client: createPublicClient({ transport: providerTransport(p.url, timeoutMs) }) as PublicClient,
  }))
  // Higher weight first: fallback tries transports in order until ranking reorders them.
  const byWeight = [...config.providers].sort((a, b) => b.weight - a.weight)
  const weighted = byWeight.map((p) => providerTransport(p.url, timeoutMs))
  const read = createPublicClient({
    transport:
      weighted.length === 1
        ? http(config.providers[0]!.url, { batch: BATCH, retryCount: 2, timeout: timeoutMs })
        : fallback(weighted, { rank: { interval: 10_000, sampleCount: 5 }, retryCount: 2 }),
    pollingInterval: Math.max(100, Math.floor(config.blockTimeMs / 2)),
  }) as PublicClient
  return { chainId: config.chainId, config, read, providers }
}
