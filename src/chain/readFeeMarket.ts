import type { PublicClient } from 'viem'
import type { FeeMarket } from '../core/fees.ts'
import { isMethodUnsupported } from './isMethodUnsupported.ts'

/** Today's fee market from the chain (EIP-1559 base fee and tip, or legacy gas price). */
export async function readFeeMarket(client: PublicClient, model: 'eip1559' | 'legacy'): Promise<FeeMarket> {
  if (model === 'legacy') return { type: 'legacy', gasPrice: await client.getGasPrice() }
  const [block, suggested] = await Promise.all([
    client.getBlock({ blockTag: 'latest' }),
    client.request({ method: 'eth_maxPriorityFeePerGas' }).then(
      (answer) => (typeof answer === 'string' && /^0x[0-9a-f]+$/i.test(answer) ? BigInt(answer) : null),
      (err: unknown) => (isMethodUnsupported(err) ? null : Promise.reject(err)),
    ),
  ])
  if (block.baseFeePerGas == null) throw new Error('chain has no base fee: configure fees.model "legacy" for it')
  const baseFee: bigint = block.baseFeePerGas
  // A node without eth_maxPriorityFeePerGas (Sei's once), or answering it with no number ("0x"): every sign batch and
  // bump pass threw, and requests stayed QUEUED, with only a log line. Its gas price over the base fee is the tip
  // it suggests, as viem's estimateMaxPriorityFeePerGas falls back to.
  let tip = suggested as bigint | null
  if (tip === null) {
    const gasPrice = await client.getGasPrice()
    tip = gasPrice > baseFee ? gasPrice - baseFee : 0n
  }
  return { type: 'eip1559', baseFeePerGas: baseFee, maxPriorityFeePerGas: tip }
}
