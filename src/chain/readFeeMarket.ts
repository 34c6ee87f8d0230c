import type { PublicClient } from 'viem'
import type { FeeMarket } from '../core/fees.ts'

/** Today's fee market from the chain (EIP-1559 base fee and tip, or legacy gas price). */
export async function readFeeMarket(client: PublicClient, model: 'eip1559' | 'legacy'): Promise<FeeMarket> {
  if (model === 'legacy') return { type: 'legacy', gasPrice: await client.getGasPrice() }
  const [block, tip] = await Promise.all([
    client.getBlock({ blockTag: 'latest' }),
    client.request({ method: 'eth_maxPriorityFeePerGas' }).then(BigInt),
  ])
  if (block.baseFeePerGas == null) throw new Error('chain has no base fee: configure fees.model "legacy" for it')
  return { type: 'eip1559', baseFeePerGas: block.baseFeePerGas, maxPriorityFeePerGas: tip }
}
