import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { round } from './stats.ts'

/** The parts of V8's .cpuprofile format read here. */
type CpuProfile = {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }[]
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export type ProfileSummary = {
  file: string
  totalMs: number
  /** Share of samples in which the thread was busy (not "(idle)"). */
  busyPercent: number
  /** Self time by area: a src/ directory, an npm package, node internals, GC. */
  byArea: { area: string; ms: number; percent: number }[]
  /** Self time by function. */
  top: { fn: string; where: string; ms: number; percent: number }[]
}

const REPO = fileURLToPath(new URL('..', import.meta.url))

function areaOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)'
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)
  if (pkg) return pkg[1]!
  if (path.startsWith(REPO)) {
    const rel = path.slice(REPO.length)
    // dist/ (the build the bench runs) mirrors src/: name the area by its source folder.
    const m = /^(?:src|dist)\/([^/]+)\//.exec(rel)
    return m ? `src/${m[1]}` : rel
  }
  if (path.startsWith('node:') || !path.startsWith('/')) return 'node internals'
  return path
}

function whereOf(url: string, line: number): string {
  if (!url) return ''
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const short = path.startsWith(REPO) ? path.slice(REPO.length) : path.replace(/^.*node_modules\//, '')
  return `${short}:${line + 1}`
}

export function summarizeProfile(file: string, topN = 20): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  if (p.samples && p.timeDeltas) {
    // Each sample's time is the delta to the next sample.
    for (let i = 0; i < p.samples.length; i++) {
      const dt = p.timeDeltas[i + 1] ?? 0
      selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + Math.max(0, dt))
    }
  } else {
    const total = p.endTime - p.startTime
    const hits = p.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0) || 1
    for (const n of p.nodes) selfUs.set(n.id, ((n.hitCount ?? 0) * total) / hits)
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0) || 1
  const areas = new Map<string, number>()
  const fns = new Map<string, { fn: string; where: string; us: number }>()
  let idleUs = 0
  for (const [id, us] of selfUs) {
    const node = byId.get(id)
    if (!node) continue
    const { functionName, url, lineNumber } = node.callFrame
    const fn = functionName || '(anonymous)'
    if (fn === '(idle)') {
      idleUs += us
      continue
    }
    const area = areaOf(url, fn)
    areas.set(area, (areas.get(area) ?? 0) + us)
    const where = whereOf(url, lineNumber)
    const key = `${fn}@${where}`
    const f = fns.get(key) ?? { fn, where, us: 0 }
    f.us += us
    fns.set(key, f)
  }
  const pct = (us: number) => round((100 * us) / totalUs, 1)
  return {
    file,
    totalMs: round(totalUs / 1000),
    busyPercent: pct(totalUs - idleUs),
    byArea: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([area, us]) => ({ area, ms: round(us / 1000), percent: pct(us) })),
    top: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((f) => ({ fn: f.fn, where: f.where, ms: round(f.us / 1000), percent: pct(f.us) })),
  }
}

/** The service's main-thread profile: the largest .cpuprofile in the directory. */
/** The largest profile in `dir` (the main thread's), of process `pid` when given (Node names them CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile). */
export function findProfile(dir: string, pid?: number): string | null {
  let files: string[]
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && (pid === undefined || f.split('.')[3] === String(pid)))
  } catch {
    return null
  }
  if (files.length === 0) return null
  return files.map((f) => join(dir, f)).sort((a, b) => readFileSync(b).length - readFileSync(a).length)[0]!
}

export function renderProfile(s: ProfileSummary, topN = 12, title = 'service'): string {
  const lines = [`${title} CPU profile (${(s.totalMs / 1000).toFixed(1)} s sampled, main thread busy ${s.busyPercent} %):`, '  self time by area:']
  for (const a of s.byArea.slice(0, topN)) lines.push(`    ${a.percent.toFixed(1).padStart(5)} %  ${a.area}`)
  lines.push('  self time by function:')
  for (const f of s.top.slice(0, topN)) lines.push(`    ${f.percent.toFixed(1).padStart(5)} %  ${f.fn}  ${f.where}`)
  return lines.join('\n')
}

// `npx tsx bench/profileSummary.ts <file.cpuprofile | dir>`: summarize a profile kept by `npm run bench -- --profile`.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = process.argv[2]
  if (!arg) {
    process.stderr.write('usage: npx tsx bench/profileSummary.ts <file.cpuprofile | directory>\n')
    process.exit(2)
  }
  const file = arg.endsWith('.cpuprofile') ? arg : findProfile(arg)
  if (!file) {
    process.stderr.write(`no .cpuprofile in ${arg}\n`)
    process.exit(1)
  }
  process.stdout.write(`${renderProfile(summarizeProfile(file), 25)}\n`)
}
