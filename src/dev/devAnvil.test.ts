import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startDevAnvil } from './devAnvil.ts'

describe('startDevAnvil', () => {
  const dir = mkdtempSync(join(tmpdir(), 'txb-dev-anvil-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('a damaged state file is named, with what to do, and not blamed on the port', async () => {
    // Cut short, as a power loss while anvil rewrote it (every second) leaves it.
    writeFileSync(join(dir, 'anvil-state.json'), '{')
    const logged: string[] = []
    const failed = await startDevAnvil(dir, (m) => logged.push(m)).then(
      (anvil) => anvil.stop().then(() => null),
      (err: Error) => err,
    )
    // Before: "anvil could not use port 8545 (...); using a free port", then the same failure again, unexplained.
    expect(failed?.message).toMatch(new RegExp(`cannot load the dev chain saved in ${join(dir, 'anvil-state.json')}: delete ${dir} to start over.*failed to parse json file`))
    expect(logged.filter((m) => /could not use port/.test(m))).toEqual([])
  })
})
