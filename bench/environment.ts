import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs'
import { openPostgres } from '../src/db/socketUrl.ts'
import { BUILT_SERVICE_ARGS } from '../src/dev/builtService.ts'
import { withTimeout } from '../src/common/withTimeout.ts'
import { isLoopbackHost, sleep } from './stats.ts'

/** The Postgres the bench creates its database in (loopback only). */
export const ADMIN_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** Cleanups run in reverse order of registration, each bounded in time, each even if an earlier one failed. */
export class Cleanup {
  private steps: { name: string; fn: () => Promise<void> }[] = []
  private running: Promise<string[]> | null = null
  private done = false

  /** A step added while the cleanup runs is run by it too; one added after it finished runs at once (best effort). */
  add(name: string, fn: () => Promise<void>): void {
    if (this.done) void fn().catch(() => {})
    else this.steps.push({ name, fn })
  }

  /** Returns the problems met (empty when everything stopped cleanly). Safe to call twice. */
  run(): Promise<string[]> {
    return (this.running ??= (async () => {
      const problems: string[] = []
      // Last in, first out; steps added meanwhile (a process that was just being started) are picked up too.
      for (let step = this.steps.pop(); step; step = this.steps.pop()) {
        try {
          await withTimeout(step.fn(), 30_000, `cleanup "${step.name}"`)
        } catch (err) {
          problems.push(`${step.name}: ${(err as Error).message}`)
        }
      }
      this.done = true
      return problems
    })())
  }
}

export type BenchDatabase = { name: string; url: string; drop: () => Promise<void> }

/** A fresh database per run, like tests/helpers/database.ts, under its own prefix. */
export async function createBenchDatabase(adminUrl = ADMIN_DATABASE_URL): Promise<BenchDatabase> {
  const admin = new URL(adminUrl)
  if (!isLoopbackHost(admin.hostname)) throw new Error(`the bench only talks to Postgres on a loopback address, not ${admin.hostname}`)
  const name = `txb_bench_${randomBytes(5).toString('hex')}`
  const a = openPostgres(adminUrl, { max: 1, onnotice: () => {} })
  try {
    await a.unsafe(`CREATE DATABASE ${name}`)
  } finally {
    await a.end({ timeout: 5 })
  }
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    name,
    url: url.toString(),
    drop: async () => {
      const d = openPostgres(adminUrl, { max: 1, onnotice: () => {} })
      try {
        await d.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await d.end({ timeout: 5 })
      }
    },
  }
}

export type LogSummary = {
  lines: number
  /** pino levels: 40 warn, 50 error, 60 fatal. */
  warnings: number
  errors: number
  /** Distinct warn/error messages with how often each came, most frequent first. */
  top: { level: string; msg: string; count: number; example: string }[]
  /** Lines that are not pino JSON (stack traces, banner, stderr). */
  other: string[]
}

/** The log summaries of several instances as one (messages counted over all of them). */
export function mergeLogSummaries(list: LogSummary[]): LogSummary {
  if (list.length === 1) return list[0]!
  const byMsg = new Map<string, LogSummary['top'][number]>()
  for (const l of list)
    for (const t of l.top) {
      const key = `${t.level}:${t.msg}`
      const seen = byMsg.get(key)
      if (seen) seen.count += t.count
      else byMsg.set(key, { ...t })
    }
  return {
    lines: list.reduce((a, l) => a + l.lines, 0),
    warnings: list.reduce((a, l) => a + l.warnings, 0),
    errors: list.reduce((a, l) => a + l.errors, 0),
    top: [...byMsg.values()].sort((a, b) => b.count - a.count).slice(0, 10),
    other: list.flatMap((l, i) => l.other.map((o) => `[instance ${i + 1}] ${o}`)).slice(0, 50),
  }
}

/** Reads the service's pino output as it streams by and keeps what a report needs. */
class LogWatcher {
  private lines = 0
  private warnings = 0
  private errors = 0
  private readonly byMsg = new Map<string, { level: string; msg: string; count: number; example: string }>()
  private readonly other: string[] = []
  private partial = ''

  feed(chunk: string): void {
    const text = this.partial + chunk
    const parts = text.split('\n')
    this.partial = parts.pop() ?? ''
    // A line that never ends must not grow without bound.
    if (this.partial.length > 100_000) this.partial = ''
    for (const line of parts) this.line(line)
  }

  private line(line: string): void {
    if (!line.trim()) return
    this.lines++
    let entry: { level?: number; msg?: string } | null = null
    if (line.startsWith('{'))
      try {
        entry = JSON.parse(line) as { level?: number; msg?: string }
      } catch {
        entry = null
      }
    if (!entry || typeof entry.level !== 'number') {
      if (this.other.length < 50) this.other.push(line.slice(0, 500))
      return
    }
    if (entry.level < 40) return
    const level = entry.level >= 50 ? 'error' : 'warn'
    if (level === 'error') this.errors++
    else this.warnings++
    const msg = String(entry.msg ?? '')
    const key = `${level}:${msg}`
    const seen = this.byMsg.get(key)
    if (seen) seen.count++
    else if (this.byMsg.size < 200) this.byMsg.set(key, { level, msg, count: 1, example: line.slice(0, 800) })
  }

  summary(): LogSummary {
    return {
      lines: this.lines,
      warnings: this.warnings,
      errors: this.errors,
      top: [...this.byMsg.values()].sort((a, b) => b.count - a.count).slice(0, 10),
      other: this.other.filter((l) => !/^\s*(tx-broadcaster is running|GraphQL|REST|Dashboard|Chain)\b/.test(l)),
    }
  }
}

export type ServiceProcess = {
  url: string
  pid: number
  process: ChildProcess
  logs: () => LogSummary
  /** SIGTERM, then SIGKILL if it has not exited after graceMs. */
  stop: (graceMs?: number) => Promise<{ code: number | null; signal: string | null }>
}

/**
 * Starts the service as `npm start` runs it, `node --enable-source-maps dist/main.js --config <file>` (not
 * through npm, which would put a wrapper process between us and the service: the pid here is the service,
 * so its RSS is the service's). dist/ must be built (`npm run build`; run.ts does it).
 */
export async function startServiceProcess(opts: {
  repoRoot: string
  configPath: string
  databaseUrl: string
  port: number
  logFile: string | null
  logLevel?: string
  startTimeoutMs?: number
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[]
  /** Called right after the spawn with the stop function, so a cleanup can be registered before the banner is awaited. */
  onSpawn?: (stop: ServiceProcess['stop']) => void
}): Promise<ServiceProcess> {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...BUILT_SERVICE_ARGS, '--config', opts.configPath], {
    cwd: opts.repoRoot,
    env: {
      ...process.env,
      DATABASE_URL: opts.databaseUrl,
      PORT: String(opts.port),
      HOST: '127.0.0.1',
      LOG_LEVEL: opts.logLevel ?? 'info',
      BROADCASTER_CONFIG: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const watcher = new LogWatcher()
  const file: WriteStream | null = opts.logFile ? createWriteStream(opts.logFile) : null
  let head = ''
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const onChunk = (chunk: Buffer) => {
    const s = chunk.toString('utf8')
    file?.write(s)
    watcher.feed(s)
    if (head.length < 20_000) head += s
  }
  child.stdout!.on('data', onChunk)
  child.stderr!.on('data', onChunk)
  exited.then(() => file?.end())

  const stop = async (graceMs = 20_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return exited
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    try {
      return await exited
    } finally {
      clearTimeout(timer)
    }
  }

  opts.onSpawn?.(stop)

  const timeoutMs = opts.startTimeoutMs ?? 90_000
  const deadline = Date.now() + timeoutMs
  let url: string | null = null
  while (Date.now() < deadline) {
    const m = /GraphQL\s+(http:\/\/\S+)\/graphql/.exec(head)
    if (m) {
      url = m[1]!
      break
    }
    if (child.exitCode !== null || child.signalCode !== null) break
    await sleep(50)
  }
  if (!url) {
    await stop(3_000)
    throw new Error(`the service did not print its banner within ${timeoutMs} ms (exit ${child.exitCode ?? child.signalCode ?? 'none'}):\n${head.slice(-4_000)}`)
  }
  if (!isLoopbackHost(new URL(url).hostname)) {
    await stop(3_000)
    throw new Error(`the service listens on ${url}, not a loopback address`)
  }
  return { url, pid: child.pid!, process: child, logs: () => watcher.summary(), stop }
}

export type RssReport = {
  /** The highest peak of any one instance, all its processes at once (the figure the target applies to). */
  peakMb: number
  /** The kernel's own high-water mark (VmHWM) at the last sample, highest of any instance (its processes' marks added up): catches peaks between samples. */
  hwmMb: number | null
  samples: number
  /** Per phase, the highest RSS of any one instance. */
  byPhase: Record<string, number>
  /** One point per second: [seconds since start, MB of all instances together]. */
  series: [number, number][]
  /** Each instance's own peak (all its processes at once), and each of its processes' own peak. */
  instances: { pid: number; peakMb: number; hwmMb: number | null; processes: { pid: number; peakMb: number; hwmMb: number | null }[] }[]
  /** The per-instance peaks added up (an upper bound of what all instances held at once). */
  sumOfPeaksMb: number
  /** The highest total of all instances in one sample. */
  totalPeakMb: number
}

function readStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

/**
 * Samples VmRSS every intervalMs; keeps the peak of each instance, of their total, and per phase. Each group is one instance's processes (the service, and its pipeline process when
 * `pipeline.process` is "separate"): an instance's RSS is its processes' sum in the same sample.
 */
export function startRssSampler(listGroups: () => number[][], intervalMs = 200) {
  const start = Date.now()
  let phase = 'startup'
  /** Every pid each instance has had (a restarted pipeline process has a new one). */
  const groups: number[][] = listGroups().map((g) => [...g])
  const peakKb = groups.map(() => 0)
  const processPeakKb = new Map<number, number>()
  const hwmKb = new Map<number, number>()
  let totalPeakKb = 0
  let samples = 0
  const byPhase: Record<string, number> = {}
  const series: [number, number][] = []
  let lastSecond = -1
  const sample = () => {
    let total = 0
    let found = 0
    listGroups().forEach((pids, i) => {
      let instance = 0
      for (const pid of pids) {
        if (groups[i] && !groups[i]!.includes(pid)) groups[i]!.push(pid)
        const kb = readStatusKb(pid, 'VmRSS')
        if (kb === null) continue
        found++
        instance += kb
        hwmKb.set(pid, readStatusKb(pid, 'VmHWM') ?? hwmKb.get(pid) ?? 0)
        processPeakKb.set(pid, Math.max(processPeakKb.get(pid) ?? 0, kb))
      }
      total += instance
      peakKb[i] = Math.max(peakKb[i]!, instance)
      byPhase[phase] = Math.max(byPhase[phase] ?? 0, instance)
    })
    if (found === 0) return
    samples++
    totalPeakKb = Math.max(totalPeakKb, total)
    const second = Math.floor((Date.now() - start) / 1000)
    if (second !== lastSecond && series.length < 7_200) {
      lastSecond = second
      series.push([second, Math.round(total / 1024)])
    }
  }
  sample()
  const timer = setInterval(sample, intervalMs)
  const mb = (kb: number) => Math.round(kb / 1024)
  // An instance's high-water mark: its processes' VmHWM added up (each may have peaked at another moment).
  const groupHwm = (pids: number[]) => (pids.some((p) => hwmKb.has(p)) ? mb(pids.reduce((sum, p) => sum + (hwmKb.get(p) ?? 0), 0)) : null)
  return {
    setPhase(name: string) {
      sample()
      phase = name
    },
    report(): RssReport {
      sample()
      const hwms = groups.map(groupHwm).filter((h): h is number => h !== null)
      return {
        peakMb: mb(Math.max(0, ...peakKb)),
        hwmMb: hwms.length ? Math.max(...hwms) : null,
        samples,
        byPhase: Object.fromEntries(Object.entries(byPhase).map(([k, v]) => [k, mb(v)])),
        series,
        instances: groups.map((pids, i) => ({
          pid: pids[0]!,
          peakMb: mb(peakKb[i]!),
          hwmMb: groupHwm(pids),
          processes: pids.map((pid) => ({ pid, peakMb: mb(processPeakKb.get(pid) ?? 0), hwmMb: hwmKb.has(pid) ? mb(hwmKb.get(pid)!) : null })),
        })),
        sumOfPeaksMb: mb(peakKb.reduce((a, b) => a + b, 0)),
        totalPeakMb: mb(totalPeakKb),
      }
    },
    stop() {
      clearInterval(timer)
    },
  }
}
export type RssSampler = ReturnType<typeof startRssSampler>
