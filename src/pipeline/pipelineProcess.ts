import { fork, type ChildProcess } from 'node:child_process'
import { setPriority } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { MetricObjectWithValues, MetricValue } from 'prom-client'
import type { Logger } from '../common/logger.ts'
import type { FileConfig } from '../config/schema.ts'
import type { Stages } from './startStages.ts'
import { API_LOAD_SAMPLE_MS, type ApiLoadMonitor } from '../api/apiLoad.ts'
import { apiIsBusy } from '../core/apiFirst.ts'
import { readBuildId } from './buildId.ts'

/** A registry's metrics as prom-client serializes them (`getMetricsAsJSON`), to cross the IPC channel. */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[]

/** Messages from the API's process to the pipeline process. */
export type ToPipeline =
  | { type: 'start'; config: FileConfig; databaseUrl: string; logLevel: string; devMode: boolean; buildId: string | null }
  | { type: 'kick'; chainId: number; signer: string }
  | { type: 'metrics'; id: number }
  /** The API's process is saturated (core/apiFirst.ts), or no longer: sent on each change. */
  | { type: 'apiBusy'; busy: boolean }
  | { type: 'stop' }

/** Messages from the pipeline process. */
export type FromPipeline =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'metrics'; id: number; metrics: MetricsJson }
  /** Sent every HEARTBEAT_MS once ready: its event loop turns. */
  | { type: 'heartbeat' }

/** Running from the TypeScript sources (through tsx) rather than the build in dist/ (`npm run build`). */
const FROM_SOURCES = import.meta.url.endsWith('.ts')
const CHILD_ENTRY = fileURLToPath(new URL(FROM_SOURCES ? './pipelineChild.ts' : './pipelineChild.js', import.meta.url))
/** The build this process started from: a child restarted later must be of the same one (buildId.ts). */
const BUILD_ID = readBuildId()
/** Start-up includes loading keystores and verifying every provider. */
const READY_TIMEOUT_MS = 120_000
/**
 * The child stops its stages and pg-boss within CHILD_STOP_DEADLINE_MS (pipelineChild.ts) and exits; past
 * this it is killed. Both fit inside main.ts's 20 s for the whole service.stop().
 */
const STOP_TIMEOUT_MS = 9_000
export const CHILD_STOP_DEADLINE_MS = 8_000
/** Restarts within this window count towards a crash loop (/readyz). */
const CRASH_LOOP_WINDOW_MS = 120_000
const METRICS_TIMEOUT_MS = 2_000
/** After an unexpected exit, wait this long before each restart (the last value repeats). */
const RESTART_DELAYS_MS = [500, 1_000, 2_000, 5_000, 10_000, 30_000]
/** A child that ran this long before it died starts the delays over. */
const HEALTHY_AFTER_MS = 60_000
/** The child says it is alive this often... */
export const HEARTBEAT_MS = 1_000
/**
 * ...and one silent this long is hung (an event loop stuck, or the process stopped): it is killed and restarted
 * like one that died. Generous, since at its lower priority a busy machine can hold its loop back for seconds.
 */
const HEARTBEAT_TIMEOUT_MS = 15_000

export type PipelineStatus = { pid: number | null; restarts: number; recentRestarts: number; downSince: number | null }

export type PipelineProcess = Stages & {
  /** The pipeline process's metrics as prom-client JSON (empty while it is not running). */
  metrics: () => Promise<MetricsJson>
  /** For /readyz: the running child's pid, restarts so far (and in the last 2 minutes), and since when (epoch ms) none has been running. */
  status: () => PipelineStatus
}

/**
 * Node flags for the child: from the sources, the TypeScript loader (however the parent was started:
 * `tsx`, `node --import tsx` or bin/tx-broadcaster.js); from dist/, none. Plus the parent's `--cpu-prof`,
 * `--cpu-prof-dir`, source map and heap size flags, so they apply to both processes. Other flags stay the parent's.
 */
function childExecArgv(): string[] {
  const kept: string[] = []
  const argv = process.execArgv
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--cpu-prof' || a === '--enable-source-maps' || /^--(cpu-prof-dir|max-old-space-size|max-semi-space-size)=/.test(a)) kept.push(a)
    // "--cpu-prof-dir X" takes the next argument with it.
    else if (a === '--cpu-prof-dir' && argv[i + 1] !== undefined) kept.push(a, argv[++i]!)
  }
  return FROM_SOURCES ? ['--import', import.meta.resolve('tsx'), ...kept] : kept
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
  /** The current child and its own state: an old child's late messages or exit never touch a newer one. */
  type Child = { proc: ChildProcess; ready: boolean; waiters: Map<number, (metrics: MetricsJson) => void>; lastHeartbeat: number }
  let current: Child | null = null
  let stopping = false
  /** Restarts since the last child that ran long enough (paces the backoff). */
  let restarts = 0
  /** When each restart happened: a crash loop is reported even if every child comes up for a moment. */
  const restartTimes: number[] = []
  let totalRestarts = 0
  let downSince: number | null = null
  let restartTimer: NodeJS.Timeout | null = null
  let metricsId = 0
  let apiBusy = false

  /** IPC to a child that is dying fails with EPIPE: that child is being replaced anyway, so the error is only logged. */
  const send = (c: Child, m: ToPipeline) => {
    if (!c.proc.connected) return
    c.proc.send(m, (err) => {
      if (err) log.debug({ err, type: m.type }, 'message to the pipeline process not delivered')
    })
  }

  /** The one place restarts are scheduled: after a child died, or after a restart failed to start. */
  function scheduleRestart(why: string, err?: unknown): void {
    if (stopping || restartTimer) return
    const delay = RESTART_DELAYS_MS[Math.min(restarts++, RESTART_DELAYS_MS.length - 1)]!
    totalRestarts++
    restartTimes.push(Date.now())
    while (restartTimes.length > 20) restartTimes.shift()
    log.error({ err, restartInMs: delay }, `${why}; restarting it`)
    restartTimer = setTimeout(() => {
      restartTimer = null
      if (!stopping) spawnChild().catch((e) => scheduleRestart('pipeline process restart failed', e))
    }, delay)
  }

  // Async: a fork that fails at once (ENOMEM) throws, and becomes a rejection for the caller (a restart is
  // scheduled), not an exception out of the restart timer, which took the API's process down with it.
  async function spawnChild(): Promise<void> {
    const proc = fork(CHILD_ENTRY, [], {
      execArgv: childExecArgv(),
      serialization: 'advanced', // structured clone: the parsed config carries bigints
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    const c: Child = { proc, ready: false, waiters: new Map(), lastHeartbeat: Date.now() }
    current = c
    const startedAt = Date.now()
    // A send to a dying child: logged here, the 'exit' handler does the rest (a failed fork: see below).
    proc.on('error', (err) => log.warn({ err }, 'pipeline process error'))
    try {
      // Raising niceness needs no privilege. Set before the child has loaded anything, so its whole run is at this priority.
      if (proc.pid !== undefined) setPriority(proc.pid, nice)
    } catch (err) {
      log.warn({ err, nice }, 'could not lower the pipeline process priority; it runs at its inherited priority')
    }
    send(c, { type: 'start', config: opts.config, databaseUrl: opts.databaseUrl, logLevel: opts.log.level, devMode: opts.devMode, buildId: BUILD_ID })
    return new Promise<void>((resolve, reject) => {
      let settled = false
      const settle = (err?: Error) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        if (err) reject(err)
        else resolve()
      }
      const timer = setTimeout(() => {
        settle(new Error(`the pipeline process did not start within ${READY_TIMEOUT_MS / 1000} s`))
        proc.kill('SIGKILL')
      }, READY_TIMEOUT_MS)
      // A fork that failed later (EAGAIN) emits 'error' and never 'exit': a failed start, restarted, not a wait
      // of READY_TIMEOUT_MS for a child that does not exist.
      proc.once('error', (err) => {
        if (proc.pid === undefined) settle(err)
      })
      proc.on('message', (m: FromPipeline) => {
        if (m.type === 'ready') {
          // Too late (the start timed out): that child is being killed.
          if (settled) return
          c.ready = true
          c.lastHeartbeat = Date.now()
          downSince = null
          send(c, { type: 'apiBusy', busy: apiBusy })
          log.info({ pid: proc.pid, nice }, 'pipeline process running')
          settle()
        } else if (m.type === 'failed') settle(new Error(`the pipeline process failed to start: ${m.message}`))
        else if (m.type === 'metrics') c.waiters.get(m.id)?.(m.metrics)
        else if (m.type === 'heartbeat') c.lastHeartbeat = Date.now()
      })
      proc.once('exit', (code, signal) => {
        for (const done of c.waiters.values()) done([])
        c.waiters.clear()
        const wasReady = c.ready
        c.ready = false
        if (current === c) current = null
        if (!wasReady) return settle(new Error(`the pipeline process exited during start-up (code ${code}, signal ${signal})`))
        if (stopping) return
        // Nothing accepted is lost (the rows are in Postgres); the stages only pause until the restart.
        downSince = Date.now()
        if (Date.now() - startedAt > HEALTHY_AFTER_MS) restarts = 0
        log.error({ code, signal }, 'pipeline process exited')
        scheduleRestart('pipeline process exited')
      })
    })
  }

  // The sign stage in the child gives way while the API is saturated, as it does in one process.
  const loadTimer = setInterval(() => {
    const busy = apiIsBusy(opts.apiLoad.current())
    if (busy === apiBusy) return
    apiBusy = busy
    if (current?.ready) send(current, { type: 'apiBusy', busy })
  }, API_LOAD_SAMPLE_MS)
  loadTimer.unref()

  // A child that is alive but no longer turns its event loop runs nothing: to /readyz and to the restart logic
  // it is as good as dead. Killed, it exits, and the 'exit' handler above restarts it.
  let lastLook = Date.now()
  const heartbeatTimer = setInterval(() => {
    const c = current
    const now = Date.now()
    const late = now - lastLook - HEARTBEAT_MS
    lastLook = now
    // This process's own loop stalled (a paused VM or container, a laptop asleep, a long GC): Node runs timers
    // before it reads the heartbeats queued meanwhile, so a healthy child looked silent and was killed. The silence
    // is counted from when this process could hear again.
    if (c && late > HEARTBEAT_TIMEOUT_MS / 3) c.lastHeartbeat = Math.max(c.lastHeartbeat, now - HEARTBEAT_MS)
    if (!c?.ready || stopping || now - c.lastHeartbeat < HEARTBEAT_TIMEOUT_MS) return
    log.error({ pid: c.proc.pid, silentMs: Date.now() - c.lastHeartbeat }, 'pipeline process stopped answering; killing it')
    c.lastHeartbeat = Date.now() // one kill per silence
    c.proc.kill('SIGKILL')
  }, HEARTBEAT_MS)
  heartbeatTimer.unref()

  try {
    await spawnChild()
  } catch (err) {
    clearInterval(loadTimer)
    clearInterval(heartbeatTimer)
    throw err
  }

  return {
    status: () => ({
      pid: current?.ready ? (current.proc.pid ?? null) : null,
      restarts: totalRestarts,
      recentRestarts: restartTimes.filter((t) => Date.now() - t < CRASH_LOOP_WINDOW_MS).length,
      downSince,
    }),
    kick(chainId, signer) {
      // While the child is down the kick is dropped: on start its recovery sweep finds every QUEUED row.
      if (current?.ready) send(current, { type: 'kick', chainId, signer })
    },
    metrics() {
      const c = current
      if (!c?.ready || !c.proc.connected) return Promise.resolve([])
      const id = ++metricsId
      return new Promise<MetricsJson>((resolve) => {
        const timer = setTimeout(() => done([]), METRICS_TIMEOUT_MS)
        const done = (metrics: MetricsJson) => {
          clearTimeout(timer)
          c.waiters.delete(id)
          resolve(metrics)
        }
        c.waiters.set(id, done)
        send(c, { type: 'metrics', id })
      })
    },
    async stop() {
      stopping = true
      clearInterval(loadTimer)
      clearInterval(heartbeatTimer)
      if (restartTimer) clearTimeout(restartTimer)
      const c = current
      if (!c || c.proc.exitCode !== null || c.proc.signalCode !== null) return
      const exited = new Promise<void>((resolve) => c.proc.once('exit', () => resolve()))
      if (c.proc.connected) send(c, { type: 'stop' })
      else c.proc.kill('SIGTERM')
      const timer = setTimeout(() => {
        log.warn('pipeline process did not stop in time; killing it')
        c.proc.kill('SIGKILL')
      }, STOP_TIMEOUT_MS)
      await exited
      clearTimeout(timer)
    },
  }
}
