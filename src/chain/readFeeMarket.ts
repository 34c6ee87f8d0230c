import type { PublicClient } from 'viem'
import type { FeeMarket } from '../core/fees.ts'

/** Today's fee market from the chain (EIP-1559 base fee and tip, or legacy gas price). */
export async function readFeeMarket(client: PublicClient, model: 'eip1559' | 'legacy'): Promise<FeeMarket> {
  return (await readFeeMarketAt(client, model)).market
}

/** The fee market, and the number of the latest block it was read with. */
export async function readFeeMarketAt(client: PublicClient, model: 'eip1559' | 'legacy'): Promise<{ market: FeeMarket; blockNumber: bigint }> {
  if (model === 'legacy') {
    const [gasPrice, blockNumber] = await Promise.all([client.getGasPrice(), client.getBlockNumber({ cacheTime: 0 })])
    return { market: { type: 'legacy', gasPrice }, blockNumber }
  }
  const [block, tip] = await Promise.all([
    client.getBlock({ blockTag: 'latest' }),
    client.request({ method: 'eth_maxPriorityFeePerGas' }).then(BigInt),
  ])
  if (block.baseFeePerGas == null) throw new Error('chain has no base fee: configure fees.model "legacy" for it')
  return { market: { type: 'eip1559', baseFeePerGas: block.baseFeePerGas, maxPriorityFeePerGas: tip }, blockNumber: block.number }
}
