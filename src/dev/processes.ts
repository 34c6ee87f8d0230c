import type { ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'

/** Helpers for the dev-mode child processes (embedded postgres, anvil) that outlive a SIGKILLed parent. */

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** The fields of /proc/<pid>/stat after "pid (comm)" (the command name may hold spaces): the state is [0], the start time [19]. Throws when unreadable. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** Running (a zombie waiting to be reaped, e.g. in a container whose init does not reap, counts as gone). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  try {
    return statFields(pid)[0] !== 'Z'
  } catch (err) {
    // No /proc (not Linux): trust kill(0). Vanished in between: gone.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync('/proc/self/stat')
  }
}

/** When a process started, in clock ticks after boot (Linux /proc: not moved by a step of the wall clock); null when it is gone or /proc is not there. */
export function processStartTicks(pid: number): string | null {
  try {
    const ticks = statFields(pid)[19]
    return ticks && /^\d+$/.test(ticks) ? ticks : null
  } catch {
    return null
  }
}

/** When a process started (ms since the epoch, from its start ticks and the boot time, at 100 ticks a second); null when unknown. */
export function processStartedAt(pid: number): number | null {
  const ticks = processStartTicks(pid)
  try {
    const boot = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1])
    return ticks !== null && Number.isFinite(boot) && boot > 0 ? boot * 1000 + Number(ticks) * 10 : null
  } catch {
    return null
  }
}

/** The command line of a running process ('' when it is gone or /proc is not there). */
export function processCommandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
  } catch {
    return ''
  }
}

/** Child processes of a process (Linux /proc; empty when it is gone or the kernel does not list them). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** The pid on the first line of a pid file, or null. */
export function readPidFile(file: string): number | null {
  if (!existsSync(file)) return null
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]!.trim())
  return Number.isInteger(pid) && pid > 0 ? pid : null
}

export function writePidFile(file: string, pid: number): void {
  writeFileSync(file, `${pid}\n`)
}

/** Removes the pid file if it still names this pid (a newer run may have written its own). */
export function removePidFile(file: string, pid: number): void {
  if (readPidFile(file) === pid) rmSync(file, { force: true })
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false
    await sleep(50)
  }
  return true
}

/** Sends `signal`, waits up to `graceMs`, then SIGKILL (and waits a little more). True when it is gone. */
export async function terminate(pid: number, signal: NodeJS.Signals = 'SIGTERM', graceMs = 3_000): Promise<boolean> {
  try {
    process.kill(pid, signal)
  } catch {
    return !isAlive(pid)
  }
  if (await waitGone(pid, graceMs)) return true
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // gone in between
  }
  return waitGone(pid, 5_000)
}

/**
 * A SIGKILLed dev run leaves its children running. If the pid file names a live process whose command
 * line contains every one of `mustContain` (so a reused pid of some other program is left alone), stop
 * it; then drop the stale pid file.
 */
export async function stopLeftoverFromPidFile(
  pidFile: string,
  what: string,
  mustContain: string[],
  log: (m: string) => void,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 3_000,
): Promise<void> {
  const pid = readPidFile(pidFile)
  if (pid === null) return
  if (isAlive(pid)) {
    const cmdline = processCommandLine(pid)
    if (cmdline && mustContain.every((s) => cmdline.includes(s))) {
      log(`stopping leftover ${what} (pid ${pid}) from an earlier run`)
      if (!(await terminate(pid, signal, graceMs))) throw new Error(`could not stop leftover ${what} (pid ${pid})`)
    }
  }
  // Gone now, or a reused pid of another program: either way the file is stale.
  rmSync(pidFile, { force: true })
}

/**
 * Resolves once `marker` appears in what the child writes on its piped streams; rejects,
 * with the output's tail, if it exits first. Then keeps draining the pipes so they never fill
 * (anvil logs every request).
 */
export async function waitForOutput(child: ChildProcess, marker: string, what: string): Promise<void> {
  const streams = [child.stdout, child.stderr].filter((s) => s !== null)
  let output = ''
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes(marker)) {
        for (const s of streams) s.off('data', onData)
        child.off('exit', onExit)
        resolve()
      }
      if (output.length > 20_000) output = output.slice(-4_000)
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      reject(new Error(`${what} exited (${signal ?? `code ${code}`}) before it was ready:\n${output}`))
    for (const s of streams) s.on('data', onData)
    child.once('exit', onExit)
    child.once('error', reject)
  })
  for (const s of streams) s.resume()
}
