import type { Address, Hex } from 'viem'
import type { ChainClients } from '../chain/createChainClients.ts'
import { EstimateTimedOutError, explainEstimateError } from '../chain/explainEstimateError.ts'
import { addGasMargin } from '../core/fees.ts'
import type { TransactionRow } from '../store/transactionRow.ts'

/** Retries of an estimate that failed for the provider's passing trouble (not a timeout, not the node's answer). */
const TRANSIENT_RETRIES = 2

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
  let estimate: bigint
  for (let retry = 0; ; retry++) {
    const started = performance.now()
    try {
      estimate = await client.estimateGas({ account, to: (row.to as Address | null) ?? undefined, data: row.data as Hex, value: BigInt(row.value) })
      break
    } catch (err) {
      const kind = explainEstimateError(err).kind
      // It took the whole timeout: some provider timed out, whatever the last one said.
      if (kind === 'transient' && performance.now() - started >= chain.config.rpc.timeoutMs) throw new EstimateTimedOutError(err)
      // The estimate clients do not retry (a timeout is the call's, and asked again costs the whole timeout again):
      // a provider's passing failure (HTTP 429 or 5xx, a rate limit) is asked again here, as reads are.
      if (retry >= TRANSIENT_RETRIES || kind !== 'transient') throw err
      await new Promise((resolve) => setTimeout(resolve, 150 * 2 ** retry))
    }
  }
  const gas = addGasMargin(estimate, chain.config.fees.gasLimitMarginPercent, chain.config.txGasLimitCap)
  const cap = chain.config.policy?.maxGasLimit
  return { estimate, gas: cap !== undefined && gas > cap ? cap : gas }
}
