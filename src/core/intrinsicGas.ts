import { hexToBytes, type Hex } from 'viem'

/** Gas every transaction pays before it runs (yellow paper G_transaction). */
const TX_BASE = 21_000n
/** Creating a contract (G_txcreate). */
const TX_CREATE = 32_000n
/** EIP-3860: per 32-byte word of init code. */
const INITCODE_WORD = 2n
/** EIP-2028: calldata, per zero and per non-zero byte. */
const ZERO_BYTE = 4n
const NONZERO_BYTE = 16n
/** EIP-7623 (Prague): the floor per calldata token (a zero byte is one token, a non-zero byte four). */
const FLOOR_PER_TOKEN = 10n

/**
 * The least gas limit a node takes for this transaction: its intrinsic gas (base, calldata, creation and
 * init code words), and not below EIP-7623's calldata floor, which chains since Prague enforce. Below it a
 * node refuses the transaction, or (anvil) takes it and drops it, leaving its nonce a hole. A chain without
 * the floor (before Prague) takes a limit between the two: there the chain's config turns the floor off.
 */
export function minimumGasLimit(tx: { to: string | null; data: Hex }, opts: { calldataFloor: boolean } = { calldataFloor: true }): bigint {
  const bytes = hexToBytes(tx.data)
  let zeros = 0n
  for (const b of bytes) if (b === 0) zeros++
  const nonzeros = BigInt(bytes.length) - zeros
  let intrinsic = TX_BASE + zeros * ZERO_BYTE + nonzeros * NONZERO_BYTE
  if (tx.to === null) intrinsic += TX_CREATE + INITCODE_WORD * ((BigInt(bytes.length) + 31n) / 32n)
  const floor = TX_BASE + FLOOR_PER_TOKEN * (zeros + 4n * nonzeros)
  return opts.calldataFloor && floor > intrinsic ? floor : intrinsic
}
