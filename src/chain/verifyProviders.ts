import type { Logger } from '../common/logger.ts'
import type { ChainClients } from './createChainClients.ts'

/** A provider that answers for another chain: sending there could replay our transactions on a chain nobody asked for. */
export class ProviderChainMismatchError extends Error {
  override name = 'ProviderChainMismatchError'
}

/** `fees.model` "eip1559" for a chain whose blocks carry no base fee (before London, or a legacy-only chain). */
export class FeeModelMismatchError extends Error {
  override name = 'FeeModelMismatchError'
}

/**
 * Start-up check of each provider on its own (not only whichever the fallback
 * reaches first): one that answers with another chain id refuses the start,
 * naming it. One that cannot be reached is started as down and checked again by
 * the periodic check, which verifies its chain id before it is used. When none
 * can be reached the chain starts with all of them down (logged as an error):
 * failing the start would take every other chain, and the API that stores
 * this chain's requests until a provider answers, down with it.
 * A chain configured for EIP-1559 fees whose latest block has no base fee refuses
 * the start: it would take requests and never sign one.
 */
export async function verifyProviders(chain: ChainClients, log: Logger): Promise<void> {
  const label = `chain ${chain.chainId} (${chain.config.name})`
  const results = await Promise.all(
    chain.providers.map(async (p) => {
      try {
        return { name: p.name, chainId: Number(await p.client.request({ method: 'eth_chainId' })) }
      } catch (err) {
        // The transport has redacted the error; redact again in case it came from elsewhere. With its cause's code:
        // viem's "HTTP request failed." alone did not say whether the port refused, the name did not resolve, or TLS failed.
        const short = ((err as { shortMessage?: string }).shortMessage ?? (err as Error).message ?? String(err)).split('\n')[0]!
        let why: string | undefined
        for (let e = err as { cause?: unknown; code?: unknown; message?: unknown } | undefined, i = 0; e && i < 6; e = e.cause as typeof e, i++)
          if (i > 0) why = typeof e.code === 'string' ? e.code : typeof e.message === 'string' ? e.message.split('\n')[0] : why
        return { name: p.name, error: chain.redact(why && why !== short ? `${short} (${why})` : short) }
      }
    }),
  )
  const wrong = results.filter((r) => r.chainId !== undefined && r.chainId !== chain.chainId)
  if (wrong.length)
    throw new ProviderChainMismatchError(
      `${label}: ${wrong.map((r) => `provider "${r.name}" serves chain ${r.chainId}, not ${chain.chainId}`).join('; ')}. Fix its url or remove it from chains[].providers.`,
    )
  const unreachable = results.filter((r) => r.error !== undefined)
  if (unreachable.length === results.length)
    log.error(
      { chainId: chain.chainId, providers: unreachable.map((r) => `${r.name}: ${r.error}`) },
      `${label}: cannot reach any provider at start-up; its requests are stored and sent once one answers with the right chain id`,
    )
  for (const r of results) {
    if (r.chainId !== undefined) chain.health.recordChainId(r.name, r.chainId)
    else {
      chain.health.markDown(r.name, `unreachable at start-up: ${r.error}`)
      if (unreachable.length < results.length)
        log.warn({ chainId: chain.chainId, provider: r.name, error: r.error }, 'provider unreachable at start-up; it is used once it answers with the right chain id')
    }
  }
  const reachable = chain.providers.find((p) => results.some((r) => r.name === p.name && r.chainId !== undefined))
  if (reachable && chain.config.fees.model === 'eip1559') {
    const block = await reachable.client.getBlock({ blockTag: 'latest' }).catch(() => null)
    if (block && block.baseFeePerGas == null)
      throw new FeeModelMismatchError(
        `${label}: its blocks have no base fee (no EIP-1559 on this chain), but fees.model is "eip1559": set chains[].fees.model to "legacy" for it`,
      )
  }
}
