import { parentPort } from 'node:worker_threads'
import type { Hex, TransactionSerializable } from 'viem'
import { createInlineKeySigner } from './signWithKey.ts'
import type { FromSigningThread, ToSigningThread } from './signingThread.ts'

/** The signing thread (signingThread.ts): signs each message's transactions in order and answers once. */
const signers = new Map<number, (tx: TransactionSerializable) => Hex>()

parentPort!.on('message', (m: ToSigningThread) => {
  if (m.type === 'exit') process.exit(m.code)
  if (m.type === 'key') {
    signers.set(m.key, createInlineKeySigner(m.privateKey))
    return
  }
  const answers: FromSigningThread = m.items.map(({ id, key, tx }) => {
    try {
      return { id, raw: signers.get(key)!(tx) }
    } catch (err) {
      return { id, error: err instanceof Error ? { name: err.name, message: err.message } : { name: 'Error', message: String(err) } }
    }
  })
  parentPort!.postMessage(answers)
})
