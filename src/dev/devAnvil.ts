import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { isPortFree } from './freePort.ts'
import { removePidFile, stopLeftoverFromPidFile, writePidFile } from './processes.ts'
import { startAnvil, type Anvil } from './startAnvil.ts'

export const DEV_ANVIL_PORT = 8545

/**
 * The dev-mode chain: anvil on 8545 (or a free port when that is taken) with 1 s blocks, its state kept in
 * `<dataDir>/anvil-state.json` so a restart finds the transactions the database remembers, and its pid in
 * `<dataDir>/anvil.pid` so the next start can stop it if this process is SIGKILLed.
 */
export async function startDevAnvil(dataDir: string, log: (m: string) => void = () => {}): Promise<Anvil> {
  mkdirSync(dataDir, { recursive: true })
  const pidFile = join(dataDir, 'anvil.pid')
  const stateFile = join(dataDir, 'anvil-state.json')
  // A leftover anvil holds the port and keeps writing the state file; SIGTERM lets it write it one last time.
  await stopLeftoverFromPidFile(pidFile, 'anvil', ['anvil', stateFile], log)

  const base = { blockTimeSec: 1, detached: true, extraArgs: ['--state', stateFile, '--state-interval', '1'] }
  let anvil: Anvil
  try {
    if (await isPortFree(DEV_ANVIL_PORT)) {
      anvil = await startAnvil({ ...base, port: DEV_ANVIL_PORT }).catch((err: Error) => {
        // Taken between the look and the start; any other failure (a damaged state file) would fail on any port,
        // and was blamed on the port.
        if (!/address already in use|EADDRINUSE/i.test(err.message)) throw err
        log(`anvil could not use port ${DEV_ANVIL_PORT} (taken meanwhile); using a free port`)
        return startAnvil(base)
      })
    } else {
      log(`port ${DEV_ANVIL_PORT} is taken; starting anvil on a free port`)
      anvil = await startAnvil(base)
    }
  } catch (err) {
    // A state file cut short (a power loss while anvil rewrote it): anvil names it in its words; say what to do.
    if ((err as Error).message.includes(stateFile))
      throw new Error(
        `anvil cannot load the dev chain saved in ${stateFile}: delete ${dataDir} to start over with a new dev chain and database (anvil said: ${(err as Error).message.replace(/\s+/g, ' ').trim()})`,
        { cause: err },
      )
    throw err
  }

  const pid = anvil.process.pid!
  writePidFile(pidFile, pid)
  // Detached, so no terminal signal reaches it: if this process exits without stopping it, take it along.
  const onExit = () => {
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      // already gone
    }
  }
  process.on('exit', onExit)
  anvil.process.once('exit', () => {
    process.off('exit', onExit)
    removePidFile(pidFile, pid)
  })
  return anvil
}
