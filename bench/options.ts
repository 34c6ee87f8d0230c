/** Command-line options of `npm run bench`. Every figure is bounded, so every loop the bench runs is bounded too. */

export type BenchOptions = {
  quick: boolean
  /** Value transfers sent straight to anvil for the ceiling. */
  baselineCount: number
  /** The steady accept rate (req/s) and how long each API is driven at it. */
  acceptRate: number
  acceptSeconds: number
  /** The high accept rate (req/s) and how long each API is driven at it. */
  burstRate: number
  burstSeconds: number
  /** Transactions submitted as fast as possible, then followed to CONFIRMED. */
  drainCount: number
  latencyRate: number
  latencySeconds: number
  /** Keep-alive HTTP connections of the load generator's pool. */
  connections: number
  /** Requests in flight at once while submitting the drain burst. */
  burstConcurrency: number
  /** Leave gasLimit out of the requests, so the service estimates gas for every transaction. */
  estimateGas: boolean
  /** Upper bound for waiting on the drain to reach CONFIRMED. */
  drainTimeoutSec: number
  /** Upper bound for waiting on the service to finish earlier work before a measurement starts. */
  settleTimeoutSec: number
  /** Exit 1 when a target is missed (default: only errors fail the run). */
  strict: boolean
  /** Keep the service log next to the JSON result. */
  keepLog: boolean
  /** Run the service with --cpu-prof and summarize where its CPU time went. */
  profile: boolean
  /** Extra node flags for the service process, e.g. "--max-old-space-size=256". */
  serviceNodeArgs: string[]
  /** Service processes started against the same database and anvil; requests go round-robin over them. */
  instances: number
  /** `pipeline.process: "separate"`: each instance runs its stages in a child process at a lower CPU priority. */
  separatePipeline: boolean
  /** Skip `npm run build` and run the dist/ already there (the test suite builds it once for every test). */
  noBuild: boolean
  /** Final transactions added before the dashboard's first page is timed in chromium; 0 skips that step. */
  dashboardRows: number
  /** anvil's interval mining, in seconds (both the baseline and the service use this anvil). */
  blockTimeSec: number
}

export const FULL: Omit<BenchOptions, 'quick' | 'strict' | 'keepLog' | 'estimateGas' | 'profile' | 'serviceNodeArgs' | 'instances' | 'separatePipeline' | 'noBuild'> = {
  baselineCount: 10_000,
  acceptRate: 200,
  acceptSeconds: 60,
  burstRate: 2_000,
  burstSeconds: 10,
  drainCount: 10_000,
  latencyRate: 200,
  latencySeconds: 30,
  connections: 64,
  burstConcurrency: 64,
  drainTimeoutSec: 240,
  settleTimeoutSec: 90,
  dashboardRows: 10_000,
  blockTimeSec: 1,
}

export const QUICK: typeof FULL = {
  baselineCount: 200,
  acceptRate: 100,
  acceptSeconds: 3,
  burstRate: 300,
  burstSeconds: 2,
  drainCount: 500,
  latencyRate: 50,
  latencySeconds: 3,
  connections: 32,
  burstConcurrency: 32,
  drainTimeoutSec: 40,
  settleTimeoutSec: 15,
  dashboardRows: 200,
  blockTimeSec: 1,
}

type NumericKey = keyof typeof FULL | 'instances'

/** flag name -> [option, min, max] */
const NUMERIC_FLAGS: Record<string, [NumericKey, number, number]> = {
  'baseline-count': ['baselineCount', 1, 1_000_000],
  'accept-rate': ['acceptRate', 1, 50_000],
  'accept-seconds': ['acceptSeconds', 0.1, 3_600],
  'burst-rate': ['burstRate', 1, 50_000],
  'burst-seconds': ['burstSeconds', 0.1, 3_600],
  'drain-count': ['drainCount', 1, 1_000_000],
  'latency-rate': ['latencyRate', 1, 50_000],
  'latency-seconds': ['latencySeconds', 0.1, 3_600],
  connections: ['connections', 1, 4_096],
  'burst-concurrency': ['burstConcurrency', 1, 4_096],
  'drain-timeout': ['drainTimeoutSec', 1, 3_600],
  'settle-timeout': ['settleTimeoutSec', 0, 3_600],
  instances: ['instances', 1, 32],
  'dashboard-rows': ['dashboardRows', 0, 1_000_000],
  'block-time': ['blockTimeSec', 0.1, 60],
}

const INTEGER_OPTIONS = new Set<NumericKey>(['baselineCount', 'drainCount', 'connections', 'burstConcurrency', 'instances', 'dashboardRows'])

export const USAGE = `Usage: npm run bench -- [options]

Starts its own anvil, a fresh Postgres database and the service, measures, prints a table and writes
bench/results/<timestamp>.json. Everything it starts is stopped (and the database dropped) at the end.

  --quick                 short run for CI smoke tests (under a minute)
  --baseline-count N      value transfers sent straight to anvil         (default ${FULL.baselineCount}, quick ${QUICK.baselineCount})
  --accept-rate R         steady accept rate, req/s                       (default ${FULL.acceptRate}, quick ${QUICK.acceptRate})
  --accept-seconds S      ... for S seconds per API                       (default ${FULL.acceptSeconds}, quick ${QUICK.acceptSeconds})
  --burst-rate R          high accept rate, req/s                         (default ${FULL.burstRate}, quick ${QUICK.burstRate})
  --burst-seconds S       ... for S seconds per API                       (default ${FULL.burstSeconds}, quick ${QUICK.burstSeconds})
  --drain-count N         burst submitted as fast as possible, then drained (default ${FULL.drainCount}, quick ${QUICK.drainCount})
  --latency-rate R        rate for the accept -> broadcast latency run   (default ${FULL.latencyRate}, quick ${QUICK.latencyRate})
  --latency-seconds S     ... for S seconds                               (default ${FULL.latencySeconds}, quick ${QUICK.latencySeconds})
  --connections N         keep-alive connections in the client pool       (default ${FULL.connections}; split over the instances)
  --burst-concurrency N   requests in flight while submitting the drain   (default ${FULL.burstConcurrency})
  --drain-timeout S       give up waiting for the drain after S seconds   (default ${FULL.drainTimeoutSec})
  --settle-timeout S      wait at most S seconds for earlier work to finish before each measurement (default ${FULL.settleTimeoutSec})
  --dashboard-rows N      final transactions added before the dashboard's first page is timed in
                          chromium (skipped without it); 0 skips the step (default ${FULL.dashboardRows}, quick ${QUICK.dashboardRows})
  --block-time S          anvil's block interval in seconds, for the baseline and the service alike
                          (default ${FULL.blockTimeSec}). anvil's receipts of a block cost time in
                          the square of its size, so the drain of a receipt-reading sender is bounded
                          by the interval (see bench/README.md)
  --instances N           service processes on the same database and anvil, each on its own port;
                          requests go round-robin over them              (default 1)
  --separate-pipeline     config pipeline.process = "separate": the stages run in a child process at
                          a lower CPU priority (its RSS and CPU count as the service's)
  --estimate-gas          leave gasLimit out, so the service estimates every transaction
  --no-build              run the dist/ that is there (default: 'npm run build' first)
  --strict                exit 1 when a target is missed
  --keep-log              keep the service log (bench/results/<timestamp>.service.log)
  --profile               run the service with --cpu-prof; print where its CPU time went
                          (profile kept in bench/results/<timestamp>.cpuprofile/)
  --service-node-args "F" extra node flags for the service, e.g. "--max-old-space-size=256"
  --help                  this text
`

export class UsageError extends Error {
  override name = 'UsageError'
}

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const flags = new Map<string, string | true>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (!arg.startsWith('--')) throw new UsageError(`Unexpected argument "${arg}"`)
    const eq = arg.indexOf('=')
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2)
    if (name === 'service-node-args') {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i]
      if (value === undefined) throw new UsageError(`--${name} needs a value`)
      flags.set(name, value)
    } else if (name in NUMERIC_FLAGS) {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i]
      if (value === undefined) throw new UsageError(`--${name} needs a value`)
      flags.set(name, value)
    } else if (['quick', 'estimate-gas', 'strict', 'keep-log', 'profile', 'separate-pipeline', 'no-build', 'help'].includes(name)) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`)
      flags.set(name, true)
    } else throw new UsageError(`Unknown option "${arg}"`)
  }
  if (flags.has('help')) return 'help'
  const quick = flags.has('quick')
  const opts: BenchOptions = {
    ...(quick ? QUICK : FULL),
    quick,
    estimateGas: flags.has('estimate-gas'),
    strict: flags.has('strict'),
    keepLog: flags.has('keep-log'),
    separatePipeline: flags.has('separate-pipeline'),
    noBuild: flags.has('no-build'),
    profile: flags.has('profile'),
    serviceNodeArgs: [],
    instances: 1,
  }
  const nodeArgs = flags.get('service-node-args')
  if (typeof nodeArgs === 'string') {
    opts.serviceNodeArgs = nodeArgs.split(/\s+/).filter(Boolean)
    const bad = opts.serviceNodeArgs.find((a) => !a.startsWith('--'))
    if (bad) throw new UsageError(`--service-node-args: "${bad}" is not a node flag`)
  }
  for (const [flag, [key, min, max]] of Object.entries(NUMERIC_FLAGS)) {
    const raw = flags.get(flag)
    if (raw === undefined || raw === true) continue
    const n = Number(raw)
    if (!Number.isFinite(n) || n < min || n > max || (INTEGER_OPTIONS.has(key) && !Number.isInteger(n)))
      throw new UsageError(`--${flag}: expected ${INTEGER_OPTIONS.has(key) ? 'an integer' : 'a number'} from ${min} to ${max}, got "${raw}"`)
    opts[key] = n
  }
  return opts
}
