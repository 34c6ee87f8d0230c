import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createLogger } from './logger.ts'
import { startLoop, STOP_WAIT_MS } from './startLoop.ts'

const log = createLogger({ level: 'silent', pretty: false })

describe('startLoop', () => {
  it('logs a failure repeated word for word once (not a stack trace every tick), then that it works again', async () => {
    const lines: string[] = []
    const captured = createLogger({ level: 'info', pretty: false, destination: new Writable({ write: (c, _e, done) => (lines.push(c.toString()), done()) }) })
    let runs = 0
    const loop = startLoop(
      'flaky',
      2,
      async () => {
        runs++
        if (runs <= 30) throw new Error(`Block at number "${runs}" could not be found\nURL: http://127.0.0.1:1 (run ${runs})`)
        if (runs <= 32) throw new Error('another failure')
      },
      captured,
    )
    await waitFor(() => runs >= 34)
    await loop.stop()
    const msgs = lines.map((l) => JSON.parse(l).msg as string)
    expect(msgs).toEqual(['flaky failed; retrying', 'flaky failed; retrying', 'flaky works again'])
    expect(JSON.parse(lines[1]!).err.message).toBe('another failure')
  })

  it('aborts the signal of a run it gave up on, and goes on with the next run', async () => {
    const signals: AbortSignal[] = []
    let release!: () => void
    const late = new Promise<void>((resolve) => (release = resolve))
    const wroteAfterAbort: boolean[] = []
    const loop = startLoop(
      'test',
      10,
      async (signal) => {
        signals.push(signal)
        if (signals.length > 1) return
        // The first run hangs past the timeout, then its answer arrives: a write there must see the abort.
        await late
        wroteAfterAbort.push(!signal.aborted)
      },
      log,
      { runTimeoutMs: 50 },
    )
    await waitFor(() => signals.length >= 2)
    expect(signals[0]!.aborted).toBe(true)
    expect(signals[1]!.aborted).toBe(false)
    release()
    await waitFor(() => wroteAfterAbort.length === 1)
    expect(wroteAfterAbort).toEqual([false])
    await loop.stop()
  })

  it('aborts the signal of a run that failed, and not of one that finished', async () => {
    const signals: AbortSignal[] = []
    const loop = startLoop(
      'test',
      10,
      async (signal) => {
        signals.push(signal)
        if (signals.length === 1) throw new Error('boom')
      },
      log,
    )
    await waitFor(() => signals.length >= 3)
    await loop.stop()
    expect(signals[0]!.aborted).toBe(true)
    expect(signals[1]!.aborted).toBe(false)
  })

  it('stop() aborts the run in hand, logs no failure for it, and waits STOP_WAIT_MS at most for a run that goes on', async () => {
    const lines: string[] = []
    const captured = createLogger({ level: 'info', pretty: false, destination: new Writable({ write: (c, _e, done) => (lines.push(c.toString()), done()) }) })
    // A run that checks its signal (the watcher's tick) ends at its next await.
    let started = false
    const heeding = startLoop(
      'heeding',
      10,
      async (signal) => {
        started = true
        while (!signal.aborted) await new Promise((r) => setTimeout(r, 20))
        signal.throwIfAborted()
      },
      captured,
      { runTimeoutMs: 60_000 },
    )
    await waitFor(() => started)
    let t0 = Date.now()
    await heeding.stop()
    expect(Date.now() - t0).toBeLessThan(1_000)
    expect(lines).toEqual([])
    // One that does not (a bump pass sending): before, stop() waited for it, up to its runTimeoutMs (60 s).
    let ignoringStarted = false
    const ignoring = startLoop(
      'ignoring',
      10,
      async () => {
        ignoringStarted = true
        await new Promise((r) => setTimeout(r, 30_000))
      },
      captured,
      { runTimeoutMs: 60_000 },
    )
    await waitFor(() => ignoringStarted)
    t0 = Date.now()
    await ignoring.stop()
    expect(Date.now() - t0).toBeGreaterThanOrEqual(STOP_WAIT_MS - 50)
    expect(Date.now() - t0).toBeLessThan(STOP_WAIT_MS + 2_000)
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['ignoring: stopped without waiting for its run in hand to end'])
  }, 20_000)

  it('a function that throws before its first await fails that run only', async () => {
    let runs = 0
    const loop = startLoop(
      'test',
      10,
      (() => {
        runs++
        if (runs === 1) throw new Error('thrown at once')
        return Promise.resolve()
      }) as (signal: AbortSignal) => Promise<void>,
      log,
    )
    await waitFor(() => runs >= 3)
    await loop.stop()
  })
})

async function waitFor(ok: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms
  while (!ok()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
