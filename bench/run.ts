/**
 * `npm run bench` (issue 7): measures the service against the practical ceiling of a local anvil.
 *
 * One run starts its own anvil (1 s blocks unless --block-time, very high block gas limit), a fresh Postgres database and the
 * service as a child process, then measures, in this order (each measurement starts on a quiet service):
 *   1. baseline  pre-signed transfers straight to anvil in JSON-RPC batches: the ceiling in tx/s
 *   2. latency   a steady rate; accept -> first broadcast and accept -> included, from the transactions table
 *   3. drain     a burst submitted as fast as possible, timed until CONFIRMED; compared with the baseline
 *   4. accept    open-loop load at two rates on GraphQL and REST: req/s, answer-time percentiles, errors
 * and samples the service's RSS throughout. Prints a table (stdout) and writes bench/results/<timestamp>.json.
 * Everything it started is stopped and the database dropped at the end, also on errors and Ctrl-C.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openPostgres } from '../src/db/socketUrl.ts'
import { runDashboard } from './dashboard.ts'
import { ConfigError, parseConfig } from '../src/config/loadConfig.ts'
import { BUILT_SERVICE_ARGS, buildService } from '../src/dev/builtService.ts'
import { freePort } from '../src/dev/freePort.ts'
import { childPids } from '../src/dev/processes.ts'
import { ANVIL_DEV_ACCOUNTS, startAnvil } from '../src/dev/startAnvil.ts'
import { rpcClient, runBaseline } from './baseline.ts'
import { renderCpu, startCpuAccounting, startIoStallSampler } from './cpuUsage.ts'
import { Cleanup, createBenchDatabase, mergeLogSummaries, startRssSampler, startServiceProcess, type ServiceProcess } from './environment.ts'
import { createRoundRobinPool, runBurst, type Api, type InputFactory } from './loadGenerator.ts'
import { USAGE, UsageError, parseOptions, type BenchOptions } from './options.ts'
import { diffDbWork, renderDbWork, snapshotDbWork } from './dbWork.ts'
import { runAccept, runDrain, runLatency, summarizeDb, waitForQuiet, type Sql } from './phases.ts'
import { findProfile, renderProfile, summarizeProfile } from './profileSummary.ts'
import { buildRows, renderTable, toJson, type BenchResults } from './report.ts'
import { round } from './stats.ts'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const RESULTS_DIR = join(REPO, 'bench', 'results')
const CHAIN_ID = 31337
/** The service signs with account 0, the baseline with account 1: their nonces never collide. */
const SERVICE_SIGNER = ANVIL_DEV_ACCOUNTS[0]
const BASELINE_SIGNER = ANVIL_DEV_ACCOUNTS[1]
const RECIPIENT = ANVIL_DEV_ACCOUNTS[2].address

/** The per-key request limits, far above any rate the bench offers: the bench measures the pipeline, not the limiter. */
const BENCH_LIMITS = { requestsPerSecond: 1_000_000, burst: 1_000_000, maxInFlightPerKey: 10_000_000 }

/**
 * The service's config for the run, checked with the service's own parser before it is written (so a
 * problem is reported here, with its path). Service versions without a "limits" section get none.
 */
function benchConfig(rpcUrl: string, apiKey: string, separatePipeline: boolean, blockTimeMs: number): Record<string, unknown> {
  const base = {
    ...(separatePipeline ? { pipeline: { process: 'separate' } } : {}),
    chains: [{ chainId: CHAIN_ID, name: 'anvil', providers: [{ name: 'anvil', url: rpcUrl }], confirmations: 1, blockTimeMs }],
    signers: [{ name: 'bench-signer', chainIds: [CHAIN_ID], privateKey: SERVICE_SIGNER.privateKey }],
    apiKeys: [{ name: 'bench', role: 'submitter', key: apiKey }],
  }
  const withLimits = { ...base, limits: BENCH_LIMITS }
  try {
    parseConfig(withLimits, {})
    return withLimits
  } catch (err) {
    if (!(err instanceof ConfigError) || !err.problems.some((p) => /limits/.test(p))) throw err
  }
  parseConfig(base, {})
  return base
}

const started = performance.now()
function log(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`)
}

async function bench(opts: BenchOptions, cleanup: Cleanup): Promise<{ missed: boolean }> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const runId = randomBytes(4).toString('hex')
  mkdirSync(RESULTS_DIR, { recursive: true })
  const results: BenchResults = { baseline: null, accept: [], drain: null, latency: null, dashboard: null, rss: null, db: null, drainDbWork: null, logs: null, problems: [] }

  if (!opts.noBuild) {
    // The service runs as `npm start` runs it: the build in dist/, under plain Node.
    log('npm run build')
    await buildService(REPO)
  }

  const blockTimeMs = Math.round(opts.blockTimeSec * 1000)
  log(`starting anvil (${opts.blockTimeSec} s blocks, 1e9 block gas limit)`)
  const anvil = await startAnvil({
    blockTimeSec: opts.blockTimeSec,
    extraArgs: ['--gas-limit', '1000000000', '--no-request-size-limit'],
  })
  cleanup.add('anvil', anvil.stop)

  log('creating a fresh database')
  const db = await createBenchDatabase()
  cleanup.add(`database ${db.name}`, db.drop)

  const apiKey = `bench-${randomBytes(16).toString('hex')}`
  const rawConfig = benchConfig(anvil.url, apiKey, opts.separatePipeline, blockTimeMs)
  const configDir = mkdtempSync(join(tmpdir(), 'txb-bench-'))
  cleanup.add('config file', async () => rmSync(configDir, { recursive: true, force: true }))
  const configPath = join(configDir, 'config.json')
  writeFileSync(configPath, JSON.stringify(rawConfig, null, 2), { mode: 0o600 })

  const n = opts.instances
  const logFile = opts.keepLog ? join(RESULTS_DIR, `${stamp}.service.log`) : null
  const logFiles = Array.from({ length: n }, (_, i) => (logFile && n > 1 ? logFile.replace(/\.log$/, `-${i + 1}.log`) : logFile))
  const profileDir = opts.profile ? join(RESULTS_DIR, `${stamp}.cpuprofile`) : null
  const startInstance = async (i: number): Promise<ServiceProcess> => {
    const name = n > 1 ? `service ${i + 1}/${n}` : 'service'
    const service = await startServiceProcess({
      repoRoot: REPO,
      configPath,
      databaseUrl: db.url,
      port: await freePort(),
      logFile: logFiles[i]!,
      nodeArgs: [...opts.serviceNodeArgs, ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [])],
      // Registered at spawn, so a failed start or Ctrl-C while waiting for the banner still stops it.
      onSpawn: (stop) => cleanup.add(name, async () => void (await stop())),
    })
    log(`${name}: pid ${service.pid} at ${service.url}`)
    return service
  }
  // The first instance starts alone (it runs the migrations), then the others together.
  log(`starting ${n > 1 ? `${n} service instances` : 'the service'} (node ${BUILT_SERVICE_ARGS.join(' ')})`)
  const services: ServiceProcess[] = [await startInstance(0)]
  if (n > 1) {
    const rest = await Promise.allSettled(Array.from({ length: n - 1 }, (_, i) => startInstance(i + 1)))
    for (const r of rest) if (r.status === 'rejected') throw r.reason
    for (const r of rest) if (r.status === 'fulfilled') services.push(r.value)
  }
  // With a separate pipeline each instance is two processes; both count as the service.
  const processGroups = () => services.map((s) => [s.pid, ...childPids(s.pid)])
  if (opts.separatePipeline && processGroups().some((g) => g.length < 2)) throw new Error('--separate-pipeline: no pipeline process found under the service')
  const rss = startRssSampler(processGroups)
  cleanup.add('rss sampler', async () => rss.stop())
  const cpu = startCpuAccounting({ servicePids: () => processGroups().flat(), anvilPid: anvil.process.pid!, dbName: db.name })
  const ioStalls = startIoStallSampler()
  cleanup.add('io stall sampler', async () => ioStalls.stop())
  /** How long the machine's I/O stalled in a window, as a clause for a problem line ('' when it did not, or unknown). */
  const ioNote = (from: number, to: number) => {
    const sec = ioStalls.stalledBetween(from, to)
    return sec !== null && sec >= 0.05 ? ` (some task waited on I/O for ${Math.round(sec * 1000)} ms of that window: /proc/pressure/io)` : ''
  }
  const phase = (name: string) => {
    rss.setPhase(name)
    cpu.mark(name)
  }

  const sql: Sql = openPostgres(db.url, { max: 2, onnotice: () => {}, connection: { application_name: 'tx-broadcaster-bench' } })
  cleanup.add('bench database connections', () => sql.end({ timeout: 5 }))
  const pool = createRoundRobinPool(
    services.map((s) => s.url),
    apiKey,
    opts.connections,
  )
  cleanup.add('http pool', async () => pool.close())

  const validUntil = new Date(Date.now() + 6 * 3600_000).toISOString()
  const inputs =
    (prefix: string): InputFactory =>
    (i) => ({
      chainId: CHAIN_ID,
      to: RECIPIENT,
      value: '1',
      ...(opts.estimateGas ? {} : { gasLimit: '21000' }),
      idempotencyKey: `bench-${runId}-${prefix}-${i}`,
      validUntil,
    })
  const settleMs = opts.settleTimeoutSec * 1000

  // Warm-up: proves the whole pipeline confirms before anything is measured (and warms the JIT).
  phase('warmup')
  log('warm-up: 10 GraphQL + 10 REST requests, waiting for CONFIRMED')
  for (const api of ['graphql', 'rest'] as const) {
    const w = await runBurst({ pool, api, count: 10, concurrency: 4, input: inputs(`warmup-${api}`), timeoutSec: 30 })
    if (w.ok !== 10) throw new Error(`warm-up: ${api} accepted ${w.ok} of 10: ${w.errorExamples.join('; ')}`)
  }
  const warm = await waitForQuiet(sql, 30_000)
  const [warmRow] = await sql<{ confirmed: number }[]>`SELECT count(*)::int AS confirmed FROM transactions WHERE status = 'CONFIRMED'`
  if (!warm.settled || warmRow!.confirmed !== 20)
    throw new Error(`warm-up: ${warmRow!.confirmed} of 20 transactions CONFIRMED after ${warm.waitedMs} ms (${warm.open} still open); the pipeline is not working`)
  log(`warm-up confirmed in ${(warm.waitedMs / 1000).toFixed(1)} s`)

  // 1. Baseline.
  phase('baseline')
  log(`baseline: signing ${opts.baselineCount} transfers and sending them to anvil in batches of 500`)
  const rpc = rpcClient(anvil.url)
  results.baseline = await runBaseline({
    rpc,
    chainId: CHAIN_ID,
    privateKey: BASELINE_SIGNER.privateKey,
    to: RECIPIENT,
    count: opts.baselineCount,
    timeoutMs: Math.max(30_000, Math.min(300_000, opts.baselineCount * 10)),
  })
  log(`baseline: ${results.baseline.txPerSec} tx/s (signing ran at ${results.baseline.signPerSec}/s)`)

  // 2. Latency.
  phase('settle')
  await waitForQuiet(sql, settleMs)
  phase('latency')
  log(`latency: REST at ${opts.latencyRate}/s for ${opts.latencySeconds} s`)
  results.latency = await runLatency({
    sql,
    pool,
    api: 'rest',
    rate: opts.latencyRate,
    seconds: opts.latencySeconds,
    input: inputs('latency'),
    waitTimeoutSec: opts.quick ? 20 : 60,
  })
  log(`latency: accept -> first broadcast p50 ${results.latency.acceptToFirstSend.p50} ms, p99 ${results.latency.acceptToFirstSend.p99} ms`)

  // 3. Drain.
  phase('settle')
  const beforeDrain = await waitForQuiet(sql, settleMs)
  if (!beforeDrain.settled) results.problems.push(`drain started with ${beforeDrain.open} earlier transactions still open`)
  const dbBeforeDrain = await snapshotDbWork(sql)
  phase('drain')
  log(`drain: ${opts.drainCount} REST requests as fast as possible (${opts.burstConcurrency} in flight), then waiting for CONFIRMED`)
  results.drain = await runDrain({
    sql,
    pool,
    api: 'rest',
    count: opts.drainCount,
    concurrency: opts.burstConcurrency,
    input: inputs('drain'),
    timeoutSec: opts.drainTimeoutSec,
    baselineTxPerSec: results.baseline.complete ? results.baseline.txPerSec : null,
  })
  log(`drain: ${results.drain.txPerSec} tx/s (${results.drain.counts.confirmed} confirmed in ${(results.drain.durationMs / 1000).toFixed(1)} s)`)
  results.drainDbWork = diffDbWork(dbBeforeDrain, await snapshotDbWork(sql), results.drain.accepted)
  log(renderDbWork(results.drainDbWork, 'drained'))

  // 4. Accept.
  const runs = [
    { label: 'steady' as const, rate: opts.acceptRate, seconds: opts.acceptSeconds },
    { label: 'high' as const, rate: opts.burstRate, seconds: opts.burstSeconds },
  ]
  results.accept = await runAccept({
    sql,
    pool,
    runs,
    input: (api: Api, label: string) => inputs(`accept-${label}-${api}`),
    settleTimeoutSec: opts.settleTimeoutSec,
    onSettle: () => phase('settle'),
    onRun: (label, api) => {
      phase(`accept-${label}-${api}`)
      const run = runs.find((r) => r.label === label)!
      log(`accept: ${api} at ${run.rate}/s for ${run.seconds} s`)
    },
  })
  for (const a of results.accept) log(`accept ${a.load.api} ${a.load.rate}/s: ${a.load.okPerSec} req/s, p99 ${a.load.latencyMs?.p99} ms, ${a.load.errorCount} errors`)

  // Let the accept runs' transactions finish (bounded) so the summary shows whether anything got stuck.
  phase('final-settle')
  const end = await waitForQuiet(sql, settleMs)
  if (!end.settled) results.problems.push(`${end.open} transactions still QUEUED/PENDING/INCLUDED ${opts.settleTimeoutSec} s after the last accept run`)
  results.db = await summarizeDb(sql)

  // 5. The dashboard's first page with many more rows in the table (after the summary, which they would skew).
  if (opts.dashboardRows > 0) {
    phase('dashboard')
    log(`dashboard: ${opts.dashboardRows} more (final) transactions in the table, then the first page in chromium`)
    results.dashboard = await runDashboard({ sql, serviceUrl: services[0]!.url, apiKey, chainId: CHAIN_ID, rows: opts.dashboardRows }).catch((err: Error) => {
      results.problems.push(`dashboard: ${err.message}`)
      return { skipped: `failed: ${err.message.split('\n')[0]}` }
    })
    log(`dashboard: ${'skipped' in results.dashboard ? `skipped (${results.dashboard.skipped})` : `first page in ${results.dashboard.firstPageMs.join(', ')} ms`}`)
  }
  results.rss = rss.report()
  rss.stop()
  const cpuPhases = cpu.report()
  log(`stopping the service${n > 1 ? ` (${n} instances)` : ''}`)
  const processesAtEnd = processGroups()
  const exits = await Promise.all(services.map((s) => s.stop()))
  results.logs = mergeLogSummaries(services.map((s) => s.logs()))
  // With a separate pipeline, the first instance's API process and its pipeline process each get a summary.
  const pipelinePid = opts.separatePipeline ? processesAtEnd[0]?.[1] : undefined
  const profileFile = profileDir ? findProfile(profileDir, opts.separatePipeline ? services[0]!.pid : undefined) : null
  const profile = profileFile ? summarizeProfile(profileFile) : null
  const pipelineProfileFile = profileDir && pipelinePid !== undefined ? findProfile(profileDir, pipelinePid) : null
  const pipelineProfile = pipelineProfileFile ? summarizeProfile(pipelineProfileFile) : null
  if (profileDir && !profile) results.problems.push(`no CPU profile was written to ${profileDir}`)
  if (profileDir && opts.separatePipeline && !pipelineProfile) results.problems.push(`no CPU profile of the pipeline process was written to ${profileDir}`)

  // Problems worth a look, beside the figures.
  const p = results.problems
  const b = results.baseline
  if (b.rejected) p.push(`baseline: anvil rejected ${b.rejected} transactions (${b.rejectedExamples.join('; ')})`)
  if (!b.complete) p.push(`baseline: only ${b.mined} of ${b.count} mined before the timeout`)
  for (const a of results.accept) {
    if (a.load.errorCount) p.push(`accept ${a.load.api} at ${a.load.rate}/s: ${a.load.errorCount} errors ${JSON.stringify(a.load.errors)} e.g. ${a.load.errorExamples[0]}`)
    if (a.stored > a.load.ok)
      p.push(`accept ${a.load.api} at ${a.load.rate}/s: the service stored ${a.stored} transactions but only ${a.load.ok} answers arrived in time (the rest were committed after the client gave up)`)
    if (!a.settle.settled) p.push(`accept ${a.load.api} at ${a.load.rate}/s started with ${a.settle.open} earlier transactions still open`)
    if ((a.load.dispatchLagMs?.p99 ?? 0) > 20) p.push(`accept ${a.load.api} at ${a.load.rate}/s: the generator fell behind its schedule (dispatch lag p99 ${a.load.dispatchLagMs!.p99} ms)`)
    const ps = a.load.perSecondP99
    if (ps && ps.seconds >= 5 && ps.worstMs > 50 && ps.worstMs > 4 * ps.medianMs)
      p.push(
        `accept ${a.load.api} at ${a.load.rate}/s: the slow answers came together: p99 ${ps.worstMs} ms for the requests sent in second ${ps.worstAtSec}, ${ps.medianMs} ms in the median second${ioNote(ps.worstStartedAt, ps.worstStartedAt + 1000 + ps.worstMs)}`,
      )
  }
  if (results.latency.load.errorCount) p.push(`latency run: ${results.latency.load.errorCount} errors ${JSON.stringify(results.latency.load.errors)}`)
  if (!results.latency.complete) p.push(`latency run: not all sent/included in time: ${JSON.stringify(results.latency.counts)}`)
  if (results.drain.submitted.errorCount) p.push(`drain submit: ${results.drain.submitted.errorCount} errors ${JSON.stringify(results.drain.submitted.errors)}`)
  if (!results.drain.complete) p.push(`drain: not all CONFIRMED within ${opts.drainTimeoutSec} s: ${JSON.stringify(results.drain.counts)}`)
  const failed = (results.db.byStatus.FAILED ?? 0) + (results.db.byStatus.REVERTED ?? 0)
  if (failed) p.push(`${failed} transactions FAILED/REVERTED: ${JSON.stringify(results.db.byError)}`)
  if (results.db.multiAttempt) p.push(`${results.db.multiAttempt} transactions needed more than one attempt (fee bumps)`)
  const notSent = Object.entries(results.db.providerOutcomes).filter(([o]) => o !== 'sent')
  if (notSent.length) p.push(`provider answers other than "sent": ${JSON.stringify(Object.fromEntries(notSent))}`)
  if (results.logs.errors || results.logs.warnings)
    p.push(`service log: ${results.logs.errors} errors, ${results.logs.warnings} warnings: ${results.logs.top.map((t) => `${t.level} "${t.msg}" x${t.count}`).join(', ')}`)
  // The dashboard step's chromium is the bench's own browser, counted under "other".
  const busy = cpuPhases.filter((c) => !['startup', 'settle', 'dashboard'].includes(c.phase) && c.wallSec >= 2 && (c.other ?? 0) >= 0.25 * cpus().length)
  if (busy.length)
    p.push(
      `other processes used much of the machine during ${busy.map((c) => `${c.phase} (${c.other} of ${cpus().length} cores)`).join(', ')}: figures from those phases are pessimistic`,
    )
  const stolen = cpuPhases.filter((c) => c.phase !== 'startup' && c.phase !== 'settle' && c.wallSec >= 2 && (c.steal ?? 0) >= 0.1)
  if (stolen.length)
    p.push(
      `the hypervisor gave CPU to other guests (steal) during ${stolen.map((c) => `${c.phase} (${c.steal} of ${cpus().length} cores)`).join(', ')}: figures from those phases are pessimistic, latency tails most of all`,
    )
  exits.forEach((exit, i) => {
    if (exit.code !== 0) p.push(`the service${n > 1 ? ` (instance ${i + 1})` : ''} exited with ${exit.code ?? exit.signal} on SIGTERM`)
  })

  const rows = buildRows(results, opts.blockTimeSec)
  const table = renderTable(rows)
  const totalSec = round((performance.now() - started) / 1000, 1)
  const header = `tx-broadcaster bench${opts.quick ? ' (--quick)' : ''}: ${n} service instance${n > 1 ? 's' : ''}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), node ${process.version}, ${totalSec} s`
  process.stdout.write(`\n${header}\n\n${table}\n`)
  if (p.length) process.stdout.write(`\nproblems seen:\n${p.map((x) => `  - ${x}`).join('\n')}\n`)
  process.stdout.write(`\n${renderCpu(cpuPhases, cpus().length)}\n`)
  if (results.drainDbWork) process.stdout.write(`\n${renderDbWork(results.drainDbWork, 'drained')}\n`)
  if (profile) process.stdout.write(`\n${renderProfile(profile, 12, pipelineProfile ? 'API process' : 'service')}\n  (${relative(process.cwd(), profile.file)})\n`)
  if (pipelineProfile) process.stdout.write(`\n${renderProfile(pipelineProfile, 12, 'pipeline process')}\n  (${relative(process.cwd(), pipelineProfile.file)})\n`)

  const file = join(RESULTS_DIR, `${stamp}.json`)
  const json = toJson(
    results,
    {
      startedAt: new Date(Date.now() - totalSec * 1000).toISOString(),
      durationSec: totalSec,
      instances: n,
      options: opts,
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? null, memoryMb: Math.round(totalmem() / 2 ** 20), node: process.version, platform: process.platform },
      setup: {
        anvil: { blockTimeSec: opts.blockTimeSec, gasLimit: 1_000_000_000 },
        service: {
          instances: n,
          pids: services.map((s) => s.pid),
          pipelineProcess: opts.separatePipeline ? 'separate' : 'inline',
          processes: processesAtEnd,
          urls: services.map((s) => s.url),
          connectionsPerInstance: n > 1 ? Math.max(1, Math.ceil(opts.connections / n)) : opts.connections,
          confirmations: 1,
          blockTimeMs,
          signer: SERVICE_SIGNER.address,
          logFile: n > 1 ? logFiles : logFile,
          profile: profileFile,
        },
        baselineSigner: BASELINE_SIGNER.address,
        gasLimitInRequests: !opts.estimateGas,
      },
    },
    rows,
  )
  ;(json as Record<string, unknown>).cpu = cpuPhases
  if (profile) (json as Record<string, unknown>).profile = profile
  if (pipelineProfile) (json as Record<string, unknown>).pipelineProfile = pipelineProfile
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`)
  process.stdout.write(`\nresults: ${relative(process.cwd(), file) || file}\n`)
  return { missed: rows.some((r) => r.verdict === 'FAIL') }
}

async function main(): Promise<number> {
  let opts: BenchOptions | 'help'
  try {
    opts = parseOptions(process.argv.slice(2))
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n\n${USAGE}`)
      return 2
    }
    throw err
  }
  if (opts === 'help') {
    process.stdout.write(USAGE)
    return 0
  }
  const cleanup = new Cleanup()
  let signalled = false
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) process.exit(1)
    signalled = true
    log(`${sig}: stopping everything the bench started`)
    void cleanup.run().then((problems) => {
      for (const p of problems) log(`cleanup: ${p}`)
      process.exit(130)
    })
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  // A reader that went away (`npm run bench | head`) must not crash the run before it cleans up.
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err
    })
  // Anything thrown outside the awaited chain still stops what the bench started.
  const onCrash = (err: unknown) => {
    if (signalled) return
    signalled = true
    log(`crashed: ${(err as Error)?.stack ?? err}`)
    void cleanup.run().then((problems) => {
      for (const p of problems) log(`cleanup: ${p}`)
      process.exit(1)
    })
  }
  process.on('uncaughtException', onCrash)
  process.on('unhandledRejection', onCrash)
  let code = 0
  try {
    const { missed } = await bench(opts, cleanup)
    if (missed && opts.strict) code = 3
  } catch (err) {
    log(`failed: ${(err as Error)?.stack ?? err}`)
    code = 1
  } finally {
    const problems = await cleanup.run()
    for (const p of problems) log(`cleanup: ${p}`)
    if (problems.length && code === 0) code = 1
    log('done: anvil and service stopped, database dropped')
  }
  return code
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${(err as Error)?.stack ?? err}\n`)
    process.exit(1)
  },
)
