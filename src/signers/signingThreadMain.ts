import { parentPort } from 'node:worker_threads'
import type { Hex } from 'viem'
import { keyBytes, signWithKeyBytes } from './signWithKey.ts'
import type { SignBatch, SigningThreadReply, SigningThreadRequest } from './signingThread.ts'

/**
 * The signing thread: holds the keys it was given and signs batches of transactions, so the
 * ECDSA, RLP and keccak work of a batch runs beside the API's event loop instead of on it.
 */
const keys = new Map<number, Uint8Array>()
const port = parentPort!

function signBatch(batch: SignBatch): SigningThreadReply {
  const results = batch.items.map(({ keyId, tx }) => {
    const key = keys.get(keyId)
    if (!key) return { error: `signing thread: unknown key ${keyId}` }
    try {
      return { raw: signWithKeyBytes(tx, key) }
    } catch (err) {
      return { error: (err as Error).message }
    }
  })
  return { kind: 'signed', batchId: batch.batchId, results }
}

port.on('message', (msg: SigningThreadRequest) => {
  if (msg.kind === 'key') keys.set(msg.keyId, keyBytes(msg.privateKey as Hex))
  else port.postMessage(signBatch(msg))
})
port.postMessage({ kind: 'ready' } satisfies SigningThreadReply)
