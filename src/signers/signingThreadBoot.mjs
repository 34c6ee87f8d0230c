// Entry of the signing thread (see signingThread.ts). Plain JavaScript because a worker thread does not
// inherit the TypeScript loader of the main thread (tsx, or vitest's): it registers tsx itself, then
// loads the TypeScript entry.
import { workerData } from 'node:worker_threads'
import { register } from 'tsx/esm/api'

register()
await import(workerData.entry)
