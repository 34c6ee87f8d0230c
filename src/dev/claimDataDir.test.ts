import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { claimDataDir } from './claimDataDir.ts'
import { processStartTicks, readPidFile } from './processes.ts'

describe('claimDataDir', () => {
  const dirs: string[] = []
  const others: ChildProcess[] = []
  afterAll(() => {
    for (const p of others) p.kill('SIGKILL')
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })
  /** Another node process (an editor, another server) and a fresh data dir whose service.pid names it. */
  async function pidFileNamingAnotherNode(second = ''): Promise<{ dir: string; file: string; pid: number }> {
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' })
    others.push(other)
    await new Promise((r) => other.once('spawn', r))
    const dir = mkdtempSync(join(tmpdir(), 'txb-claim-'))
    dirs.push(dir)
    const file = join(dir, 'service.pid')
    writeFileSync(file, `${other.pid}\n${second}`)
    return { dir, file, pid: other.pid! }
  }

  it('takes over a pid file of an earlier version whose node process started after it was written (a reboot or a killed run since)', async () => {
    const { dir, file } = await pidFileNamingAnotherNode()
    // Written an hour before that process started: its pid was reused.
    const hourAgo = new Date(Date.now() - 3_600_000)
    utimesSync(file, hourAgo, hourAgo)
    // Before: refused, "another tx-broadcaster (pid N) is using ...", naming a process that is not one.
    expect(() => claimDataDir(dir)).not.toThrow()
    expect(readPidFile(file)).toBe(process.pid)
  })

  it('refuses a data dir whose pid file names a node process running since before it was written', async () => {
    const { dir, pid } = await pidFileNamingAnotherNode()
    expect(() => claimDataDir(dir)).toThrow(new RegExp(`another tx-broadcaster \\(pid ${pid}\\) is using`))
  })

  it('goes by the start the pid file records, not by clocks: another start is taken over, the same one refused', async () => {
    // Recorded by the run that wrote it; the process now at that pid started at another tick (a reboot since).
    const stale = await pidFileNamingAnotherNode('12345\n')
    expect(() => claimDataDir(stale.dir)).not.toThrow()
    const live = await pidFileNamingAnotherNode()
    writeFileSync(live.file, `${live.pid}\n${processStartTicks(live.pid)}\n`)
    // Written an hour "before" it started (a wall clock stepped forward since): still the one that wrote it.
    const hourAgo = new Date(Date.now() - 3_600_000)
    utimesSync(live.file, hourAgo, hourAgo)
    expect(() => claimDataDir(live.dir)).toThrow(/another tx-broadcaster/)
  })

  it('records its own start in the file it writes', async () => {
    const { dir, file } = await pidFileNamingAnotherNode('1\n')
    claimDataDir(dir)
    expect(readFileSync(file, 'utf8')).toBe(`${process.pid}\n${processStartTicks(process.pid)}\n`)
  })
})
