import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { RECIPIENT, startTestEnv, type TestEnv } from './helpers/testService.ts'

/** Several broadcastTransaction fields in one GraphQL request (aliases): the field is non-null, so one error nulls the whole answer. */
describe('broadcastTransaction aliases in one request', () => {
  let env: TestEnv | undefined
  afterEach(async () => {
    await env?.stop()
    env = undefined
  })

  async function storedIds(): Promise<string[]> {
    const sql = postgres(env!.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      return (await sql<{ id: string }[]>`SELECT id FROM transactions ORDER BY seq`).map((r) => r.id)
    } finally {
      await sql.end()
    }
  }

  it('one whose input is refused refuses them all before any is stored, naming it', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].policy = { maxValue: '100' }) })
    const long = `0x${'ab'.repeat(200)}`
    // b: a gasLimit below what its calldata costs; c: over the chain's policy. Both are found before a is stored.
    const { json } = await env.graphql(`mutation($long: Hex!) {
      a: broadcastTransaction(input: { to: "${RECIPIENT}", value: "1" }) { id }
      b: broadcastTransaction(input: { to: "${RECIPIENT}", data: $long, gasLimit: "21000" }) { id }
      c: broadcastTransaction(input: { to: "${RECIPIENT}", value: "1000" }) { id }
    }`, { long })
    // Before: a was stored, b's error nulled the answer (a's id lost with it), and c never ran.
    expect(json.data).toBeNull()
    expect(json.errors).toHaveLength(1)
    expect(json.errors[0].extensions).toMatchObject({ code: 'VALUE_OUT_OF_RANGE', field: 'gasLimit' })
    expect(json.errors[0].message).toMatch(/^b: gasLimit: 21000 is below .*nothing of this request was stored/)
    expect(await storedIds()).toEqual([])
    // Without b, c alone still refuses them both, before a is stored.
    const alone = await env.graphql(`mutation { a: broadcastTransaction(input: { to: "${RECIPIENT}", value: "1" }) { id } c: broadcastTransaction(input: { to: "${RECIPIENT}", value: "1000" }) { id } }`)
    expect(alone.json.errors[0].extensions.code).toBe('VALUE_TOO_HIGH')
    expect(alone.json.errors[0].message).toMatch(/^c: value/)
    expect(await storedIds()).toEqual([])
  })

  it('one refused after others were stored (the key\'s in-flight cap) names them and their ids in its error', async () => {
    env = await startTestEnv({ anvil: { noMining: true }, config: (c) => (c.limits = { maxInFlightPerKey: 2 }) })
    const { json } = await env.graphql(`mutation {
      a: broadcastTransaction(input: { to: "${RECIPIENT}", value: "1" }) { id }
      b: broadcastTransaction(input: { to: "${RECIPIENT}", value: "2" }) { id }
      c: broadcastTransaction(input: { to: "${RECIPIENT}", value: "3" }) { id }
    }`)
    const ids = await storedIds()
    expect(ids).toHaveLength(2)
    expect(json.data).toBeNull()
    // Before: TOO_MANY_IN_FLIGHT alone; the client had no way to learn that a and b were stored, or their ids.
    expect(json.errors).toHaveLength(1)
    expect(json.errors[0].path).toEqual(['c'])
    // Its own extensions kept: when to come back.
    expect(json.errors[0].extensions).toMatchObject({
      code: 'TOO_MANY_IN_FLIGHT',
      retryAfterSeconds: expect.any(Number),
      stored: [{ field: 'a', id: ids[0] }, { field: 'b', id: ids[1] }],
    })
    expect(json.errors[0].message).toContain(`a = ${ids[0]}, b = ${ids[1]}`)
  })
})
