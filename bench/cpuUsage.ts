import { readdirSync, readFileSync } from 'node:fs'
import { round } from './stats.ts'

/**
 * Who used the CPU during each phase: the service process, the Postgres backends serving the bench
 * database (plus Postgres' own background processes), anvil, the bench itself, and everything else on
 * the machine. Read from /proc at phase boundaries; Linux only (elsewhere the figures are null).
 */

const TICKS_PER_SEC = 100 // USER_HZ; 100 on every Linux build that matters

function procCpuSec(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(rest[11]) + Number(rest[12])) / TICKS_PER_SEC
  } catch {
    return null
  }
}

/** CPU seconds of the Postgres processes for this database (backends show it in their title) and of Postgres' shared background processes. */
function postgresCpuSec(dbName: string): { db: number; background: number } {
  let db = 0
  let background = 0
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d))
  } catch {
    return { db, background }
  }
  for (const p of pids) {
    let cmd: string
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8')
    } catch {
      continue
    }
    if (!cmd.startsWith('postgres:')) continue
    const sec = procCpuSec(Number(p)) ?? 0
    if (cmd.includes(` ${dbName} `)) db += sec
    else if (/(walwriter|checkpointer|background writer|autovacuum|wal writer)/.test(cmd)) background += sec
  }
  return { db, background }
}

/**
 * The machine's CPU seconds: busy (user, nice, system, irq, softirq) and stolen (steal: time a virtual
 * CPU wanted to run but the hypervisor gave to another guest). Steal is not busy: on a VM with noisy
 * neighbours it is the machine getting slower, not anyone on it working harder.
 */
function machineCpuSec(): { busy: number; steal: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f
    return { busy: (user + nice + system + irq + softirq) / TICKS_PER_SEC, steal: steal / TICKS_PER_SEC }
  } catch {
    return null
  }
}

/**
 * Seconds in which at least one task waited on I/O (Linux pressure stall information, "some" line of
 * /proc/pressure/io). On this kind of VM a Postgres checkpoint or the host's disk can stall every commit
 * for a second or more: answers then come late together, and no code of ours ran slower.
 */
function ioStallSec(): number | null {
  try {
    const m = /^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/io', 'utf8'))
    return m ? Number(m[1]) / 1e6 : null
  } catch {
    return null
  }
}

/** Samples ioStallSec() four times a second, to tell how long I/O stalled within any window of the run. */
export function startIoStallSampler(intervalMs = 250) {
  const samples: [number, number][] = []
  const take = () => {
    const v = ioStallSec()
    if (v !== null && samples.length < 100_000) samples.push([performance.now(), v])
  }
  take()
  const timer = setInterval(take, intervalMs)
  timer.unref()
  return {
    /** Seconds some task waited on I/O between two performance.now() instants (to the sampling's resolution), or null without PSI. */
    stalledBetween(from: number, to: number): number | null {
      const inside = samples.filter(([t]) => t >= from - intervalMs && t <= to + intervalMs)
      if (inside.length < 2) return null
      return inside[inside.length - 1]![1] - inside[0]![1]
    },
    stop: () => clearInterval(timer),
  }
}

type Snapshot = {
  at: number
  service: number
  anvil: number
  postgres: number
  pgBackground: number
  bench: number
  machine: number | null
  steal: number | null
  ioStall: number | null
}

export type CpuPhase = {
  phase: string
  wallSec: number
  /** Cores in use on average during the phase (1.0 = one core fully busy). */
  service: number
  postgres: number
  anvil: number
  bench: number
  /** Everything else on the machine (other processes, other users' tests). */
  other: number | null
  machine: number | null
  /** Cores the hypervisor gave to other guests while ours wanted them (a VM's noisy neighbours). */
  steal: number | null
  /** Share of the phase's wall time in which some task waited on I/O (0.05 = 5 %). */
  ioStall: number | null
}

/**
 * servicePids: every process of every service instance, read again at each phase boundary (a restarted
 * pipeline process has a new pid); their CPU is added up in the service column. A process that is gone
 * keeps its last reading, so its CPU is not taken back from the phase it was used in.
 */
export function startCpuAccounting(opts: { servicePids: () => number[]; anvilPid: number; dbName: string }) {
  const lastCpu = new Map<number, number>()
  const serviceCpu = () => {
    for (const pid of opts.servicePids()) {
      const sec = procCpuSec(pid)
      if (sec !== null) lastCpu.set(pid, sec)
    }
    let sum = 0
    for (const sec of lastCpu.values()) sum += sec
    return sum
  }
  const snap = (): Snapshot => {
    const pg = postgresCpuSec(opts.dbName)
    const self = process.cpuUsage()
    const machine = machineCpuSec()
    return {
      at: performance.now(),
      service: serviceCpu(),
      anvil: procCpuSec(opts.anvilPid) ?? 0,
      postgres: pg.db,
      pgBackground: pg.background,
      bench: (self.user + self.system) / 1e6,
      machine: machine?.busy ?? null,
      steal: machine?.steal ?? null,
      ioStall: ioStallSec(),
    }
  }
  const phases: CpuPhase[] = []
  let current = { name: 'startup', start: snap() }
  const close = () => {
    const end = snap()
    const s = current.start
    const wall = (end.at - s.at) / 1000
    if (wall <= 0.05) return
    const d = (k: 'service' | 'anvil' | 'postgres' | 'pgBackground' | 'bench') => Math.max(0, end[k] - s[k]) / wall
    const postgres = d('postgres') + d('pgBackground')
    const machine = end.machine !== null && s.machine !== null ? (end.machine - s.machine) / wall : null
    const steal = end.steal !== null && s.steal !== null ? (end.steal - s.steal) / wall : null
    const ours = d('service') + postgres + d('anvil') + d('bench')
    phases.push({
      phase: current.name,
      wallSec: round(wall, 1),
      service: round(d('service'), 2),
      postgres: round(postgres, 2),
      anvil: round(d('anvil'), 2),
      bench: round(d('bench'), 2),
      other: machine === null ? null : round(Math.max(0, machine - ours), 2),
      machine: machine === null ? null : round(machine, 2),
      steal: steal === null ? null : round(steal, 2),
      ioStall: end.ioStall !== null && s.ioStall !== null ? round((end.ioStall - s.ioStall) / wall, 3) : null,
    })
  }
  return {
    mark(name: string) {
      close()
      current = { name, start: snap() }
    },
    report(): CpuPhase[] {
      close()
      current = { name: 'after', start: snap() }
      return phases
    },
  }
}
export type CpuAccounting = ReturnType<typeof startCpuAccounting>

export function renderCpu(phases: CpuPhase[], cpus: number): string {
  const head = ['phase', 'wall s', 'service', 'postgres', 'anvil', 'bench', 'other', `machine (of ${cpus})`, 'steal', 'io stall']
  const rows = phases
    .filter((p) => p.phase !== 'startup')
    .map((p) => [p.phase, p.wallSec.toFixed(1), p.service.toFixed(2), p.postgres.toFixed(2), p.anvil.toFixed(2), p.bench.toFixed(2), p.other?.toFixed(2) ?? '?', p.machine?.toFixed(2) ?? '?', p.steal?.toFixed(2) ?? '?', p.ioStall === null ? '?' : `${(p.ioStall * 100).toFixed(1)} %`])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  return ['CPU cores in use per phase (1.00 = one core busy):', `  ${fmt(head)}`, ...rows.map((r) => `  ${fmt(r)}`)].join('\n')
}
