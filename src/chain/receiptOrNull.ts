import { BaseError, type Hex, type TransactionReceipt } from 'viem'
import type { ChainClients } from './createChainClients.ts'

/**
 * The receipt for the hash, or null when the node answers that it has none. Any other failure is thrown: a failed
 * call proves nothing, and callers that decide on "not mined" must not take it for one.
 */
export async function receiptOrNull(chain: ChainClients, hash: Hex): Promise<TransactionReceipt | null> {
  try {
    return await chain.read.getTransactionReceipt({ hash })
  } catch (err) {
    const notFound = (e: unknown) => (e as Error | null)?.name === 'TransactionReceiptNotFoundError'
    if (notFound(err) || (err instanceof BaseError && err.walk(notFound) !== null)) return null
    throw err
  }
}
