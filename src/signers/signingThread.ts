import { Worker } from 'node:worker_threads'
import type { Hex, TransactionSerializable } from 'viem'

/**
 * One worker thread per process signs for every in-memory key (privateKey and keystore signers).
 *
 * Signing a batch on the event loop the API answers on held answers back: at 3,000 transactions a second
 * it took about a quarter of a core there (about 80 µs each), in slices between which requests waited. In a
 * thread, the kernel runs it beside the event loop. Signatures asked for in one turn of the event loop (the
 * sign stage asks for 20 between two yields) go to the thread as one message.
 *
 * The key is sent to the thread once; it stays in this process's memory, as before. If the thread cannot
 * start, dies, or leaves a signature unanswered for STALL_MS, everything waiting and everything after is
 * signed on the calling thread instead: signing is deterministic (RFC 6979), so the bytes are the same
 * either way, and an answer that still comes is ignored.
 */

const FROM_SOURCES = import.meta.url.endsWith('.ts')
const ENTRY = new URL(FROM_SOURCES ? './signingThreadWorker.ts' : './signingThreadWorker.js', import.meta.url)
/** A signature unanswered this long means the thread is stuck (a batch of 200 takes about 20 ms). */
const STALL_MS = 10_000

export type ToSigningThread =
  | { type: 'key'; key: number; privateKey: Hex }
  /** End the thread from inside, between two signatures. */
  | { type: 'exit'; code: number }
  | { type: 'sign'; items: { id: number; key: number; tx: TransactionSerializable }[] }
export type FromSigningThread = { id: number; raw?: Hex; error?: { name: string; message: string } }[]

type InlineSigner = (tx: TransactionSerializable) => Hex
type Waiting = { key: number; tx: TransactionSerializable; at: number; resolve: (raw: Hex) => void; reject: (err: unknown) => void }

/** Where a failure of the thread is reported; the sign stage passes the service's logger. */
type FailureReporter = (message: string) => void

const keys: { privateKey: Hex; inline: InlineSigner }[] = []
const keyIndex = new Map<Hex, number>()
const waiting = new Map<number, Waiting>()
let unsent: Extract<ToSigningThread, { type: 'sign' }>['items'] = []
let worker: Worker | null = null
let watchdog: NodeJS.Timeout | null = null
let failed = false
let nextId = 0
let flushScheduled = false
let messages = 0
let report: FailureReporter = (message) => process.emitWarning(message)

/** Where signatures are made now, and how many messages went to the thread (tests). */
export function signingThreadState(): { where: 'not started' | 'thread' | 'inline'; messages: number } {
  return { where: failed ? 'inline' : worker ? 'thread' : 'not started', messages }
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
      if (a.error) w.reject(Object.assign(new Error(a.error.message), { name: a.error.name }))
      else w.resolve(a.raw!)
    }
    if (waiting.size === 0) started.unref()
  })
  started.on('error', giveUp)
  started.on('messageerror', giveUp)
  started.on('exit', (code) => giveUp(new Error(`exited with code ${code}`)))
  watchdog = setInterval(() => {
    // The oldest waiting signature comes first (a Map keeps insertion order).
    const oldest = waiting.values().next().value as Waiting | undefined
    if (oldest && Date.now() - oldest.at > STALL_MS) giveUp(new Error(`a signature went unanswered for ${STALL_MS} ms`))
  }, 1_000)
  watchdog.unref()
  return started
}

function signInline(w: Waiting): void {
  try {
    w.resolve(keys[w.key]!.inline(w.tx))
  } catch (e) {
    w.reject(e)
  }
}

function giveUp(err: unknown): void {
  if (failed) return
  failed = true
  const dead = worker
  worker = null
  if (watchdog) clearInterval(watchdog)
  // Never worker.terminate(): stopping a thread inside the secp256k1 addon aborts the whole process
  // (3 of 15 tries here). A live thread is asked to end itself between two signatures, and let go of.
  if (dead) {
    dead.postMessage({ type: 'exit', code: 1 } satisfies ToSigningThread)
    dead.unref()
  }
  report(`signing thread failed (${err instanceof Error ? err.message : String(err)}); signing on the main thread from now on`)
  unsent = []
  for (const [id, w] of waiting) {
    waiting.delete(id)
    signInline(w)
  }
}

function flush(): void {
  flushScheduled = false
  const items = unsent
  unsent = []
  if (!worker || items.length === 0) return
  try {
    worker.postMessage({ type: 'sign', items } satisfies ToSigningThread)
    messages++
  } catch {
    // A transaction that cannot be copied to the thread (it only ever gets plain data): sign these here.
    for (const { id } of items) {
      const w = waiting.get(id)
      if (!w) continue
      waiting.delete(id)
      signInline(w)
    }
    if (waiting.size === 0) worker.unref()
  }
}

/** A signer for `privateKey` that signs in the signing thread, or with `inline` where the thread cannot run. */
export function signInThread(privateKey: Hex, inline: InlineSigner): (tx: TransactionSerializable) => Promise<Hex> {
  // One entry per key, however many signers are made for it (tests start services again and again).
  let key = keyIndex.get(privateKey)
  if (key === undefined) {
    key = keys.push({ privateKey, inline }) - 1
    keyIndex.set(privateKey, key)
    worker?.postMessage({ type: 'key', key, privateKey } satisfies ToSigningThread)
  }
  const k = key
  return (tx) => {
    const thread = start()
    if (!thread) return new Promise((resolve) => resolve(inline(tx)))
    return new Promise<Hex>((resolve, reject) => {
      const id = nextId++
      waiting.set(id, { key: k, tx, at: Date.now(), resolve, reject })
      unsent.push({ id, key: k, tx })
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
 * API's, when the pipeline runs in its own process) never starts one. `onFailure` reports a failed thread.
 */
export function startSigningThread(onFailure?: FailureReporter): void {
  if (onFailure) report = onFailure
  if (keys.length) start()
}

/** Tests: end the thread as a crash would (between two messages), to see the calling thread take over. */
export async function killSigningThreadForTests(): Promise<void> {
  const w = worker
  if (!w) return
  // The thread is unref'd whenever nothing waits on it: keep this process up until it has exited.
  const keepAlive = setInterval(() => {}, 1_000)
  const exited = new Promise<void>((resolve) => w.once('exit', () => resolve())).finally(() => clearInterval(keepAlive))
  w.postMessage({ type: 'exit', code: 1 } satisfies ToSigningThread)
  await exited
}
