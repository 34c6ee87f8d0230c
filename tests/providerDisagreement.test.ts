/**
 * Providers that disagree about the chain: one of them follows another branch (a minority fork, a node that split
 * off). A transaction mined in one branch's block is final only once no provider that is up has another block at
 * that height.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { getTx, submit, waitForStatus } from './helpers/chainControl.ts'
import { startRewritingProxy } from './helpers/rewritingProxy.ts'
import { RECIPIENT, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

describe('providers on different branches', () => {
  let env: TestEnv | undefined
  let branch: Awaited<ReturnType<typeof startRewritingProxy>> | undefined
  afterEach(async () => {
    await env?.stop()
    await branch?.stop()
    env = branch = undefined
  })

  it('a transaction stays INCLUDED while a provider has another block at its height, and is final once they agree', async () => {
    // The second provider answers another block for every height (its hash), as a node on another branch does.
    let onAnotherBranch = true
    env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      setup: async (anvil) => {
        branch = await startRewritingProxy(anvil.url, {
          answer: (c, a) =>
            onAnotherBranch && c.method === 'eth_getBlockByNumber' && a.result ? { ...a, result: { ...(a.result as object), hash: `0x${'ee'.repeat(32)}` } } : a,
        })
      },
      config: (c, anvil) => {
        // The watcher reads the first (ranked by weight first); the branch's provider is asked before a height is final.
        c.chains[0].providers = [
          { name: 'main', url: anvil.url },
          { name: 'branch', url: branch!.url },
        ]
      },
    })
    const id = await submit(env, { to: RECIPIENT, value: '31337' })
    const included = await waitForStatus(env, id, (t) => t.status === 'INCLUDED' || t.status === 'CONFIRMED')
    // Before: CONFIRMED at once (depth 1), on the word of the one provider the watcher read.
    expect(included.status).toBe('INCLUDED')
    await new Promise((r) => setTimeout(r, 3_000))
    const held = await getTx(env, id)
    expect(held.status).not.toBe('CONFIRMED')
    // Its timeline says why, once: the dashboard shows it, not only the log.
    const said = held.events.filter((e: any) => JSON.parse(e.detail ?? '{}').reason === 'providers_disagree')
    expect(said.map((e: any) => [e.fromStatus, e.toStatus, JSON.parse(e.detail).otherProviders])).toEqual([['INCLUDED', 'INCLUDED', ['branch']]])
    onAnotherBranch = false
    await waitFor('CONFIRMED once the providers agree', async () => (await getTx(env!, id)).status === 'CONFIRMED', 15_000)
    expect((await getTx(env, id)).blockHash).toBe(included.blockHash)
  })
})
