import { Worker } from 'node:worker_threads'
import type { Hex, TransactionSerializable } from 'viem'
import { keyBytes, signWithKeyBytes } from './signWithKey.ts'

/** Messages between the service and its signing thread (signingThreadMain.ts). */
export type SignBatch = { kind: 'sign'; batchId: number; items: { keyId: number; tx: TransactionSerializable }[] }
export type SigningThreadRequest = { kind: 'key'; keyId: number; privateKey: string } | SignBatch
export type SigningThreadReply = { kind: 'ready' } | { kind: 'signed'; batchId: number; results: ({ raw: Hex } | { error: string })[] }

type Item = { keyId: number; tx: TransactionSerializable; resolve: (raw: Hex) => void; reject: (err: Error) => void }

/**
 * In-memory keys sign on one worker thread shared by the process: signing a batch of 200 took about
 * 50 ms of the event loop that also answers the API (issue 7). Calls made in the same tick go over as
 * one message. If the thread cannot start or dies, signing continues in-thread with the same code,
 * including what was in flight, so nothing is lost and the bytes never differ.
 */
class SigningThread {
  private worker: Worker | null = null
  private failed = false
  private nextKeyId = 1
  private nextBatchId = 1
  private readonly keys = new Map<number, Uint8Array>()
  private queue: Item[] = []
  private readonly inFlight = new Map<number, Item[]>()
  private scheduled = false

  register(privateKey: Hex): number {
    const keyId = this.nextKeyId++
    this.keys.set(keyId, keyBytes(privateKey)) // throws on an invalid key, here rather than in the thread
    if (!this.failed) {
      // Started with the first key, so its start-up (about a second: it loads viem) is over before the first batch.
      try {
        this.worker ??= this.start()
        this.worker.postMessage({ kind: 'key', keyId, privateKey } satisfies SigningThreadRequest)
      } catch (err) {
        this.fail(err as Error)
      }
    }
    return keyId
  }

  sign(keyId: number, tx: TransactionSerializable): Promise<Hex> {
    return new Promise<Hex>((resolve, reject) => {
      this.queue.push({ keyId, tx, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  private start(): Worker {
    const worker = new Worker(new URL('./signingThreadBoot.mjs', import.meta.url), {
      workerData: { entry: new URL('./signingThreadMain.ts', import.meta.url).href },
    })
    // Not a reason to keep the process alive: the service stops without waiting for it.
    worker.unref()
    worker.on('message', (msg: SigningThreadReply) => {
      if (msg.kind !== 'signed') return
      const items = this.inFlight.get(msg.batchId) ?? []
      this.inFlight.delete(msg.batchId)
      msg.results.forEach((r, i) => ('raw' in r ? items[i]?.resolve(r.raw) : items[i]?.reject(new Error(r.error))))
    })
    worker.on('error', (err) => this.fail(err))
    worker.on('exit', (code) => this.fail(new Error(`it exited with code ${code}`)))
    return worker
  }

  private fail(err: Error): void {
    if (this.failed) return
    this.failed = true
    this.worker = null
    process.emitWarning(`signing thread failed (${err.message}); signing on the main thread from now on`)
    const items = [...this.inFlight.values()].flat()
    this.inFlight.clear()
    for (const item of items) this.signHere(item)
  }

  private signHere(item: Item): void {
    const key = this.keys.get(item.keyId)
    if (!key) return item.reject(new Error(`unknown signing key ${item.keyId}`))
    try {
      item.resolve(signWithKeyBytes(item.tx, key))
    } catch (err) {
      item.reject(err as Error)
    }
  }

  private flush(): void {
    this.scheduled = false
    const items = this.queue
    this.queue = []
    if (items.length === 0) return
    if (this.failed || !this.worker) return items.forEach((item) => this.signHere(item))
    const batchId = this.nextBatchId++
    this.inFlight.set(batchId, items)
    this.worker.postMessage({ kind: 'sign', batchId, items: items.map(({ keyId, tx }) => ({ keyId, tx })) } satisfies SigningThreadRequest)
  }
}

let shared: SigningThread | null = null

/** A signer for an in-memory key that signs on the process's signing thread. */
export function createThreadKeySigner(privateKey: Hex): (tx: TransactionSerializable) => Promise<Hex> {
  shared ??= new SigningThread()
  const thread = shared
  const keyId = thread.register(privateKey)
  return (tx) => thread.sign(keyId, tx)
}
