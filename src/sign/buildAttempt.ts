import { keccak256, type Address, type Hex, type TransactionSerializable } from 'viem'
import type { Fees } from '../core/fees.ts'
import type { Signer } from '../signers/loadSigners.ts'
import type { TransactionRow } from '../store/transactionRow.ts'

export type AttemptPurpose = 'REQUEST' | 'CANCEL'

/** Gas of a plain ETH transfer: what a cancel (zero-value self-transfer) needs on Ethereum (chain/selfTransferGas.ts elsewhere). */
export const TRANSFER_GAS = 21_000n

export type BuiltAttempt = {
  row: Record<string, unknown>
  hash: Hex
  raw: Hex
}

/**
 * Signs one attempt of a transaction at a given nonce. A REQUEST attempt carries
 * the client's call; a CANCEL attempt is a zero-value transfer to the signer
 * itself, which consumes the nonce and nothing else (its gas: chain/selfTransferGas.ts).
 */
export async function buildAttempt(args: {
  signer: Signer
  chainId: number
  tx: Pick<TransactionRow, 'id' | 'execution' | 'to' | 'data' | 'value'>
  nonce: number
  gas: bigint
  fees: Fees
  purpose: AttemptPurpose
}): Promise<BuiltAttempt> {
  const { signer, chainId, tx, nonce, fees, purpose } = args
  const cancel = purpose === 'CANCEL'
  const gas = args.gas
  const base = {
    chainId,
    nonce,
    gas,
    to: cancel ? signer.address : ((tx.to as Address | null) ?? null),
    data: cancel ? ('0x' as Hex) : (tx.data as Hex),
    value: cancel ? 0n : BigInt(tx.value),
  }
  const serializable: TransactionSerializable =
    fees.type === 'legacy'
      ? { ...base, type: 'legacy', gasPrice: fees.gasPrice }
      : { ...base, type: 'eip1559', maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas }
  const raw = await signer.signTransaction(serializable)
  const hash = keccak256(raw)
  return {
    hash,
    raw,
    row: {
      transaction_id: tx.id,
      execution: tx.execution,
      chain_id: chainId,
      signer: signer.address,
      nonce,
      hash,
      raw,
      purpose,
      gas_limit: gas.toString(),
      max_fee_per_gas: fees.type === 'eip1559' ? fees.maxFeePerGas.toString() : null,
      max_priority_fee_per_gas: fees.type === 'eip1559' ? fees.maxPriorityFeePerGas.toString() : null,
      gas_price: fees.type === 'legacy' ? fees.gasPrice.toString() : null,
    },
  }
}

export function feesOf(a: { max_fee_per_gas: string | null; max_priority_fee_per_gas: string | null; gas_price: string | null }): Fees {
  if (a.gas_price !== null) return { type: 'legacy', gasPrice: BigInt(a.gas_price) }
  return { type: 'eip1559', maxFeePerGas: BigInt(a.max_fee_per_gas ?? 0), maxPriorityFeePerGas: BigInt(a.max_priority_fee_per_gas ?? 0) }
}
