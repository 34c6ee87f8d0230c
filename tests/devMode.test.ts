import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BUILT_SERVICE_ARGS } from '../src/dev/builtService.ts'
import { isAlive, processCommandLine, readPidFile, terminate } from '../src/dev/processes.ts'
import { runCli } from './helpers/cli.ts'
import { waitFor } from './helpers/testService.ts'

/**
 * `npm start` with nothing configured, as a user runs it: the build in dist/ under plain Node, with
 * embedded Postgres and a local anvil under a temp data dir; then a SIGKILL of the service (its children
 * stay behind) and a second start on the same data dir, which must stop them and carry on.
 */

const ROOT = resolve(import.meta.dirname, '..')
const RECIPIENT = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'

type Run = { child: ChildProcess; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }
type Banner = { graphqlUrl: string; apiKey: string; chainUrl: string }

let dataDir: string
const runs: Run[] = []

function startService(): Run {
  const env: NodeJS.ProcessEnv = { ...process.env, BROADCASTER_DATA_DIR: dataDir, PORT: '0' }
  delete env.DATABASE_URL
  delete env.BROADCASTER_CONFIG
  delete env.HOST
  delete env.NODE_OPTIONS // vitest's own loader settings are not what a user has
  const child = spawn(process.execPath, BUILT_SERVICE_ARGS, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => res({ code, signal })),
  )
  const run = { child, output: () => output, exited }
  runs.push(run)
  return run
}

async function waitForBanner(run: Run, timeoutMs = 60_000): Promise<Banner> {
  const deadline = Date.now() + timeoutMs
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null
  void run.exited.then((e) => (exit = e))
  while (Date.now() < deadline) {
    const out = run.output()
    const graphql = /GraphQL\s+(http:\/\/\S+\/graphql)/.exec(out)
    const key = /API key\s+(\S+)/.exec(out)
    const chain = /Chain\s+anvil \(31337\) at (http:\/\/\S+)/.exec(out)
    if (graphql && key && chain) return { graphqlUrl: graphql[1]!, apiKey: key[1]!, chainUrl: chain[1]! }
    if (exit) throw new Error(`service exited (${JSON.stringify(exit)}) before printing the banner:\n${out}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`no banner within ${timeoutMs} ms:\n${run.output()}`)
}

async function graphql(banner: Banner, query: string, variables?: Record<string, unknown>): Promise<any> {
  const res = await fetch(banner.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${banner.apiKey}` },
    body: JSON.stringify({ query, variables }),
  })
  const json = (await res.json()) as any
  if (res.status !== 200 || json.errors) throw new Error(`GraphQL ${res.status}: ${JSON.stringify(json)}`)
  return json.data
}


const TX_QUERY = `query($id: ID!) { transaction(id: $id) { id status nonce hash blockNumber } }`

const postgresPidFile = () => join(dataDir, 'postgres', 'postmaster.pid')
const anvilPidFile = () => join(dataDir, 'anvil.pid')

/** Live processes (not zombies) whose command line mentions the data dir: the dev postgres and anvil. */
function processesUsingDataDir(): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = []
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid === process.pid) continue
    const cmdline = processCommandLine(pid)
    if (cmdline.includes(dataDir) && isAlive(pid)) found.push({ pid, cmdline })
  }
  return found
}

describe('dev mode (npm start with nothing configured)', () => {
  let first: Banner
  let txId: string
  let firstPids: { postgres: number; anvil: number }
  let secondBanner: Banner

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'broadcaster-dev-'))
    // Embedded postgres runs as the "postgres" system user when we are root: it must reach <dataDir>/postgres.
    chmodSync(dataDir, 0o777)
  })

  afterAll(async () => {
    // Safety net: nothing from this data dir may outlive the test.
    for (const run of runs) if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL')
    const pids = new Set<number>()
    for (const file of [postgresPidFile(), anvilPidFile()]) {
      const pid = existsSync(file) ? readPidFile(file) : null
      if (pid && isAlive(pid)) pids.add(pid)
    }
    for (const p of processesUsingDataDir()) pids.add(p.pid)
    await Promise.all([...pids].map((pid) => terminate(pid, 'SIGKILL', 3_000)))
    rmSync(dataDir, { recursive: true, force: true })
  }, 30_000)

  it('starts embedded postgres and anvil, prints the banner, and confirms a transaction', async () => {
    const run = startService()
    first = await waitForBanner(run)
    expect(first.graphqlUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/graphql$/)
    expect(first.graphqlUrl).not.toContain(':0/')
    expect(first.apiKey).toMatch(/^dev_/)
    // The banner names the database it uses (a DATABASE_URL inherited from another project's shell was used unsaid).
    expect(run.output()).toContain(`Database   embedded Postgres under ${dataDir}`)
    expect(readFileSync(join(dataDir, 'dev-api-key'), 'utf8').trim()).toBe(first.apiKey)

    firstPids = { postgres: readPidFile(postgresPidFile())!, anvil: readPidFile(anvilPidFile())! }
    expect(isAlive(firstPids.postgres)).toBe(true)
    expect(processCommandLine(firstPids.anvil)).toContain('anvil')

    const sent = await graphql(
      first,
      `mutation($input: BroadcastTransactionInput!) { broadcastTransaction(input: $input) { id status } }`,
      { input: { to: RECIPIENT, value: '1000' } },
    )
    txId = sent.broadcastTransaction.id
    expect(txId).toBeTruthy()

    // 1 s blocks and 2 confirmations.
    const confirmed = await waitFor(
      'the transaction to be CONFIRMED',
      async () => {
        const { transaction } = await graphql(first, TX_QUERY, { id: txId })
        return transaction?.status === 'CONFIRMED' ? transaction : null
      },
      20_000,
    )
    expect(confirmed.hash).toMatch(/^0x[0-9a-f]{64}$/)

    // The CLI finds dev mode's database with no DATABASE_URL (before: "set DATABASE_URL", whose port and password were
    // written nowhere a user reads), and the key it makes works against the running service.
    const created = await runCli(['keys', 'create', '--name', 'ops', '--role', 'admin'], { BROADCASTER_DATA_DIR: dataDir, DATABASE_URL: undefined, BROADCASTER_CONFIG: undefined })
    expect([created.code, created.stderr]).toEqual([0, expect.stringContaining('Created admin key "ops"')])
    expect(created.stderr).toContain(`DATABASE_URL is not set: using dev mode's embedded Postgres under ${dataDir}`)
    // With a config file, a missing DATABASE_URL is a mistake: never the dev database.
    const configured = await runCli(['keys', 'list'], { BROADCASTER_DATA_DIR: dataDir, DATABASE_URL: undefined, BROADCASTER_CONFIG: '/etc/tx-broadcaster.json' })
    expect([configured.code, configured.stderr]).toEqual([2, expect.stringContaining('set DATABASE_URL')])
    const key = created.stdout.trim()
    expect(key).toMatch(/^txb_/)
    const res = await fetch(first.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ query: `query($id: ID!) { transaction(id: $id) { status } }`, variables: { id: txId } }),
    })
    expect(((await res.json()) as any).data.transaction.status).toBe('CONFIRMED')
  }, 90_000)

  it('after a SIGKILL of the service, a second start stops the leftovers and finds the transaction', async () => {
    const run = runs[0]!
    // Only the service: its postgres and anvil stay behind, as after a crash.
    run.child.kill('SIGKILL')
    expect((await run.exited).signal).toBe('SIGKILL')
    expect(isAlive(firstPids.postgres)).toBe(true)
    expect(isAlive(firstPids.anvil)).toBe(true)

    const second = startService()
    const banner = await waitForBanner(second)
    secondBanner = banner
    expect(second.output()).toContain(`stopping leftover embedded postgres (pid ${firstPids.postgres})`)
    expect(second.output()).toContain(`stopping leftover anvil (pid ${firstPids.anvil})`)
    expect(isAlive(firstPids.postgres)).toBe(false)
    expect(isAlive(firstPids.anvil)).toBe(false)
    expect(banner.apiKey).toBe(first.apiKey)
    expect(readPidFile(anvilPidFile())).not.toBe(firstPids.anvil)

    const { transaction } = await graphql(banner, TX_QUERY, { id: txId })
    expect(transaction).toMatchObject({ id: txId, status: 'CONFIRMED' })
    // And it stays so while the watcher follows the restarted chain for a few blocks.
    await new Promise((r) => setTimeout(r, 3_000))
    const again = await graphql(banner, TX_QUERY, { id: txId })
    expect(again.transaction).toMatchObject({ id: txId, status: 'CONFIRMED', hash: transaction.hash })
  }, 90_000)

  it('a second start on the same data dir while one runs is refused, and the running one keeps its postgres and anvil', async () => {
    // Before, it took them for a killed run's leftovers and stopped them: the running one lost its database and chain.
    const pids = { postgres: readPidFile(postgresPidFile())!, anvil: readPidFile(anvilPidFile())! }
    const other = startService()
    const { code } = await other.exited
    expect(code).toBe(1)
    expect(other.output()).toContain(`another tx-broadcaster (pid ${runs[1]!.child.pid}) is using ${dataDir}`)
    expect(other.output()).not.toContain('stopping leftover')
    expect(isAlive(pids.postgres)).toBe(true)
    expect(isAlive(pids.anvil)).toBe(true)
    const { transaction } = await graphql(secondBanner, TX_QUERY, { id: txId })
    expect(transaction).toMatchObject({ id: txId, status: 'CONFIRMED' })
  }, 60_000)

  it('Ctrl-C under npm start shuts it down cleanly, postgres and anvil included', async () => {
    const run = runs[1]!
    const pids = { postgres: readPidFile(postgresPidFile())!, anvil: readPidFile(anvilPidFile())! }
    // One Ctrl-C reaches node twice: from the terminal (its process group) and from npm, which forwards it.
    // The second was taken for "send again to exit at once": exit 1, the embedded postgres and anvil not waited for.
    run.child.kill('SIGINT')
    await new Promise((r) => setTimeout(r, 20))
    run.child.kill('SIGINT')
    const exit = await Promise.race([run.exited, new Promise<null>((r) => setTimeout(() => r(null), 45_000))])
    expect(exit, `service did not exit after SIGINT:\n${run.output()}`).toEqual({ code: 0, signal: null })
    expect(isAlive(pids.postgres)).toBe(false)
    expect(isAlive(pids.anvil)).toBe(false)
    expect(existsSync(anvilPidFile())).toBe(false)
    expect(existsSync(postgresPidFile())).toBe(false)
    expect(processesUsingDataDir()).toEqual([])
    // Stopped: the CLI says to start it, not a connection error.
    const listed = await runCli(['keys', 'list'], { BROADCASTER_DATA_DIR: dataDir, DATABASE_URL: undefined, BROADCASTER_CONFIG: undefined })
    expect([listed.code, listed.stderr]).toEqual([1, expect.stringContaining("dev mode's embedded Postgres (under")])
  }, 60_000)

  it('a dev chain whose state file was removed is refused at start, saying what to do (it waited on a chain that had started over)', async () => {
    rmSync(join(dataDir, 'anvil-state.json'))
    const run = startService()
    const exit = await Promise.race([run.exited, new Promise<null>((r) => setTimeout(() => r(null), 45_000))])
    expect(exit, run.output()).toEqual({ code: 1, signal: null })
    expect(run.output()).toMatch(/the dev chain is at block 0, but the dev database has followed it to block \d+: the chain was reset/)
    expect(run.output()).toContain(`Delete ${dataDir} to start over`)
    // What it started for the check is stopped with it.
    await waitFor('its postgres and anvil gone', async () => processesUsingDataDir().length === 0, 15_000)
  }, 60_000)
})
