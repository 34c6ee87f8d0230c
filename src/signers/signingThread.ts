import { Worker } from 'node:worker_threads'
import type { Hex, TransactionSerializable } from 'viem'

/**
 * One worker thread per process signs for every in-memory key (privateKey and keystore signers).
 *
 * Signing a batch on the event loop the API answers on held answers back: at 3,000 transactions a second
 * it took about a fifth of a core there, in slices between which requests waited. In a thread, the kernel
 * runs it beside the event loop. Signatures asked for in one turn of the event loop (the sign stage asks
 * for 20 between two yields) go to the thread as one message.
 *
 * The key is sent to the thread once; it stays in this process's memory, as before. If the thread cannot
 * start or dies, everything waiting and everything after is signed on the calling thread instead:
 * signing is deterministic (RFC 6979), so the bytes are the same either way.
 */

const FROM_SOURCES = import.meta.url.endsWith('.ts')
const ENTRY = new URL(FROM_SOURCES ? './signingThreadWorker.ts' : './signingThreadWorker.js', import.meta.url)

export type ToSigningThread =
  | { type: 'key'; key: number; privateKey: Hex }
  | { type: 'sign'; items: { id: number; key: number; tx: TransactionSerializable }[] }
export type FromSigningThread = { id: number; raw?: Hex; error?: string }[]

type InlineSigner = (tx: TransactionSerializable) => Hex
type Waiting = { key: number; tx: TransactionSerializable; resolve: (raw: Hex) => void; reject: (err: unknown) => void }

const keys: { privateKey: Hex; inline: InlineSigner }[] = []
const waiting = new Map<number, Waiting>()
let unsent: Extract<ToSigningThread, { type: 'sign' }>['items'] = []
let worker: Worker | null = null
let failed = false
let nextId = 0
let flushScheduled = false

/** Where signatures are made now: for tests and the start-up log. */
export function signingThreadState(): 'not started' | 'thread' | 'inline' {
  return failed ? 'inline' : worker ? 'thread' : 'not started'
}

function start(): Worker | null {
  if (worker || failed) return worker
  try {
    // From the sources (tests, `tsx`), the thread loads TypeScript through tsx's loader, registered inside it.
    worker = FROM_SOURCES
      ? new Worker(
          `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ register }) => { register(); return import(${JSON.stringify(ENTRY.href)}) })`,
          { eval: true },
        )
      : new Worker(ENTRY)
  } catch (err) {
    giveUp(err)
    return null
  }
  const started = worker
  // Only while signatures are awaited does the thread keep the process alive.
  started.unref()
  keys.forEach((k, key) => started.postMessage({ type: 'key', key, privateKey: k.privateKey } satisfies ToSigningThread))
  started.on('message', (answers: FromSigningThread) => {
    for (const a of answers) {
      const w = waiting.get(a.id)
      if (!w) continue
      waiting.delete(a.id)
      if (a.error !== undefined) w.reject(new Error(a.error))
      else w.resolve(a.raw!)
    }
    if (waiting.size === 0) started.unref()
  })
  started.on('error', giveUp)
  started.on('exit', (code) => giveUp(new Error(`exited with code ${code}`)))
  return started
}

function giveUp(err: unknown): void {
  if (failed) return
  failed = true
  const dead = worker
  worker = null
  void dead?.terminate()
  process.emitWarning(`signing thread failed (${err instanceof Error ? err.message : String(err)}); signing on the main thread from now on`)
  unsent = []
  for (const [id, w] of waiting) {
    waiting.delete(id)
    try {
      w.resolve(keys[w.key]!.inline(w.tx))
    } catch (e) {
      w.reject(e)
    }
  }
}

function flush(): void {
  flushScheduled = false
  const items = unsent
  unsent = []
  if (worker && items.length) worker.postMessage({ type: 'sign', items } satisfies ToSigningThread)
}

/** A signer for `privateKey` that signs in the signing thread, or with `inline` where the thread cannot run. */
export function signInThread(privateKey: Hex, inline: InlineSigner): (tx: TransactionSerializable) => Promise<Hex> {
  const key = keys.push({ privateKey, inline }) - 1
  worker?.postMessage({ type: 'key', key, privateKey } satisfies ToSigningThread)
  return (tx) => {
    const thread = start()
    if (!thread) return new Promise((resolve) => resolve(inline(tx)))
    return new Promise<Hex>((resolve, reject) => {
      const id = nextId++
      waiting.set(id, { key, tx, resolve, reject })
      unsent.push({ id, key, tx })
      if (waiting.size === 1) thread.ref()
      if (!flushScheduled) {
        flushScheduled = true
        queueMicrotask(flush)
      }
    })
  }
}

/**
 * Starts the thread now if any key signs through it (the sign stage calls this when it starts), so the
 * first transaction does not wait for the thread to load (about 0.2 s). A process that never signs (the
 * API's, when the pipeline runs in its own process) never starts one.
 */
export function startSigningThread(): void {
  if (keys.length) start()
}

/** Tests: end the thread as a crash would, to see the calling thread take over. */
export async function killSigningThreadForTests(): Promise<void> {
  const w = worker
  if (w) await new Promise<void>((resolve) => w.once('exit', () => resolve()).terminate())
}
