import type { Address } from 'viem'
import { addGasMargin } from '../core/fees.ts'
import { TRANSFER_GAS } from '../sign/buildAttempt.ts'
import type { ChainClients } from './createChainClients.ts'

/** How long an estimate is reused: a bump pass or a burst of expiries asks once per signer. */
const REUSE_MS = 30_000
/** How long 21000 is used after an estimate failed, before asking again. */
const FAILED_REUSE_MS = 10_000

const recent = new WeakMap<ChainClients, Map<string, { at: number; gas: bigint }>>()

/**
 * The gas limit of a zero-value self-transfer (a cancel, a nonce-hole filler) from `address` on this chain.
 * 21000 on Ethereum and chains like it. Arbitrum, zkSync Era and Mantle charge the L1 part of the cost in gas,
 * so a 21000-gas self-transfer is refused there ("intrinsic gas too low"): a cancel never replaced its request
 * and held every later nonce of the signer behind it, and a filler was refused, failed and sent again for ever.
 * An estimate above 21000 gets the chain's margin (the L1 part moves with L1 fees); when the estimate cannot be
 * had, 21000, as before.
 */
export async function selfTransferGas(chain: ChainClients, address: Address, { fresh = false }: { fresh?: boolean } = {}): Promise<bigint> {
  let byAddress = recent.get(chain)
  if (!byAddress) recent.set(chain, (byAddress = new Map()))
  const hit = byAddress.get(address)
  // `fresh`: the last answer proved wrong (a cancel with that gas was refused as never valid): asked again now.
  if (!fresh && hit && Date.now() - hit.at < REUSE_MS) return hit.gas
  const estimate = await chain.read.estimateGas({ account: address, to: address, value: 0n }).catch(() => null)
  if (estimate === null) {
    // Kept for a while too: the bump stage asks with rows locked, and each expired row asking again through a
    // provider outage held them for a timeout each.
    byAddress.set(address, { at: Date.now() - REUSE_MS + FAILED_REUSE_MS, gas: TRANSFER_GAS })
    return TRANSFER_GAS
  }
  const gas = estimate <= TRANSFER_GAS ? TRANSFER_GAS : addGasMargin(estimate, chain.config.fees.gasLimitMarginPercent, chain.config.txGasLimitCap)
  byAddress.set(address, { at: Date.now(), gas })
  return gas
}
