import secp256k1 from 'secp256k1'
import { hexToBytes, keccak256, serializeTransaction, toHex, type Hex, type TransactionSerializable } from 'viem'
import { signInThread } from './signingThread.ts'

/**
 * Signs transactions with a private key held in memory, in the calling thread, using libsecp256k1
 * (the `secp256k1` package's prebuilt native binding) for the ECDSA step: about 15 times faster than
 * pure JS. Serialization and hashing stay viem's, so the bytes are exactly what viem's own
 * signTransaction produces (a test checks this). Deterministic (RFC 6979): the same transaction always
 * gives the same bytes, wherever it is signed.
 */
export function createInlineKeySigner(privateKey: Hex): (tx: TransactionSerializable) => Hex {
  const key = hexToBytes(privateKey)
  if (!secp256k1.privateKeyVerify(key)) throw new Error('not a valid secp256k1 private key')
  return (tx) => {
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

/**
 * A private key's signer. The work (serialize, hash, sign: about 80 µs a transaction, a quarter of a
 * core at 3,000/s) runs in the process's signing thread (signingThread.ts), off the event loop the API answers
 * on; where that thread cannot run, here.
 */
export function createKeySigner(privateKey: Hex): (tx: TransactionSerializable) => Promise<Hex> {
  // Checks the key here, so a bad one fails at start-up, not at the first signature.
  const inline = createInlineKeySigner(privateKey)
  return signInThread(privateKey, inline)
}
