import secp256k1 from 'secp256k1'
import { hexToBytes, keccak256, serializeTransaction, toHex, type Hex, type TransactionSerializable } from 'viem'

/**
 * Signs transactions with a private key held in memory, using libsecp256k1
 * (the `secp256k1` package's prebuilt native binding) for the ECDSA step:
 * about 15 times faster than pure JS, which matters because signing runs on the
 * same event loop as the API. Serialization and hashing stay viem's, so the bytes
 * are exactly what viem's own signTransaction produces (a test checks this).
 */
export function createKeySigner(privateKey: Hex): (tx: TransactionSerializable) => Promise<Hex> {
  const key = hexToBytes(privateKey)
  if (!secp256k1.privateKeyVerify(key)) throw new Error('not a valid secp256k1 private key')
  return async (tx) => {
    const digest = hexToBytes(keccak256(serializeTransaction(tx)))
    const { signature, recid } = secp256k1.ecdsaSign(digest, key)
    const r = toHex(signature.subarray(0, 32))
    const s = toHex(signature.subarray(32, 64))
    if (tx.type === 'legacy' || (tx.type === undefined && tx.gasPrice !== undefined && tx.maxFeePerGas === undefined)) {
      // EIP-155: v = chainId * 2 + 35 + recid.
      const v = tx.chainId ? BigInt(tx.chainId) * 2n + 35n + BigInt(recid) : 27n + BigInt(recid)
      return serializeTransaction(tx, { r, s, v })
    }
    return serializeTransaction(tx, { r, s, yParity: recid })
  }
}
