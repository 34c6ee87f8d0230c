import { createPublicClient, fallback, type PublicClient } from 'viem'
import type { ChainConfig } from '../config/schema.ts'
import { createProviderHealth, type HealthPolicy, type ProviderChange, type ProviderHealth } from './providerHealth.ts'
import { providerTransport } from './providerTransport.ts'
import { createUrlRedactor, type Redact } from './redactUrls.ts'

export type ProviderClient = { name: string; url: string; client: PublicClient }

/** Everything that talks to one chain: one client per provider for broadcasting, one fallback client for reads. */
export type ChainClients = {
  chainId: number
  config: ChainConfig
  /** Reads (fees, estimates, nonces, receipts, blocks): viem fallback over the providers that are not down or lagging. */
  read: PublicClient
  /**
   * The same providers for an answer whose size grows with the chain's load, a block's receipts (thousands
   * during a burst): a timeout that grows with the block's transaction count, and no retries. Under the
   * reads' timeout such a call failed on a large block, was sent again twice (a node computes each one in
   * full, even after the client gave up; anvil takes seconds over a block of 4,000), and the watcher then
   * asked for every receipt one by one.
   */
  bulkRead: (transactions: number) => PublicClient
  /**
   * Gas estimates (the sign stage's): the providers as for reads, batched, but a timeout is the call's (a heavy
   * contract call), not counted against the provider, and not retried (estimateRowGas retries other passing failures). `estimateAlone`: the same, each estimate its
   * own HTTP request, for the rows of a batch that timed out together (one slow call fails a whole batch).
   */
  estimate: PublicClient
  estimateAlone: PublicClient
  /**
   * Whether every provider has answered a bulk read of `method` with "method not found" (eth_getBlockReceipts on
   * older nodes). Until then a provider that said so is skipped and the others are asked: one provider without it,
   * last in the order, turned bulk reads off for good though the first one only failed once.
   */
  bulkUnsupported: (method: string) => boolean
  /** One per provider: each raw transaction goes to all that are not down, at once. Also what the health check uses. */
  providers: ProviderClient[]
  /**
   * The seconds (epoch) in which a provider took one of our transactions (answered "sent"), in this process, for
   * the last day at most: whether sends got through while one transaction was being refused (reconcile).
   */
  takenSeconds: Set<number>
  /** Each provider's health, fed by every request and by the periodic check (checkProviders). */
  health: ProviderHealth
  /** Removes the providers' URL credentials from a text: for anything logged, stored or shown. */
  redact: Redact
}

/** A bulk read's allowance per transaction in the block, over the reads' timeout (anvil needs about 0.8 ms a receipt in a block of 4,000). */
const BULK_READ_MS_PER_TX = 2
/** The longest a bulk read may take; half the watcher's tick timeout (30 s), which leaves time for reading one by one. */
export const BULK_READ_MAX_TIMEOUT_MS = 15_000

/**
 * A bulk read's timeout: the reads' timeout plus an allowance per transaction, rounded up to a power-of-two
 * multiple of the reads' timeout (so a handful of clients serve every size), at most BULK_READ_MAX_TIMEOUT_MS.
 * A hung provider then costs about the reads' timeout on an ordinary block, as any read does.
 */
export function bulkReadTimeoutMs(readTimeoutMs: number, transactions: number): number {
  const wanted = readTimeoutMs + transactions * BULK_READ_MS_PER_TX
  let timeout = readTimeoutMs
  while (timeout < wanted && timeout < BULK_READ_MAX_TIMEOUT_MS) timeout *= 2
  return Math.max(readTimeoutMs, Math.min(timeout, BULK_READ_MAX_TIMEOUT_MS))
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

export function createChainClients(config: ChainConfig, opts: { now?: () => number; onProviderChange?: (c: ProviderChange) => void } = {}): ChainClients {
  const timeoutMs = config.rpc.timeoutMs
  const redact = createUrlRedactor(config.providers.map((p) => p.url))
  const health = createProviderHealth({
    chainId: config.chainId,
    names: config.providers.map((p) => p.name),
    policy: healthPolicy(config),
    now: opts.now,
    onChange: opts.onProviderChange,
  })
  const providers = config.providers.map((p) => ({
    name: p.name,
    url: p.url,
    // Not gated: the broadcast stage picks providers by health itself, and the health check must reach down ones.
    client: createPublicClient({ transport: providerTransport({ name: p.name, url: p.url, timeoutMs, health, redact }) }) as PublicClient,
  }))
  // Higher weight first: fallback tries transports in order until ranking reorders them.
  const byWeight = [...config.providers].sort((a, b) => b.weight - a.weight)
  const only = config.providers.length === 1 ? config.providers[0]! : null
  /** Per provider, the methods it answered it does not have, for the bulk clients (of every timeout). */
  const lacking = new Map(config.providers.map((p) => [p.name, new Set<string>()]))
  const readClient = (timeout: number, retries: number, bulk: boolean, call: { callTimeouts?: boolean; alone?: boolean } = {}) =>
    createPublicClient({
      transport: only
        ? // One provider: nothing to fail over to, so let viem retry it. Gated all the same: down or behind it is
          // still tried (no other passes), but not once it is known to serve another chain.
          providerTransport({ name: only.name, url: only.url, timeoutMs: timeout, health, redact, retryCount: retries, gateReads: true, bulk, lacking: lacking.get(only.name), ...call })
        : fallback(
            byWeight.map((p) =>
              providerTransport({ name: p.name, url: p.url, timeoutMs: timeout, health, redact, gateReads: true, bulk, lacking: lacking.get(p.name), ...call }),
            ),
            // Bulk clients are not ranked on their own: the order by weight, and the gate skips providers down or behind.
            { rank: !bulk && { interval: 10_000, sampleCount: 5 }, retryCount: retries },
          ),
      pollingInterval: Math.max(100, Math.floor(config.blockTimeMs / 2)),
    }) as PublicClient
  const read = readClient(timeoutMs, 2, false)
  const estimate = readClient(timeoutMs, 0, false, { callTimeouts: true })
  const estimateAlone = readClient(timeoutMs, 0, false, { callTimeouts: true, alone: true })
  const bulkClients = new Map<number, PublicClient>()
  const bulkRead = (transactions: number) => {
    const timeout = bulkReadTimeoutMs(timeoutMs, transactions)
    let client = bulkClients.get(timeout)
    if (!client) bulkClients.set(timeout, (client = readClient(timeout, 0, true)))
    return client
  }
  const bulkUnsupported = (method: string) => [...lacking.values()].every((methods) => methods.has(method))
  return { chainId: config.chainId, config, read, bulkRead, estimate, estimateAlone, bulkUnsupported, providers, health, redact, takenSeconds: new Set() }
}
