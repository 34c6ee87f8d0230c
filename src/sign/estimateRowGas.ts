import type { Address, Hex } from 'viem'
import type { ChainClients } from '../chain/createChainClients.ts'
import { addGasMargin } from '../core/fees.ts'
import type { TransactionRow } from '../store/transactionRow.ts'

/**
 * The node's gas estimate for a row sent from `account`, and the gas limit to sign with: the estimate plus the
 * chain's margin, cut back to its policy maxGasLimit (an estimate itself over that is the caller's to refuse).
 * Throws what the node answered. Through the chain's estimate clients: a timeout is the call's, not held against
 * the provider (createChainClients.ts).
 */
export async function estimateRowGas(
  chain: ChainClients,
  account: Address,
  row: Pick<TransactionRow, 'to' | 'data' | 'value'>,
  /** The estimates of a tick batched (default), or `estimateAlone`: this one in an HTTP request of its own. */
  client: ChainClients['estimate'] = chain.estimate,
): Promise<{ estimate: bigint; gas: bigint }> {
  const estimate = await client.estimateGas({ account, to: (row.to as Address | null) ?? undefined, data: row.data as Hex, value: BigInt(row.value) })
  const gas = addGasMargin(estimate, chain.config.fees.gasLimitMarginPercent)
  const cap = chain.config.policy?.maxGasLimit
  return { estimate, gas: cap !== undefined && gas > cap ? cap : gas }
}
