import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError } from '../config/loadConfig.ts'
import { isAlive, processCommandLine, processStartedAt, processStartTicks, readPidFile, removePidFile } from './processes.ts'

/**
 * Whether `pid` is the process that wrote `file`: the file's second line holds its start (clock ticks after boot,
 * which a step of the wall clock does not move). A file of an earlier version has none: then whether the process
 * was running when the file was last written (1 s of slack).
 */
function wroteIt(pid: number, file: string): boolean {
  const recorded = readFileSync(file, 'utf8').split('\n')[1]?.trim()
  if (recorded) return processStartTicks(pid) === recorded
  const started = processStartedAt(pid)
  return started === null || started <= statSync(file).mtimeMs + 1_000
}

/** What the file holds: this process's pid, and its start (see wroteIt). */
const claim = () => `${process.pid}\n${processStartTicks(process.pid) ?? ''}\n`

/**
 * Makes this process the one service using `dataDir` (dev mode's embedded Postgres and anvil live there), until it
 * exits. A second `npm start` in the same directory took the first one's Postgres and anvil for leftovers of a
 * killed run and stopped them: the first went on answering with no database and no chain. Now the second is
 * refused, naming the first. A pid file whose process is gone (a SIGKILLed run) is taken over.
 */
export function claimDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true })
  const file = join(dataDir, 'service.pid')
  const holder = readPidFile(file)
  // Its pid reused by something else since is not a service: only the live node process that wrote the file counts.
  // Any node process passed before: after a reboot (or a SIGKILLed run) whose pid an editor or another node server
  // then had, the start was refused, naming that program as a tx-broadcaster.
  if (holder !== null && holder !== process.pid && isAlive(holder) && /\bnode\b|tx-broadcaster|main\.js/.test(processCommandLine(holder)) && wroteIt(holder, file))
    throw new ConfigError(
      `another tx-broadcaster (pid ${holder}) is using ${dataDir}: stop it first, or give this one its own directory (BROADCASTER_DATA_DIR=...)`,
    )
  if (holder === null) {
    // Created only if absent: of two starts at the same moment, one gets the directory, the other is told.
    try {
      writeFileSync(file, claim(), { flag: 'wx' })
    } catch (err) {
      // Written by another start just now: look again (it names a pid now). A file with no pid in it: taken.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && readPidFile(file) !== null) return claimDataDir(dataDir)
      writeFileSync(file, claim())
    }
  } else writeFileSync(file, claim())
  process.once('exit', () => removePidFile(file, process.pid))
}
