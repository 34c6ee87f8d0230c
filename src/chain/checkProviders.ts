import type { ChainClients } from './createChainClients.ts'

/**
 * One pass of the periodic health check: asks every provider of the chain,
 * down ones included, for its chain id and head (one batched request each).
 * Latency and failures are recorded by the provider's transport; the answers
 * give the head lag, catch a provider that switched to another chain, and are
 * how a down provider is found to be back.
 */
export async function checkProviders(chain: ChainClients): Promise<void> {
  await Promise.all(
    chain.providers.map(async (p) => {
      try {
        const [chainId, head] = await Promise.all([
          p.client.request({ method: 'eth_chainId' }),
          p.client.request({ method: 'eth_blockNumber' }),
        ])
        chain.health.recordChainId(p.name, Number(chainId))
        chain.health.recordHead(p.name, BigInt(head))
        chain.health.recordCheckAnswered(p.name)
      } catch {
        // Already recorded against the provider by its transport.
      }
    }),
  )
}
