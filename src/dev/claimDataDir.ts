import { mkdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError } from '../config/loadConfig.ts'
import { isAlive, processCommandLine, processStartedAt, readPidFile, removePidFile, writePidFile } from './processes.ts'

/**
 * Makes this process the one service using `dataDir` (dev mode's embedded Postgres and anvil live there), until it
 * exits. A second `npm start` in the same directory took the first one's Postgres and anvil for leftovers of a
 * killed run and stopped them: the first went on answering with no database and no chain. Now the second is
 * refused, naming the first. A pid file whose process is gone (a SIGKILLed run) is taken over.
 */
/** Whether `pid` was running when `file` was last written (1 s of slack: /proc's start time is in 10 ms ticks, file times vary). */
function startedBefore(pid: number, file: string): boolean {
  const started = processStartedAt(pid)
  return started === null || started <= statSync(file).mtimeMs + 1_000
}

export function claimDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true })
  const file = join(dataDir, 'service.pid')
  const holder = readPidFile(file)
  // Its pid reused by something else since is not a service: only a live node process that was running when the
  // file was written counts. Any node process passed before: after a reboot (or a SIGKILLed run) whose pid an
  // editor or another node server then had, the start was refused, naming that program as a tx-broadcaster.
  if (holder !== null && holder !== process.pid && isAlive(holder) && /\bnode\b|tx-broadcaster|main\.js/.test(processCommandLine(holder)) && startedBefore(holder, file))
    throw new ConfigError(
      `another tx-broadcaster (pid ${holder}) is using ${dataDir}: stop it first, or give this one its own directory (BROADCASTER_DATA_DIR=...)`,
    )
  if (holder === null) {
    // Created only if absent: of two starts at the same moment, one gets the directory, the other is told.
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' })
    } catch (err) {
      // Written by another start just now: look again (it names a pid now). A file with no pid in it: taken.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && readPidFile(file) !== null) return claimDataDir(dataDir)
      writePidFile(file, process.pid)
    }
  } else writePidFile(file, process.pid)
  process.once('exit', () => removePidFile(file, process.pid))
}
