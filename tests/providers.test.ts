import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getAddress } from 'viem'
import { startAnvil } from '../src/dev/startAnvil.ts'
import { submit, waitForStatus } from './helpers/chainControl.ts'
import { startBesideFaultProxy } from './helpers/behindFaultProxy.ts'
import { startFaultProxy, type FaultProxy } from './helpers/faultProxy.ts'
import { RECIPIENT, SIGNER, capturedLogger, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const PROVIDERS_QUERY = `query($chainId: Int) { providers(chainId: $chainId) {
  name chainId status latencyMs headBlock headLag errorsLastMinute consecutiveFailures lastError lastErrorAt downUntil } }`

const NODE_FIELDS = 'id status nonce hash value kind attempts { hash providers { name outcome error } }'

/** Every transaction, newest first, a page at a time (the query cost limit keeps pages small). */
async function listAll(env: TestEnv): Promise<any[]> {
  const nodes: any[] = []
  let after: string | null = null
  for (;;) {
    const { json }: { json: any } = await env.graphql(
      `query($after: String) { transactions(first: 100, after: $after) { edges { node { ${NODE_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
      { after },
    )
    if (json.errors) throw new Error(JSON.stringify(json.errors))
    nodes.push(...json.data.transactions.edges.map((e: any) => e.node))
    if (!json.data.transactions.pageInfo.hasNextPage) return nodes
    after = json.data.transactions.pageInfo.endCursor
  }
}

async function providers(env: TestEnv): Promise<Record<string, any>> {
  const { json } = await env.graphql(PROVIDERS_QUERY, { chainId: 31337 })
  if (json.errors) throw new Error(JSON.stringify(json.errors))
  return Object.fromEntries(json.data.providers.map((p: any) => [p.name, p]))
}

/** Fast health settings, so a test sees providers go down and come back within seconds. */
const FAST_RPC = { timeoutMs: 1_000, checkIntervalMs: 250, downAfterFailures: 3, downForMs: 500, maxDownForMs: 2_000 }

describe('three providers, one failing and one flapping, during a 300-transaction run', () => {
  let env: TestEnv
  const proxies: Record<'steady' | 'flappy' | 'broken', FaultProxy> = {} as never
  beforeAll(async () => {
    env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      setup: async (anvil) => {
        for (const name of ['steady', 'flappy', 'broken'] as const) proxies[name] = await startFaultProxy(anvil.url)
      },
      config: (c) => {
        // "broken" last in the read order: its failures meet the broadcasts first (a hanging provider first in
        // the read order is the next describe's).
        c.chains[0].providers = [
          { name: 'steady', url: proxies.steady.url, weight: 2 },
          { name: 'flappy', url: proxies.flappy.url },
          { name: 'broken', url: proxies.broken.url },
        ]
        // A longer timeout than the other tests: under a loaded machine the healthy provider must not time out.
        c.chains[0].rpc = { ...FAST_RPC, timeoutMs: 2_000 }
      },
    })
  })
  afterAll(async () => {
    await env?.stop()
    await Promise.all(Object.values(proxies).map((p) => p.stop()))
  })

  it('confirms all 300 with nonces 0..299 on chain; the failures show on the attempts and in providers', async () => {
    proxies.flappy.setMode('flap', { flapWith: 'http500' })
    // "broken" fails three ways, answering again in between long enough to be used again (maxDownForMs 2 s).
    // In the "close" round its requests go out once it is marked down, so some are "not sent" for sure: left to the
    // timing of the rounds, a loaded CI machine once sent none while it was down.
    const rounds: Array<{ before: () => void; pauseMs: number; brokenDown?: true }> = [
      { before: () => {}, pauseMs: 1_000 },
      { before: () => proxies.broken.setMode('hang'), pauseMs: 1_500 },
      { before: () => proxies.broken.setMode('ok'), pauseMs: 3_000 },
      { before: () => proxies.broken.setMode('close'), pauseMs: 1_500, brokenDown: true },
      { before: () => proxies.broken.setMode('ok'), pauseMs: 3_000 },
      { before: () => (proxies.broken.setMode('http500'), proxies.flappy.setMode('flap', { flapWith: 'close' })), pauseMs: 1_000 },
    ]
    const accepted: Array<{ id: string; value: string }> = []
    for (const [round, { before, pauseMs, brokenDown }] of rounds.entries()) {
      before()
      if (brokenDown) await waitFor('"broken" marked down', async () => (await providers(env)).broken.status === 'DOWN', 15_000, 50)
      const values = Array.from({ length: 50 }, (_, i) => String(1_000 + round * 50 + i))
      const ids = await Promise.all(values.map((value) => submit(env, { to: RECIPIENT, value })))
      accepted.push(...ids.map((id, i) => ({ id, value: values[i]! })))
      await sleep(pauseMs)
    }
    expect(new Set(accepted.map((a) => a.id)).size).toBe(300)

    const all = await waitFor(
      'all 300 CONFIRMED',
      async () => {
        const nodes = await listAll(env)
        return nodes.filter((n: any) => n.status === 'CONFIRMED').length === 300 && nodes
      },
      120_000,
      500,
    )

    // On chain: 300 transactions of the signer, nonces 0..299 each once, each carrying its request's value.
    expect(all.every((t: any) => t.kind === 'REQUEST')).toBe(true)
    const onChain = await Promise.all(all.map((t: any) => env.chain.getTransaction({ hash: t.hash })))
    expect(onChain.map((tx) => tx.nonce).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i))
    expect(await env.chain.getTransactionCount({ address: SIGNER.address })).toBe(300)
    const valueById = new Map(accepted.map((a) => [a.id, a.value]))
    for (const [i, tx] of onChain.entries()) {
      expect(getAddress(tx.from)).toBe(SIGNER.address)
      expect(tx.value.toString()).toBe(valueById.get(all[i].id))
      expect(String(tx.nonce)).toBe(all[i].nonce)
    }

    // Every provider's answer is on the attempts, failures with their reason.
    const answers = all.flatMap((t: any) => t.attempts.flatMap((a: any) => a.providers))
    const errorsOf = (name: string) => answers.filter((a: any) => a.name === name && a.outcome === 'provider_error').map((a: any) => a.error)
    // "broken": its failure on the attempts sent while it was tried, and "not sent" with its last error while down.
    expect(errorsOf('broken').length).toBeGreaterThan(0)
    for (const e of errorsOf('broken')) expect(e).toMatch(/^(timed out|fetch failed|HTTP 500|not sent: provider is down)/)
    expect(errorsOf('broken').some((e: string) => /^not sent: provider is down \((timed out|fetch failed|HTTP 500)/.test(e))).toBe(true)
    // "flappy" fails every other request, with HTTP 500 and later by closing the connection: which of its answers
    // are sends depends on how reads and sends interleave, so either failure counts (once a CI run saw none of
    // the HTTP 500s land on a send).
    expect(errorsOf('flappy').some((e: string) => /HTTP 500|fetch failed/.test(e)), JSON.stringify(errorsOf('flappy').slice(0, 5))).toBe(true)
    expect(errorsOf('steady')).toEqual([])
    expect(answers.some((a: any) => a.name === 'steady' && a.outcome === 'sent')).toBe(true)

    // And in the providers' health, while the faults last.
    const health = await providers(env)
    expect(health.broken).toMatchObject({ chainId: 31337, status: 'DOWN', lastError: expect.stringMatching(/^HTTP 500/) })
    expect(health.broken.errorsLastMinute).toBeGreaterThan(0)
    expect(health.broken.downUntil).not.toBeNull()
    expect(['DEGRADED', 'DOWN']).toContain(health.flappy.status)
    expect(health.flappy.errorsLastMinute).toBeGreaterThan(0)
    expect(health.steady.errorsLastMinute).toBe(0)
    expect(health.steady.status).not.toBe('DOWN')
    expect(BigInt(health.steady.headBlock)).toBeGreaterThan(0n)
    // Sends never made to "broken" while it was down are counted apart from its answers (they were provider_error).
    const metrics = await (await fetch(`${env.service.url}/metrics`)).text()
    expect(metrics).toMatch(/txb_provider_sends_total\{[^}]*provider="broken"[^}]*outcome="skipped_down"[^}]*\} [1-9]/)
  }, 240_000)

  it('uses a down provider again once it answers', async () => {
    proxies.broken.setMode('ok')
    proxies.flappy.setMode('ok')
    await waitFor(
      'broken and flappy back up',
      async () => {
        const h = await providers(env)
        return h.broken.status !== 'DOWN' && h.flappy.status !== 'DOWN'
      },
      10_000,
      100,
    )
    const id = await submit(env, { to: RECIPIENT, value: '5' })
    const { json } = await waitFor(
      'CONFIRMED',
      async () => {
        const r = await env.graphql(`query($id: ID!) { transaction(id: $id) { status attempts { providers { name outcome } } } }`, { id })
        return r.json.data.transaction.status === 'CONFIRMED' && r
      },
      30_000,
    )
    const names = json.data.transaction.attempts[0].providers.map((p: any) => `${p.name}:${p.outcome}`).sort()
    expect(names).toEqual(['broken:sent', 'flappy:sent', 'steady:sent'])
  })
})

describe('a provider answering every call with a JSON-RPC error (a broken backend behind its balancer)', () => {
  it('goes DOWN, saying why, and sends and reads leave it out; it is used again once it answers', async () => {
    let broken: FaultProxy | undefined
    let env: TestEnv | undefined
    try {
      const started = await startBesideFaultProxy({ blockTimeSec: 0.2 }, (c) => (c.chains[0].rpc = FAST_RPC), 'broken')
      ;[env, broken] = [started.env, started.proxy]
      await waitFor('broken up', async () => (await providers(env!)).broken.status !== 'DOWN', 10_000, 100)
      // HTTP 200 with an error for every call, its health checks included.
      const methods = ['eth_chainId', 'eth_blockNumber', 'eth_getTransactionByHash', 'eth_getTransactionReceipt', 'eth_sendRawTransaction', 'eth_getTransactionCount']
      broken!.setMode('methodError', { errorMethods: methods, error: { code: -32603, message: 'Internal error' } })
      // Before: HEALTHY for good, no error counted.
      const down = await waitFor('broken DOWN', async () => {
        const h = (await providers(env!)).broken
        return h.status === 'DOWN' && h
      }, 10_000, 100)
      expect(down.lastError).toContain('Internal error')
      const id = await submit(env, { to: RECIPIENT, value: '11' })
      const done = await waitForStatus(env, id, 'CONFIRMED')
      expect(done.attempts[0].providers.map((p: any) => `${p.name}:${p.outcome}`).sort()).toEqual(['anvil:sent', 'broken:provider_error'])
      broken!.setMode('ok')
      await waitFor('broken back', async () => (await providers(env!)).broken.status !== 'DOWN', 10_000, 100)
    } finally {
      await env?.stop()
      await broken?.stop()
    }
  })
})

describe('a provider slow to take sends, well inside its timeout', () => {
  it('does not hold the next batch back: a request signed while it still answers the last one is on chain first', async () => {
    let slow: FaultProxy | undefined
    let env: TestEnv | undefined
    try {
      const started = await startBesideFaultProxy({ blockTimeSec: 0.5 }, (c) => (c.chains[0].rpc = { timeoutMs: 10_000 }), 'slow')
      ;[env, slow] = [started.env, started.proxy]
      slow!.setMode('slow', { slowMethods: ['eth_sendRawTransaction'], slowMs: 6_000 })
      const first = await submit(env, { to: RECIPIENT, value: '21' })
      await waitFor('the first on chain', async () => (await env!.chain.getTransactionCount({ address: SIGNER.address })) === 1, 10_000, 50)
      const second = await submit(env, { to: RECIPIENT, value: '22' })
      // Before: the second waited until "slow" answered the first, 6 s after it was sent.
      await waitFor('the second on chain', async () => (await env!.chain.getTransactionCount({ address: SIGNER.address })) === 2, 4_000, 50)
      // Both providers' answers are recorded all the same ("slow" forwards them once they are mined: nonce too low).
      for (const id of [first, second]) {
        // At least: the recovery sweep may have sent it again meanwhile.
        const t = await waitForStatus(env, id, (t) => t.status === 'CONFIRMED' && new Set(t.attempts[0].providers.map((p: any) => p.name)).size === 2, 20_000)
        expect(t.attempts[0].providers.find((p: any) => p.name === 'anvil').outcome).toBe('sent')
      }
    } finally {
      await env?.stop()
      await slow?.stop()
    }
  }, 60_000)
})

describe('a hanging provider first in the read order', () => {
  it('stalls neither reads nor sends for long: down after its first timeout', async () => {
    let hung: FaultProxy | undefined
    const env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      setup: async (anvil) => {
        hung = await startFaultProxy(anvil.url)
      },
      config: (c, anvil) => {
        c.chains[0].providers = [
          { name: 'hung', url: hung!.url, weight: 5 },
          { name: 'anvil', url: anvil.url },
        ]
        c.chains[0].rpc = { ...FAST_RPC, timeoutMs: 2_000 }
      },
    })
    try {
      hung!.setMode('hang')
      const started = Date.now()
      const ids = await Promise.all(Array.from({ length: 5 }, (_, i) => submit(env, { to: RECIPIENT, value: String(i + 1) })))
      await waitFor(
        'all CONFIRMED',
        async () => {
          const all = await Promise.all(ids.map(async (id) => (await env.graphql(`query($id: ID!) { transaction(id: $id) { status } }`, { id })).json.data.transaction))
          return all.every((t) => t.status === 'CONFIRMED')
        },
        30_000,
      )
      // About one request timeout (2 s here), not one per read or per send.
      expect(Date.now() - started).toBeLessThan(6_000)
      // The transactions went through "anvil" at once; "hung" is down when its first request times out.
      const health = await waitFor('hung DOWN', async () => {
        const h = await providers(env)
        return h.hung.status === 'DOWN' && h
      })
      expect(health.hung.lastError).toBe('timed out')
      expect(health.anvil.errorsLastMinute).toBe(0)
    } finally {
      await env.stop()
      await hung?.stop()
    }
  })
})

describe('a node slow to answer the signer reads (busy with a large block)', () => {
  let env: TestEnv
  let slow: FaultProxy
  beforeAll(async () => {
    env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      setup: async (anvil) => {
        slow = await startFaultProxy(anvil.url)
      },
      config: (c) => {
        c.chains[0].providers = [{ name: 'slow', url: slow.url }]
        // A read may take 4 s without counting as a failure; blockTimeMs 2 s: signer reads are fresh for
        // 1 s and may be served for 5 s while a newer one is on its way.
        c.chains[0].rpc = { timeoutMs: 10_000 }
        c.chains[0].blockTimeMs = 2_000
      },
    })
  })
  afterAll(async () => {
    await env?.stop()
    await slow?.stop()
  })

  /** Submits one request; resolves with how long it took to reach the node (its hash known there), and its id. */
  async function timeToNode(value: string): Promise<{ id: string; ms: number }> {
    const started = Date.now()
    const id = await submit(env, { to: RECIPIENT, value, gasLimit: '21000' })
    const hash = await waitFor(
      `${id} sent`,
      async () => {
        const t = (await env.graphql(`query($id: ID!) { transaction(id: $id) { attempts { hash providers { outcome } } } }`, { id })).json.data.transaction
        return t.attempts.find((a: any) => a.providers.some((p: any) => p.outcome === 'sent'))?.hash as `0x${string}` | undefined
      },
      30_000,
      25,
    )
    const ms = Date.now() - started
    // What a user would check: the node itself has it (asked directly, not through the slow proxy).
    expect(await env.chain.getTransaction({ hash })).toMatchObject({ hash })
    return { id, ms }
  }

  it('signs with the last reads while newer ones are slow, and waits for them once the last ones are too old', async () => {
    const first = await timeToNode('1')
    slow.setMode('slow', { slowMs: 3_000 })
    // Past the 1 s freshness, within the 5 s the last read may still serve.
    await sleep(1_300)
    const refreshStarted = Date.now()
    const second = await timeToNode('2')
    expect(second.ms).toBeLessThan(2_000)
    slow.setMode('ok')
    await Promise.all([first, second].map((t) => waitForStatus(env, t.id, 'CONFIRMED')))

    // The refresh the second request started lands 3 s later; then nothing is signed for over 5 s, so the
    // last read is too old to sign with and the next request waits for a new one.
    slow.setMode('slow', { slowMs: 3_000 })
    // (From when the second request went in: its refresh started when it was signed, some time after; 2 s to spare.)
    await sleep(refreshStarted + 3_000 + 7_500 - Date.now())
    const third = await timeToNode('3')
    expect(third.ms).toBeGreaterThanOrEqual(2_800)
    slow.setMode('ok')
    await waitForStatus(env, third.id, 'CONFIRMED')
  }, 60_000)
})

describe('start-up checks each provider', () => {
  it('refuses a provider that answers with another chain id, naming it', async () => {
    let liar: FaultProxy | undefined
    let honest: FaultProxy | undefined
    const err = await startTestEnv({
      setup: async (anvil) => {
        honest = await startFaultProxy(anvil.url)
        liar = await startFaultProxy(anvil.url, 'wrongChain', { wrongChainId: 999 })
      },
      config: (c) => {
        c.chains[0].providers = [
          { name: 'honest', url: honest!.url, weight: 5 },
          { name: 'liar', url: liar!.url },
        ]
      },
    }).then(
      () => null,
      (e: Error) => e,
    )
    await liar?.stop()
    await honest?.stop()
    expect(err?.message).toBe(
      'chain 31337 (anvil): provider "liar" serves chain 999, not 31337. Fix its url or remove it from chains[].providers.',
    )
  })

  it('starts with an unreachable provider as DOWN, and uses it once it answers with the right chain id', async () => {
    let later: FaultProxy | undefined
    const env = await startTestEnv({
      setup: async (anvil) => {
        later = await startFaultProxy(anvil.url, 'close')
      },
      config: (c, anvil) => {
        c.chains[0].providers = [
          { name: 'anvil', url: anvil.url },
          { name: 'later', url: later!.url },
        ]
        c.chains[0].rpc = FAST_RPC
      },
    })
    try {
      expect((await providers(env)).later.status).toBe('DOWN')
      later!.setMode('wrongChain', { wrongChainId: 5 })
      await waitFor('wrong chain seen', async () => (await providers(env)).later.lastError === 'serves chain 5, not 31337', 10_000, 100)
      expect((await providers(env)).later.status).toBe('DOWN')
      later!.setMode('ok')
      await waitFor('later up', async () => (await providers(env)).later.status !== 'DOWN', 10_000, 100)
    } finally {
      await env.stop()
      await later?.stop()
    }
  })
})

describe('a lagging provider', () => {
  it('is DEGRADED with its lag shown, and reads skip it', async () => {
    let behind: FaultProxy | undefined
    const env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      setup: async (anvil) => {
        behind = await startFaultProxy(anvil.url)
      },
      config: (c, anvil) => {
        // First in the read order: if reads used it, receipts of new blocks would be "not found" for 20 blocks.
        c.chains[0].providers = [
          { name: 'behind', url: behind!.url, weight: 5 },
          { name: 'anvil', url: anvil.url },
        ]
        c.chains[0].rpc = { ...FAST_RPC, maxLagBlocks: 5 }
      },
    })
    try {
      await sleep(1_000)
      behind!.setMode('lag', { lagBlocks: 20 })
      const health = await waitFor('behind DEGRADED', async () => {
        const h = await providers(env)
        return h.behind.status === 'DEGRADED' && h
      })
      // Heads are read a few milliseconds apart, on a chain mining every 200 ms: about 20.
      expect(health.behind.headLag).toBeGreaterThan(5)
      expect(health.behind.headLag).toBeLessThanOrEqual(25)
      expect(health.behind.errorsLastMinute).toBe(0)
      const id = await submit(env, { to: RECIPIENT, value: '9' })
      const started = Date.now()
      await waitFor(
        'CONFIRMED',
        async () => (await env.graphql(`query($id: ID!) { transaction(id: $id) { status } }`, { id })).json.data.transaction.status === 'CONFIRMED',
        20_000,
      )
      expect(Date.now() - started).toBeLessThan(3_000)
    } finally {
      await env.stop()
      await behind?.stop()
    }
  })
})

describe('provider URLs with credentials', () => {
  const PASSWORD = 'pr0vider-Passw0rd'
  const API_KEY = 'Key0123456789abcdefXYZ'
  const OTHER_PASSWORD = 'an0ther-Passw0rd'
  const OTHER_KEY = 'Key2abcdefghijklmnopQRS'
  const withSecrets = (p: FaultProxy, password = PASSWORD, key = API_KEY) => `http://alice:${password}@127.0.0.1:${p.port}/v2/${key}`
  const leaks = (text: string) => [PASSWORD, API_KEY, OTHER_PASSWORD, OTHER_KEY].filter((s) => text.includes(s))

  it('never appear unredacted in API answers or logs, whatever fails', async () => {
    const { log, lines } = capturedLogger()
    let secret: FaultProxy | undefined
    let other: FaultProxy | undefined
    const env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      log,
      setup: async (anvil) => {
        secret = await startFaultProxy(anvil.url)
        other = await startFaultProxy(anvil.url)
      },
      config: (c) => {
        // Both URLs hold credentials: whichever provider's error reaches a log or an answer has some to leak.
        c.chains[0].providers = [
          { name: 'other', url: withSecrets(other!, OTHER_PASSWORD, OTHER_KEY), weight: 2 },
          { name: 'secret', url: withSecrets(secret!) },
        ]
        // Down only after a timeout: broadcasts go on reaching "secret", so its failures are on the attempts.
        c.chains[0].rpc = { ...FAST_RPC, downAfterFailures: 1_000 }
      },
    })
    try {
      const ids: string[] = []
      const round = async (before: () => void) => {
        before()
        ids.push(...(await Promise.all(Array.from({ length: 5 }, (_, i) => submit(env, { to: RECIPIENT, value: String(i + 1) })))))
        await sleep(1_500)
      }
      await round(() => secret!.setMode('close'))
      await round(() => secret!.setMode('http500'))
      // Everything failing for a while (neither is down: no timeouts yet): reads fail too, and the stages log why.
      await round(() => other!.setMode('http500'))
      other!.setMode('ok')
      // A timeout takes a provider down at once; it is then skipped, and the attempts say why.
      await round(() => secret!.setMode('hang'))
      await waitFor(
        'all CONFIRMED',
        async () => {
          return (await listAll(env)).filter((n) => n.status === 'CONFIRMED').length === ids.length
        },
        60_000,
      )

      const answers = [
        JSON.stringify(await listAll(env)),
        JSON.stringify((await env.graphql(PROVIDERS_QUERY)).json),
        ...(await Promise.all(ids.map(async (id) => JSON.stringify((await env.get(`/transactions/${id}`)).json)))),
      ].join('\n')
      // The failures are there, redacted.
      expect(answers).toContain('"name":"secret","outcome":"provider_error"')
      expect(leaks(answers)).toEqual([])
      const logText = lines.join('')
      expect(logText).toMatch(/failed/)
      // Provider errors were logged, with their URLs redacted.
      expect(logText).toMatch(/http:\/\/\*\*\*@127\.0\.0\.1:\d+\/v2\/\*\*\*/)
      expect(leaks(logText)).toEqual([])
    } finally {
      await env.stop()
      await secret?.stop()
      await other?.stop()
    }
  }, 120_000)

  it('never appear in start-up errors, nor in the error logged for a chain that cannot be reached', async () => {
    const anvil = await startAnvil()
    const wrong = await startFaultProxy(anvil.url, 'wrongChain')
    const dead = await startFaultProxy(anvil.url, 'close')
    try {
      const wrongChain = await startTestEnv({ config: (c) => (c.chains[0].providers = [{ name: 'wrong', url: withSecrets(wrong) }]) }).catch((e: Error) => e)
      expect(String((wrongChain as Error).message)).toContain('provider "wrong" serves chain 999')
      // Unreachable at start-up: the service starts (its requests wait in Postgres) and says so in its log.
      const { log, lines } = capturedLogger('info')
      const unreachable = await startTestEnv({ log, config: (c) => (c.chains[0].providers = [{ name: 'dead', url: withSecrets(dead) }]) })
      await unreachable.stop()
      const logText = lines.join('')
      expect(logText).toMatch(/chain 31337 \(anvil\): cannot reach any provider at start-up/)
      expect(leaks(`${(wrongChain as Error).stack} ${logText}`)).toEqual([])
    } finally {
      await wrong.stop()
      await dead.stop()
      await anvil.stop()
    }
  })
})

describe('logs during a provider outage', () => {
  it('a drain failing the same way for every accepted request is logged once, not once per request; and the provider going down is said', async () => {
    const { log, lines } = capturedLogger('info')
    let proxy: FaultProxy | undefined
    const env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      log,
      setup: async (anvil) => {
        proxy = await startFaultProxy(anvil.url)
      },
      config: (c) => {
        c.chains[0].providers = [{ name: 'only', url: proxy!.url }]
        c.chains[0].rpc = FAST_RPC
      },
    })
    try {
      proxy!.setMode('close')
      for (let i = 0; i < 20; i++) {
        await submit(env, { to: RECIPIENT, value: String(700 + i) })
        await sleep(400)
      }
      const msgs = lines.map((l) => JSON.parse(l) as { msg: string; provider?: string })
      // Before: a 2 KB error with a stack per drain (each accept and each sweep tick starts one; 11 in these 8 s), and a
      // warning per reconcile pass (6).
      expect(msgs.filter((m) => m.msg.startsWith('sign drain failed')).length).toBeLessThanOrEqual(2)
      expect(msgs.filter((m) => m.msg.startsWith('reconciling a signer failed')).length).toBeLessThanOrEqual(2)
      expect(msgs.filter((m) => /^provider only of chain 31337 is down/.test(m.msg))).toHaveLength(1)
      proxy!.setMode('ok')
      await waitFor('back, and said so', async () => lines.some((l) => /answers again/.test(JSON.parse(l).msg)), 15_000)
    } finally {
      await env.stop()
      await proxy?.stop()
    }
  }, 60_000)
})
