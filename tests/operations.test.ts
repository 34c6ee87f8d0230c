import { connect } from 'node:net'
import postgres from 'postgres'
import { createPublicClient, custom, type PublicClient } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChainClients } from '../src/chain/createChainClients.ts'
import { createLogger } from '../src/common/logger.ts'
import { createReadiness } from '../src/health/readiness.ts'
import { pruneFinalTransactions } from '../src/prune/pruneFinal.ts'
import { chainControl, submit, waitForStatus } from './helpers/chainControl.ts'
import { RECIPIENT, SIGNER, startTestEnv, testConfig, waitFor, type TestEnv } from './helpers/testService.ts'

type Sample = { name: string; labels: Record<string, string>; value: number }

/** A strict reader of the Prometheus text format (0.0.4): throws on any line it does not understand. */
function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = []
  const typed = new Set<string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line)
    if (meta) {
      if (meta[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(meta[3])
        typed.add(meta[2]!)
      }
      continue
    }
    // prom-client writes NaN as "Nan" (an event-loop lag with no sample yet, when scraped twice within its window); Prometheus reads either.
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.eE+-]+|NaN|Nan|\+Inf|-Inf)$/.exec(line)
    if (!m) throw new Error(`not Prometheus text: ${line}`)
    const labels: Record<string, string> = {}
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy
      let lm: RegExpExecArray | null
      let consumed = 0
      while ((lm = re.exec(m[2]))) {
        labels[lm[1]!] = lm[2]!
        consumed = re.lastIndex
      }
      if (consumed !== m[2].length) throw new Error(`bad labels: ${line}`)
    }
    const base = m[1]!.replace(/_(bucket|sum|count)$/, '')
    if (!typed.has(m[1]!) && !typed.has(base)) throw new Error(`sample without TYPE: ${line}`)
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return samples
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0)

describe('metrics, readiness and retention', () => {
  let env: TestEnv
  let sql: postgres.Sql
  const scrape = async () => {
    const res = await fetch(`${env.service.url}/metrics`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
    return parsePrometheus(await res.text())
  }
  beforeAll(async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.2 } })
    sql = postgres(env.databaseUrl, { max: 2, onnotice: () => {} })
  })
  afterAll(async () => {
    await sql?.end()
    await env?.stop()
  })

  it('/metrics is Prometheus text; the accepted counter moves by exactly N after N accepted requests', async () => {
    const before = await scrape()
    const created = { name: 'txb_transactions_accepted_total', labels: { chain_id: '31337', outcome: 'created' } }
    const N = 7
    const ids: string[] = []
    for (let i = 0; i < N; i++) {
      if (i % 2 === 0) {
        const res = await env.post('/broadcast_transaction', { to: RECIPIENT, value: String(i + 1) })
        expect(res.status).toBe(200)
        ids.push(res.json.transactionId)
      } else {
        const res = await env.graphql(`mutation($i: BroadcastTransactionInput!) { broadcastTransaction(input: $i) { id } }`, { i: { to: RECIPIENT, value: String(i + 1) } })
        ids.push(res.json.data.broadcastTransaction.id)
      }
    }
    // Refused requests and idempotent replays are not "created".
    expect((await env.post('/broadcast_transaction', { to: '0x12' })).status).toBe(400)
    await env.post('/broadcast_transaction', { to: RECIPIENT, idempotencyKey: 'k1' })
    await env.post('/broadcast_transaction', { to: RECIPIENT, idempotencyKey: 'k1' })
    const gqlBad = await env.graphql(`mutation($i: BroadcastTransactionInput!) { broadcastTransaction(input: $i) { id } }`, { i: { to: RECIPIENT, value: '-1' } })
    expect(gqlBad.json.errors[0].extensions.code).toBe('VALUE_OUT_OF_RANGE')
    await fetch(`${env.service.url}/broadcast_transaction`, { method: 'POST', body: '{}' })
    const after = await scrape()
    expect(value(after, created.name, created.labels) - value(before, created.name, created.labels)).toBe(N + 1)
    const dup = { chain_id: '31337', outcome: 'duplicate' }
    expect(value(after, created.name, dup) - value(before, created.name, dup)).toBe(1)
    const rejected = (s: Sample[], api: string, reason: string) => value(s, 'txb_requests_rejected_total', { api, reason })
    expect(rejected(after, 'rest', 'INVALID_ADDRESS') - rejected(before, 'rest', 'INVALID_ADDRESS')).toBe(1)
    expect(rejected(after, 'rest', 'UNAUTHENTICATED') - rejected(before, 'rest', 'UNAUTHENTICATED')).toBe(1)
    expect(rejected(after, 'graphql', 'VALUE_OUT_OF_RANGE') - rejected(before, 'graphql', 'VALUE_OUT_OF_RANGE')).toBe(1)

    // The pipeline's metrics move as the transactions confirm.
    for (const id of ids) await waitForStatus(env, id, 'CONFIRMED')
    const done = await scrape()
    expect(value(done, 'txb_attempts_total', { kind: 'first' })).toBeGreaterThanOrEqual(N)
    expect(value(done, 'txb_provider_sends_total', { provider: 'anvil', outcome: 'sent' })).toBeGreaterThanOrEqual(N)
    for (const stage of ['accept', 'sign', 'first_broadcast', 'inclusion', 'confirmation'])
      expect(value(done, 'txb_stage_duration_seconds_count', { stage }), stage).toBeGreaterThanOrEqual(N)
    const inflight = done.filter((s) => s.name === 'txb_transactions')
    expect(inflight.map((s) => s.labels.status).sort()).toEqual(['INCLUDED', 'PENDING', 'QUEUED'])
    // Every status, final ones too, from the trigger-kept counters: what a FAILED-rate alert reads.
    // (Read on scrape, reused for 2 s.)
    const stored = await waitFor('CONFIRMED counted', async () => {
      const s = await scrape()
      return value(s, 'txb_transactions_stored', { chain_id: '31337', status: 'CONFIRMED' }) >= N && s
    }, 10_000)
    expect(stored.filter((s) => s.name === 'txb_transactions_stored').map((s) => s.labels.status).sort()).toEqual(
      ['CANCELLED', 'CONFIRMED', 'FAILED', 'INCLUDED', 'PENDING', 'QUEUED', 'REVERTED'],
    )
    expect(value(done, 'txb_process_resident_memory_bytes')).toBeGreaterThan(0)
    // The chain's head and how far the watcher has read it: a halted chain or a stopped watcher shows as these
    // not rising (nothing else said so). Both rise with the blocks, and the cursor is at most the head.
    const heights = async () => {
      const s = await scrape()
      return { head: value(s, 'txb_chain_head_block', { chain_id: '31337' }), cursor: value(s, 'txb_watch_cursor_block', { chain_id: '31337' }) }
    }
    const first = await heights()
    expect(first.head).toBeGreaterThan(0)
    expect(first.cursor).toBeGreaterThan(0)
    const later = await waitFor('the head and the cursor rising', async () => {
      const h = await heights()
      return h.head > first.head && h.cursor > first.cursor && h
    }, 15_000, 500)
    expect(later.cursor).toBeLessThanOrEqual(later.head + 1)
  })

  it('keeps an idle keep-alive connection open past 60 s load balancers: the next request on it is answered', async () => {
    // Node's default closes an idle connection after 5 s; a load balancer (AWS ALB: 60 s idle) or a keep-alive
    // client that reused it at that moment got a reset (a 502 at the ALB) for a request the service never read.
    const { port } = new URL(env.service.url)
    const socket = connect(Number(port), '127.0.0.1')
    let received = ''
    let closed = false
    socket.on('data', (chunk) => (received += chunk.toString()))
    socket.on('close', () => (closed = true))
    socket.on('error', () => {})
    const ask = () => socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`)
    const answers = () => received.split('HTTP/1.1 200 OK').length - 1
    ask()
    await waitFor('the first answer', async () => answers() === 1, 5_000)
    expect(received).toMatch(/keep-alive: timeout=(\d+)/i)
    expect(Number(/keep-alive: timeout=(\d+)/i.exec(received)![1])).toBeGreaterThan(60)
    await new Promise((resolve) => setTimeout(resolve, 6_000))
    expect(closed).toBe(false)
    ask()
    await waitFor('the answer on the reused connection', async () => answers() === 2, 5_000)
    socket.destroy()
  }, 20_000)

  it('/metrics answers within its database reads\' 2 s while a table it reads is locked (it waited for the lock)', async () => {
    // A migration, or someone at psql, holding signer_nonces: the scrape waited for as long (7 s seen), past
    // Prometheus's timeout, and the whole scrape was lost, provider status included.
    const holder = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    let release!: () => void
    const released = new Promise<void>((r) => (release = r))
    const held = holder.begin(async (tx) => {
      await tx`LOCK TABLE signer_nonces IN ACCESS EXCLUSIVE MODE`
      await released
    })
    try {
      await new Promise((r) => setTimeout(r, 2_500)) // past the gauges' 2 s cache
      const started = Date.now()
      const res = await fetch(`${env.service.url}/metrics`)
      expect(res.status).toBe(200)
      const text = await res.text()
      expect(Date.now() - started).toBeLessThan(4_000)
      expect(text).toContain('txb_provider_status')
    } finally {
      release()
      await held
      await holder.end()
    }
  }, 20_000)

  it('/readyz: 200 with every check passing', async () => {
    let res: Response | null = null
    for (let i = 0; i < 50; i++) {
      res = await fetch(`${env.service.url}/readyz`)
      if (res.status === 200) break
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(res!.status).toBe(200)
    const body = (await res!.json()) as any
    expect(body.status).toBe('ready')
    expect(body.database.ok).toBe(true)
    expect(body.migrations).toMatchObject({ ok: true })
    expect(body.migrations.applied).toBe(body.migrations.expected)
    expect(body.chains).toEqual([expect.objectContaining({ chainId: 31337, ok: true })])
    expect((await fetch(`${env.service.url}/healthz`)).status).toBe(200)
  })

  it('readiness says what failed: an unreachable chain (without its URL secret), an unreachable database, a read-only one', async () => {
    const secretUrl = 'https://user:hunter2hunter2@rpc.example.invalid/v2/abcdefghijklmnopqrstuvwxyz123456'
    const config = testConfig(secretUrl).chains[0]!
    const read = createPublicClient({
      transport: custom({
        request: async () => {
          throw new Error(`request to ${secretUrl} failed`)
        },
      }),
    }) as PublicClient
    const chain = { chainId: config.chainId, config, read, providers: [] } as unknown as ChainClients
    const log = createLogger({ level: 'silent', pretty: false })
    const readiness = createReadiness(sql, [chain], log)
    await new Promise((r) => setTimeout(r, 200))
    const report = await readiness.check()
    readiness.stop()
    // Reported, but not deciding: the API still takes (and stores) the chain's requests.
    expect(report.ready).toBe(true)
    expect(report.checks.database.ok).toBe(true)
    expect(report.checks.chains[0]).toMatchObject({ chainId: 31337, ok: false })
    expect(report.checks.chains[0]!.error).toMatch(/eth_blockNumber/)
    expect(JSON.stringify(report)).not.toMatch(/hunter2|abcdefghijklmnop/)

    const dead = postgres('postgres://postgres@127.0.0.1:1/none', { max: 1, connect_timeout: 1 })
    const down = createReadiness(dead, [], log)
    const r2 = await down.check()
    down.stop()
    await dead.end({ timeout: 0 }).catch(() => {})
    expect(r2.ready).toBe(false)
    expect(r2.checks.database.ok).toBe(false)
    expect(r2.checks.migrations.ok).toBe(false)

    // A database that answers but takes no writes (a replica, a primary demoted by a failover). Before: ready.
    const readOnly = postgres(env.databaseUrl, { max: 1, onnotice: () => {}, connection: { default_transaction_read_only: true } })
    const ro = createReadiness(readOnly, [], log)
    const r3 = await ro.check()
    ro.stop()
    await readOnly.end({ timeout: 0 }).catch(() => {})
    expect(r3.ready).toBe(false)
    expect(r3.checks.database).toEqual({ ok: false, error: expect.stringMatching(/^the database is read-only/) })
  })

  it('retention deletes final transactions past retentionDays, in batches, with their attempts and events; nothing else', async () => {
    const old = 2_500
    await sql`
      INSERT INTO transactions (chain_id, signer, "to", status, error_code, final_at, created_at, api_key_name)
      SELECT 31337, ${RECIPIENT}, ${RECIPIENT}, 'FAILED', 'EXPIRED', now() - interval '40 days', now() - interval '40 days', 'prune-test'
      FROM generate_series(1, ${old})`
    await sql`
      INSERT INTO transaction_events (transaction_id, from_status, to_status)
      SELECT id, 'QUEUED', 'FAILED' FROM transactions WHERE api_key_name = 'prune-test'`
    await sql`
      INSERT INTO attempts (transaction_id, execution, chain_id, signer, nonce, hash, raw, gas_limit, status)
      SELECT id, 1, 31337, ${RECIPIENT}, seq, '0xprune' || seq, '0x00', 21000, 'REJECTED' FROM transactions WHERE api_key_name = 'prune-test'`
    await sql`
      INSERT INTO transactions (chain_id, signer, "to", status, error_code, final_at, api_key_name)
      SELECT 31337, ${RECIPIENT}, ${RECIPIENT}, 'FAILED', 'EXPIRED', now() - interval '10 days', 'prune-test-recent' FROM generate_series(1, 5)`
    const before = Number((await sql`SELECT count(*)::int AS n FROM transactions`)[0]!.n)
    const deleted = await pruneFinalTransactions(sql, { retentionDays: 30, batchSize: 1_000 })
    expect(deleted).toBe(old)
    expect(Number((await sql`SELECT count(*)::int AS n FROM transactions`)[0]!.n)).toBe(before - old)
    expect((await sql`SELECT count(*)::int AS n FROM transactions WHERE api_key_name = 'prune-test-recent'`)[0]!.n).toBe(5)
    expect((await sql`SELECT count(*)::int AS n FROM transaction_events e LEFT JOIN transactions t ON t.id = e.transaction_id WHERE t.id IS NULL`)[0]!.n).toBe(0)
    expect((await sql`SELECT count(*)::int AS n FROM attempts a LEFT JOIN transactions t ON t.id = a.transaction_id WHERE t.id IS NULL`)[0]!.n).toBe(0)
    // The service's own transactions (recent, confirmed) are still there.
    expect((await sql`SELECT count(*)::int AS n FROM transactions WHERE status = 'CONFIRMED'`)[0]!.n).toBeGreaterThan(0)
    expect(await pruneFinalTransactions(sql, { retentionDays: 30 })).toBe(0)
  })

  it('a request waiting for a reason (a signer that cannot pay) shows in txb_transactions_waiting, and leaves it once it goes on', async () => {
    // Pinned to its signer, with more value than it has: it waits INSUFFICIENT_FUNDS (up to an hour), and no
    // metric said so (the short-of-funds gauge is for what moves off a signer).
    const balance = await env.chain.getBalance({ address: SIGNER.address })
    const id = await submit(env, { to: RECIPIENT, value: (balance + 10n ** 18n).toString(), from: SIGNER.address })
    await waitForStatus(env, id, (t) => t.status === 'QUEUED' && t.error?.code === 'INSUFFICIENT_FUNDS')
    const waiting = await waitFor('the waiting gauge', async () => {
      const v = value(await scrape(), 'txb_transactions_waiting', { chain_id: '31337', status: 'QUEUED', reason: 'INSUFFICIENT_FUNDS' })
      return v >= 1 && v
    }, 10_000)
    expect(waiting).toBe(1)
    await chainControl(env).setBalance(SIGNER.address, balance + 10n * 10n ** 18n)
    await waitForStatus(env, id, 'CONFIRMED', 30_000)
    await waitFor('gone from the waiting gauge', async () => value(await scrape(), 'txb_transactions_waiting', { reason: 'INSUFFICIENT_FUNDS' }) === 0, 10_000)
  })

  it('txb_oldest_unfinished_seconds counts from when a row entered its status: a failure retried 20 days on is seconds QUEUED', async () => {
    // Pinned to a signer that cannot pay for it, it stays QUEUED (INSUFFICIENT_FUNDS) after the retry.
    const balance = await env.chain.getBalance({ address: SIGNER.address })
    const id = await submit(env, { to: RECIPIENT, value: (balance + 10n ** 18n).toString(), from: SIGNER.address })
    await waitForStatus(env, id, (t) => t.status === 'QUEUED' && t.error?.code === 'INSUFFICIENT_FUNDS')
    const oldestQueued = async () => value(await scrape(), 'txb_oldest_unfinished_seconds', { chain_id: '31337', status: 'QUEUED' })
    // Accepted 20 days ago and never moved: QUEUED for 20 days, as before.
    await sql`UPDATE transactions SET created_at = now() - interval '20 days' WHERE id = ${id}`
    await waitFor('20 days QUEUED', async () => (await oldestQueued()) > 19 * 86_400, 10_000)
    // It failed then (as its patience would fail it), and an admin retries it today.
    await sql`UPDATE transactions SET status = 'FAILED', final_at = now(), error_code = 'INSUFFICIENT_FUNDS' WHERE id = ${id}`
    const retried = await env.graphql(`mutation($id: ID!) { retryTransaction(id: $id) { status execution } }`, { id })
    expect(retried.json.data.retryTransaction).toEqual({ status: 'QUEUED', execution: 2 })
    const age = await waitFor('the gauge to read the retry', async () => {
      const a = await oldestQueued()
      return a < 86_400 && a
    }, 10_000)
    expect(age).toBeLessThan(60)
    expect((await sql`SELECT status_at > now() - interval '1 minute' AS fresh FROM transactions WHERE id = ${id}`)[0]!.fresh).toBe(true)
    await chainControl(env).setBalance(SIGNER.address, balance + 10n * 10n ** 18n)
    await waitForStatus(env, id, 'CONFIRMED', 30_000)
  })
})

describe('the signer balance gauge', () => {
  let env: TestEnv
  afterAll(async () => {
    await env?.stop()
  })

  it("txb_signer_balance_wei shows each configured signer's balance as the chain has it, and follows it", async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.5 } })
    const balanceOf = async () => {
      const s = parsePrometheus(await (await fetch(`${env.service.url}/metrics`)).text())
      return s.find((x) => x.name === 'txb_signer_balance_wei' && x.labels.chain_id === '31337' && x.labels.signer === SIGNER.address)?.value
    }
    expect(await balanceOf()).toBe(Number(await env.chain.getBalance({ address: SIGNER.address })))
    // Read again after its 30 s: an operator's alert sees the signer drained.
    await chainControl(env).setBalance(SIGNER.address, 5n * 10n ** 17n)
    await waitFor('the gauge at 0.5 coin', async () => (await balanceOf()) === 5e17, 40_000, 1_000)
  }, 60_000)
})

describe('the chain head gauge', () => {
  let env: TestEnv
  beforeAll(async () => {
    // The periodic provider check (rpc.checkIntervalMs) runs once a minute here: the head must not wait for it.
    env = await startTestEnv({ anvil: { blockTimeSec: 0.5 }, config: (c) => (c.chains[0].rpc = { checkIntervalMs: 60_000 }) })
  })
  afterAll(async () => {
    await env?.stop()
  })

  it('txb_chain_head_block follows the blocks the watcher reads, and is never below its cursor', async () => {
    const heights = async () => {
      const s = parsePrometheus(await (await fetch(`${env.service.url}/metrics`)).text())
      const at = (name: string) => s.find((x) => x.name === name && x.labels.chain_id === '31337')?.value ?? 0
      return { head: at('txb_chain_head_block'), cursor: at('txb_watch_cursor_block') }
    }
    const first = await waitFor('a head and a cursor', async () => {
      const h = await heights()
      return h.head > 0 && h.cursor > 0 && h
    })
    await new Promise((r) => setTimeout(r, 3_000))
    // Read before the scrape: a slow scrape (its database gauges) must not leave the chain blocks ahead of it.
    const chainHead = Number(await env.chain.getBlockNumber())
    const later = await heights()
    // Six blocks came meanwhile. Before: the gauge stood at the start-up check's head for a minute, below the cursor.
    expect(later.head).toBeGreaterThanOrEqual(first.head + 4)
    expect(later.head).toBeGreaterThanOrEqual(chainHead - 2)
    expect(later.cursor).toBeLessThanOrEqual(later.head)
  })
})
