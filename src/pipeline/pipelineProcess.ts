import { fork, type ChildProcess } from 'node:child_process'
import { setPriority } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { Logger } from '../common/logger.ts'
import type { FileConfig } from '../config/schema.ts'
import type { Stages } from './startStages.ts'
import { API_LOAD_SAMPLE_MS, type ApiLoadMonitor } from '../api/apiLoad.ts'
import { apiIsBusy } from '../core/apiFirst.ts'

/** Messages from the API's process to the pipeline process. */
export type ToPipeline =
  | { type: 'start'; config: FileConfig; databaseUrl: string; logLevel: string; devMode: boolean }
  | { type: 'kick'; chainId: number; signer: string }
  | { type: 'metrics'; id: number }
  /** The API's process is saturated (core/apiFirst.ts), or no longer: sent on each change. */
  | { type: 'apiBusy'; busy: boolean }
  | { type: 'stop' }

/** Messages from the pipeline process. */
export type FromPipeline = { type: 'ready' } | { type: 'failed'; message: string } | { type: 'metrics'; id: number; metrics: unknown[] }

const CHILD_ENTRY = fileURLToPath(new URL('./pipelineChild.ts', import.meta.url))
/** Start-up includes loading keystores and verifying every provider. */
const READY_TIMEOUT_MS = 120_000
/** The stages finish what they hold (pg-boss alone may take 10 s); then the process is killed. */
const STOP_TIMEOUT_MS = 20_000
const METRICS_TIMEOUT_MS = 2_000
/** After an unexpected exit, wait this long before each restart (the last value repeats). */
const RESTART_DELAYS_MS = [500, 1_000, 2_000, 5_000, 10_000, 30_000]
/** A child that ran this long before it died starts the delays over. */
const HEALTHY_AFTER_MS = 60_000

export type PipelineProcess = Stages & {
  /** The pipeline process's metrics as prom-client JSON (empty while it is not running). */
  metrics: () => Promise<unknown[]>
  /** For /readyz: the running child's pid, restarts so far, and since when (epoch ms) none has been running. */
  status: () => { pid: number | null; restarts: number; downSince: number | null }
}

/**
 * Node flags for the child: the TypeScript loader (the sources run through tsx, however the parent
 * was started: `tsx`, `node --import tsx` or bin/tx-broadcaster.js) plus the parent's profiling and
 * heap flags, so `--cpu-prof` or `--max-old-space-size` apply to both processes.
 */
function childExecArgv(): string[] {
  const kept: string[] = []
  const argv = process.execArgv
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (/^--(cpu-prof|heap-prof|max-old-space-size|max-semi-space-size)/.test(a)) {
      kept.push(a)
      // A flag given as "--cpu-prof-dir X" takes the next argument with it.
      if (/^--(cpu-prof-dir|cpu-prof-name|heap-prof-dir)$/.test(a) && argv[i + 1] !== undefined) kept.push(argv[++i]!)
    }
  }
  return ['--import', import.meta.resolve('tsx'), ...kept]
}

/**
 * Runs the stages (startStages.ts) in a child process whose CPU priority is lowered by `nice`, so
 * that under contention the kernel gives the API's process the CPU first: a burst of requests is
 * answered while the pipeline catches up, with no heuristic in the code. Accepted rows are in
 * Postgres, so the child may die, or be restarted, without losing any: on start its recovery sweep
 * picks up every QUEUED row, and kicks sent while it is down are not needed.
 *
 * The child exits when this process dies (its IPC channel closes), so a kill -9 of the API's process
 * leaves no pipeline running without it.
 */
export async function startPipelineProcess(opts: {
  config: FileConfig
  databaseUrl: string
  log: Logger
  devMode: boolean
  apiLoad: ApiLoadMonitor
}): Promise<PipelineProcess> {
  const log = opts.log.child({ module: 'pipeline-process' })
  const nice = opts.config.pipeline.nice
  let child: ChildProcess | null = null
  let ready = false
  let stopping = false
  /** Restarts since the last child that ran long enough (paces the backoff). */
  let restarts = 0
  let totalRestarts = 0
  let downSince: number | null = null
  let restartTimer: NodeJS.Timeout | null = null
  let metricsId = 0
  const metricsWaiters = new Map<number, (metrics: unknown[]) => void>()

  /** A restart that failed to start is retried too, with the next delay. */
  function restartFailed(err: unknown): void {
    if (stopping) return
    const delay = RESTART_DELAYS_MS[Math.min(restarts++, RESTART_DELAYS_MS.length - 1)]!
    log.error({ err, restartInMs: delay }, 'pipeline process restart failed; trying again')
    restartTimer = setTimeout(() => {
      restartTimer = null
      if (!stopping) spawnChild().catch((e) => restartFailed(e))
    }, delay)
  }

  function spawnChild(): Promise<void> {
    const c = fork(CHILD_ENTRY, [], {
      execArgv: childExecArgv(),
      serialization: 'advanced', // structured clone: the parsed config carries bigints
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    child = c
    ready = false
    const startedAt = Date.now()
    try {
      // Raising niceness needs no privilege. Set before the child has loaded anything, so its whole run is at this priority.
      if (c.pid !== undefined) setPriority(c.pid, nice)
    } catch (err) {
      log.warn({ err, nice }, 'could not lower the pipeline process priority; it runs at normal priority')
    }
    c.send({ type: 'start', config: opts.config, databaseUrl: opts.databaseUrl, logLevel: opts.log.level, devMode: opts.devMode } satisfies ToPipeline)
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        c.kill('SIGKILL')
        reject(new Error(`the pipeline process did not start within ${READY_TIMEOUT_MS / 1000} s`))
      }, READY_TIMEOUT_MS)
      c.on('message', (m: FromPipeline) => {
        if (m.type === 'ready') {
          ready = true
          downSince = null
          clearTimeout(timer)
          c.send({ type: 'apiBusy', busy: apiBusy } satisfies ToPipeline)
          log.info({ pid: c.pid, nice }, 'pipeline process running')
          resolve()
        } else if (m.type === 'failed') {
          clearTimeout(timer)
          reject(new Error(`the pipeline process failed to start: ${m.message}`))
        } else if (m.type === 'metrics') metricsWaiters.get(m.id)?.(m.metrics)
      })
      c.once('exit', (code, signal) => {
        clearTimeout(timer)
        if (child === c) child = null
        for (const done of metricsWaiters.values()) done([])
        metricsWaiters.clear()
        if (!ready) return reject(new Error(`the pipeline process exited during start-up (code ${code}, signal ${signal})`))
        ready = false
        if (stopping) return
        downSince = Date.now()
        totalRestarts++
        // Nothing accepted is lost (the rows are in Postgres); the stages only pause until the restart.
        if (Date.now() - startedAt > HEALTHY_AFTER_MS) restarts = 0
        const delay = RESTART_DELAYS_MS[Math.min(restarts++, RESTART_DELAYS_MS.length - 1)]!
        log.error({ code, signal, restartInMs: delay }, 'pipeline process exited; restarting it')
        restartTimer = setTimeout(() => {
          restartTimer = null
          if (!stopping) spawnChild().catch((err) => restartFailed(err))
        }, delay)
      })
    })
  }

  // The sign stage in the child gives way while the API is saturated, as it does in one process.
  let apiBusy = false
  const loadTimer = setInterval(() => {
    const busy = apiIsBusy(opts.apiLoad.current())
    if (busy === apiBusy) return
    apiBusy = busy
    if (child?.connected && ready) child.send({ type: 'apiBusy', busy } satisfies ToPipeline)
  }, API_LOAD_SAMPLE_MS)
  loadTimer.unref()

  try {
    await spawnChild()
  } catch (err) {
    clearInterval(loadTimer)
    throw err
  }

  return {
    status: () => ({ pid: ready ? (child?.pid ?? null) : null, restarts: totalRestarts, downSince }),
    kick(chainId, signer) {
      // While the child is down the kick is dropped: on start its recovery sweep finds every QUEUED row.
      if (child?.connected && ready) child.send({ type: 'kick', chainId, signer } satisfies ToPipeline)
    },
    metrics() {
      const c = child
      if (!c?.connected || !ready) return Promise.resolve([])
      const id = ++metricsId
      return new Promise<unknown[]>((resolve) => {
        const timer = setTimeout(() => done([]), METRICS_TIMEOUT_MS)
        const done = (metrics: unknown[]) => {
          clearTimeout(timer)
          metricsWaiters.delete(id)
          resolve(metrics)
        }
        metricsWaiters.set(id, done)
        c.send({ type: 'metrics', id } satisfies ToPipeline)
      })
    },
    async stop() {
      stopping = true
      clearInterval(loadTimer)
      if (restartTimer) clearTimeout(restartTimer)
      const c = child
      if (!c || c.exitCode !== null || c.signalCode !== null) return
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()))
      if (c.connected) c.send({ type: 'stop' } satisfies ToPipeline)
      else c.kill('SIGTERM')
      const timer = setTimeout(() => {
        log.warn('pipeline process did not stop in time; killing it')
        c.kill('SIGKILL')
      }, STOP_TIMEOUT_MS)
      await exited
      clearTimeout(timer)
    },
  }
}
