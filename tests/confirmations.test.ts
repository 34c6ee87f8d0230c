import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chainControl, getTx, submit, waitForStatus } from './helpers/chainControl.ts'
import { startFaultProxy, type FaultProxy } from './helpers/faultProxy.ts'
import { RECIPIENT, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

/** `confirmations` counts up while INCLUDED (it was null until final), the same over GraphQL and REST. */
describe('confirmations while a transaction waits for its depth (real anvil, blocks mined by the test)', () => {
  let env: TestEnv
  beforeAll(async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].confirmations = 3) })
  }, 60_000)
  afterAll(() => env?.stop())

  const both = async (id: string) => {
    const gql = await env.graphql(`query($id: ID!) { transaction(id: $id) { status confirmations } }`, { id })
    const rest = await env.get(`/transactions/${id}`)
    return { gql: gql.json.data.transaction, rest: { status: rest.json.status, confirmations: rest.json.confirmations } }
  }

  it('null before the block, then 1, 2 as blocks follow, and the depth once CONFIRMED', async () => {
    const anvil = chainControl(env)
    const id = await submit(env, { to: RECIPIENT, value: '1' })
    await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    expect(await both(id)).toEqual({ gql: { status: 'PENDING', confirmations: null }, rest: { status: 'PENDING', confirmations: null } })
    await anvil.mine()
    for (const expected of [1, 2]) {
      const seen = await waitFor(`${expected} confirmation(s)`, async () => {
        const b = await both(id)
        return b.gql.status === 'INCLUDED' && b.gql.confirmations === expected && b
      })
      expect(seen.rest).toEqual({ status: 'INCLUDED', confirmations: expected })
      await anvil.mine()
    }
    await waitForStatus(env, id, 'CONFIRMED')
    expect(await both(id)).toEqual({ gql: { status: 'CONFIRMED', confirmations: 3 }, rest: { status: 'CONFIRMED', confirmations: 3 } })
  })
})

describe('the watcher with a block its provider cannot serve', () => {
  let env: TestEnv | undefined
  let proxy: FaultProxy | undefined
  afterAll(async () => {
    await env?.stop()
    await proxy?.stop()
  })

  it('an INCLUDED transaction still reaches its depth while the scan of a newer block fails; the scan goes on once it is served', async () => {
    env = await startTestEnv({
      anvil: { noMining: true },
      setup: async (anvil) => void (proxy = await startFaultProxy(anvil.url)),
      config: (c) => {
        c.chains[0].providers = [{ name: 'p', url: proxy!.url }]
        c.chains[0].confirmations = 3
      },
    })
    const anvil = chainControl(env)
    const id = await submit(env, { to: RECIPIENT, value: '2' })
    await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    await anvil.mine()
    const included = await waitForStatus(env, id, 'INCLUDED')
    // The provider fails every read of the next block.
    const next = `"0x${(Number(included.blockNumber) + 1).toString(16)}"`
    proxy!.setMode('methodError', { errorMethods: ['eth_getBlockByNumber'], errorParamsInclude: next })
    await anvil.mine(3)
    // Before: the failed read ended each tick before confirmations were advanced, so it stayed INCLUDED.
    const done = await waitForStatus(env, id, 'CONFIRMED', 15_000)
    expect(done.blockNumber).toBe(included.blockNumber)
    // Served again: a transaction in a later block is found by the scan.
    proxy!.setMode('ok')
    const later = await submit(env, { to: RECIPIENT, value: '3' })
    await waitForStatus(env, later, (t) => t.attempts[0]?.status === 'SENT')
    await anvil.mine(3)
    await waitForStatus(env, later, 'CONFIRMED', 15_000)
  })
})

describe('confirmations from a list read before the row moved to another block', () => {
  let env: TestEnv | undefined
  afterAll(async () => {
    await env?.stop()
  })

  it('a row settled in another block between the read and the write is not confirmed in that block', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].confirmations = 2) })
    const anvil = chainControl(env)
    const id = await submit(env, { to: RECIPIENT, value: '4' })
    await waitForStatus(env, id, (t) => t.attempts[0]?.status === 'SENT')
    await anvil.mine()
    const included = await waitForStatus(env, id, 'INCLUDED')
    // Another writer (a second leader overlapping this one for a moment) settles the row in another block, and
    // holds the row until the watcher, which read the list before that, is writing CONFIRMED over it.
    const other = `0x${'ab'.repeat(32)}`
    const sql = postgres(env.databaseUrl, { max: 2, onnotice: () => {} })
    try {
      await sql.begin(async (tx) => {
        await tx`UPDATE transactions SET block_hash = ${other} WHERE id = ${id}`
        await anvil.mine() // the depth is reached in the block the watcher read
        await waitFor('the watcher waiting on the row', async () => {
          const [row] = await sql<{ n: number }[]>`
            SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND query LIKE '%UPDATE transactions t SET%' AND query LIKE '%final_at = now()%'`
          return row!.n > 0
        })
      })
    } finally {
      await sql.end()
    }
    // Before: CONFIRMED in the other block, which the watcher never saw on the chain.
    const t = await waitFor('the watcher past the row', async () => {
      const x = await getTx(env!, id)
      return (x.status !== 'INCLUDED' || x.blockHash !== other) && x
    })
    expect(t.events.map((e: any) => e.toStatus)).not.toContain('CONFIRMED')
    const done = await waitForStatus(env, id, 'CONFIRMED')
    expect(done.blockHash).toBe(included.blockHash)
  })
})
