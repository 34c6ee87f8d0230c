import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TX_STATUSES } from '../src/core/txStatus.ts'
import { migrateDatabase } from '../src/db/migrate.ts'
import { pruneFinalTransactions } from '../src/prune/pruneFinal.ts'
import { foldStatusCounts } from '../src/store/foldStatusCounts.ts'
import { chainControl, REVERTING_CODE, submit, waitForStatus } from './helpers/chainControl.ts'
import { runCli } from './helpers/cli.ts'
import { createTestDatabase, migrateUpTo } from './helpers/database.ts'
import { RECIPIENT, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

const TARGET = '0x00000000000000000000000000000000000c0de0'

/** What the dashboard shows (transactionCounts), as status -> count. */
async function apiCounts(env: TestEnv, args = ''): Promise<Record<string, number>> {
  const res = await env.graphql(`{ transactionCounts${args} { status count } }`)
  if (res.json.errors) throw new Error(JSON.stringify(res.json.errors))
  return Object.fromEntries(res.json.data.transactionCounts.map((c: any) => [c.status, c.count]))
}

/** The truth: every row of the transactions table, counted. */
async function tableCounts(sql: postgres.Sql, where = sql``): Promise<Record<string, number>> {
  const rows = await sql<{ status: string; n: number }[]>`SELECT status, count(*)::int AS n FROM transactions WHERE true ${where} GROUP BY status`
  const by = new Map(rows.map((r) => [r.status, r.n]))
  return Object.fromEntries(TX_STATUSES.map((s) => [s, by.get(s) ?? 0]))
}

describe('transactionCounts without counting the transactions table', () => {
  let env: TestEnv
  let sql: postgres.Sql
  beforeAll(async () => {
    env = await startTestEnv({ anvil: { blockTimeSec: 0.2 } })
    sql = postgres(env.databaseUrl, { max: 2, onnotice: () => {} })
  }, 60_000)
  afterAll(async () => {
    await sql?.end()
    await env?.stop()
  })

  it('match the table through accept, confirm, fail, revert, retry, cancel and pruning, before and after folding', async () => {
    const anvil = chainControl(env)
    await anvil.setCode(TARGET, REVERTING_CODE)
    const ok = await Promise.all(Array.from({ length: 20 }, (_, i) => submit(env, { to: RECIPIENT, value: String(i + 1) })))
    const failed = await submit(env, { to: TARGET, data: '0xabcdef01' })
    const reverted = await submit(env, { to: TARGET, data: '0xabcdef02', gasLimit: '100000' })
    await Promise.all(ok.map((id) => waitForStatus(env, id, 'CONFIRMED')))
    await waitForStatus(env, failed, 'FAILED')
    await waitForStatus(env, reverted, 'REVERTED')
    // A retry moves a final row back into the lifecycle; it fails again (the target still reverts).
    const retry = await env.graphql(`mutation($id: ID!) { retryTransaction(id: $id) { status } }`, { id: failed })
    expect(retry.json.errors).toBeUndefined()
    await waitForStatus(env, failed, 'FAILED')
    // A cancel right after the accept: QUEUED ones fail at once, PENDING ones are replaced (CANCELLED or CONFIRMED).
    const more = await Promise.all([1, 2, 3].map((i) => submit(env, { to: RECIPIENT, value: String(500 + i) })))
    const cancel = await env.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { status } }`, { id: more[0] })
    // Refused only when a block made it final first (0.2 s blocks, one confirmation): the counts hold either way.
    if (cancel.json.errors) expect(cancel.json.errors[0].extensions.code).toBe('INVALID_STATE')
    // Compared once nothing moves any more (the two reads are not one snapshot).
    await waitFor('all final', async () => {
      const c = await tableCounts(sql)
      return c.QUEUED! + c.PENDING! + c.INCLUDED! === 0
    })

    expect(await apiCounts(env)).toEqual(await tableCounts(sql))
    expect(await apiCounts(env, `(chainId: 31337)`)).toEqual(await tableCounts(sql, sql`AND chain_id = 31337`))
    // The counter of entries: every submission entered QUEUED (and the retry once more); the failed one entered
    // FAILED twice, though one row is FAILED for it.
    const entered = async () => {
      const text = await (await fetch(`${env.service.url}/metrics`)).text()
      const of = (status: string) => Number(new RegExp(`^txb_transactions_entered_total\\{chain_id="31337",status="${status}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN)
      return { QUEUED: of('QUEUED'), FAILED: of('FAILED'), CONFIRMED: of('CONFIRMED'), REVERTED: of('REVERTED') }
    }
    const settled = await tableCounts(sql)
    const firstEntered = await waitFor('the entries counted', async () => {
      const e = await entered()
      return e.QUEUED === 20 + 2 + 3 + 1 && e
    }, 10_000)
    expect(firstEntered.FAILED).toBe(settled.FAILED! + 1)
    expect(firstEntered.CONFIRMED).toBe(settled.CONFIRMED)
    expect(firstEntered.REVERTED).toBe(1)

    // The counts come from the counters, not from the table: a change to a counter shows, the table unchanged.
    await foldStatusCounts(sql)
    await sql`UPDATE status_counts SET count = count + 1000 WHERE status = 'CONFIRMED' AND chain_id = 31337`
    expect((await apiCounts(env)).CONFIRMED).toBe((await tableCounts(sql)).CONFIRMED! + 1000)
    await sql`UPDATE status_counts SET count = count - 1000 WHERE status = 'CONFIRMED' AND chain_id = 31337`

    // Folded: the deltas are gone and the counts still match.
    await foldStatusCounts(sql)
    expect(await apiCounts(env)).toEqual(await tableCounts(sql))

    // Pruned rows leave the counts too.
    const beforePrune = await tableCounts(sql)
    await sql`UPDATE transactions SET final_at = now() - interval '40 days' WHERE id = ANY(${ok.slice(0, 5)}::uuid[])`
    expect(await pruneFinalTransactions(sql, { retentionDays: 30 })).toBe(5)
    const afterPrune = await tableCounts(sql)
    expect(afterPrune.CONFIRMED).toBe(beforePrune.CONFIRMED! - 5)
    expect(await apiCounts(env)).toEqual(afterPrune)
    // Retention lowers the stored count, never the counter of entries (an alert on its increase() stays quiet).
    await new Promise((r) => setTimeout(r, 2_500)) // past the metrics' 2 s cache
    expect((await entered()).CONFIRMED).toBe(firstEntered.CONFIRMED)
    // Every count came from status_counts and its deltas: the service's own fold loop empties the deltas.
    await waitFor('deltas folded', async () => (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM status_count_deltas`)[0]!.n === 0, 10_000)
    expect(await apiCounts(env)).toEqual(afterPrune)

    // Counters knocked out of true (triggers bypassed): `tx-broadcaster counts rebuild` recounts them.
    await sql`UPDATE status_counts SET count = count + 7`
    await sql`INSERT INTO status_count_deltas (chain_id, signer, status, delta) VALUES (31337, 'nobody', 'FAILED', 3)`
    expect(await apiCounts(env)).not.toEqual(afterPrune)
    const rebuilt = await runCli(['counts', 'rebuild'], { DATABASE_URL: env.databaseUrl })
    expect(rebuilt.stderr).toBe('')
    expect(rebuilt.code).toBe(0)
    const total = Object.values(afterPrune).reduce((a, b) => a + b, 0)
    expect(rebuilt.stdout).toContain(`counted ${total} transactions`)
    expect(await apiCounts(env)).toEqual(afterPrune)
    // A rebuild recounts, never lowers the counter of entries (it kept them, and the ones not folded yet).
    await new Promise((r) => setTimeout(r, 2_500))
    const afterRebuild = await entered()
    expect([afterRebuild.FAILED, afterRebuild.CONFIRMED]).toEqual([firstEntered.FAILED, firstEntered.CONFIRMED])

    // Behind a write that holds the table, it gives up after 2 s and says so (before: it waited in line, and every new
    // request queued behind it, for as long as that write lasted).
    const holder = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    let release!: () => void
    const holding = holder.begin(async (tx) => {
      await tx`LOCK TABLE transactions IN ROW EXCLUSIVE MODE`
      await new Promise<void>((r) => (release = r))
    })
    try {
      await waitFor('the write holding the table', async () => release !== undefined)
      const blocked = await runCli(['counts', 'rebuild'], { DATABASE_URL: env.databaseUrl })
      expect(blocked.code).toBe(1)
      expect(blocked.stderr).toMatch(/another transaction is writing to the transactions table .*nothing was changed, try again/)
    } finally {
      release?.()
      await holding
      await holder.end()
    }
    // A table of millions: writes would wait seconds, so it asks first (the planner's estimate, set here as one).
    await sql`UPDATE pg_class SET reltuples = 3000000 WHERE oid = 'transactions'::regclass`
    const unasked = await runCli(['counts', 'rebuild'], { DATABASE_URL: env.databaseUrl })
    expect(unasked.code).toBe(1)
    expect(unasked.stderr).toMatch(/about 3,000,000 transactions to count.*run it again with --yes/)
    const asked = await runCli(['counts', 'rebuild', '--yes'], { DATABASE_URL: env.databaseUrl })
    expect([asked.code, asked.stderr]).toEqual([0, ''])

    // TRUNCATE (an operator emptying the table) leaves no counts behind.
    await sql`TRUNCATE transactions CASCADE`
    expect(await apiCounts(env)).toEqual(await tableCounts(sql))
  }, 60_000)
})

describe('tx-broadcaster counts rebuild beside a running fold', () => {
  it('adds the deltas a fold took meanwhile once: the fold\'s (counted twice before)', async () => {
    const env = await startTestEnv()
    const sql = postgres(env.databaseUrl, { max: 2, onnotice: () => {} })
    const entered = async () =>
      (await sql<{ entered: string }[]>`SELECT entered::text FROM status_counts WHERE signer = 'racer' AND status = 'FAILED'`)[0]?.entered ?? null
    try {
      // A fold (as a running instance's loop makes it) that has taken a delta of 5 entries and not committed yet. The
      // instance's own fold runs every 2 s and may take the delta first: then it is tried again.
      let release!: () => void
      let held: Promise<unknown> | null = null
      for (let i = 0; i < 5 && !held; i++) {
        await sql`INSERT INTO status_count_deltas (chain_id, signer, status, delta, entered) VALUES (31337, 'racer', 'FAILED', 1, 5)`
        let took!: (n: number) => void
        const taken = new Promise<number>((r) => (took = r))
        const fold = sql.begin(async (tx) => {
          const rows = await tx`
            WITH folded AS (DELETE FROM status_count_deltas WHERE signer = 'racer' RETURNING chain_id, signer, status, delta, entered)
            INSERT INTO status_counts (chain_id, signer, status, count, entered)
            SELECT chain_id, signer, status, sum(delta), sum(entered) FROM folded GROUP BY 1, 2, 3
            ON CONFLICT (chain_id, signer, status) DO UPDATE SET count = status_counts.count + excluded.count, entered = status_counts.entered + excluded.entered
            RETURNING entered`
          took(rows.length)
          if (rows.length) await new Promise<void>((r) => (release = r))
        })
        if ((await taken) > 0) held = fold
        else await fold
      }
      expect(held).not.toBeNull()
      // What the instance's own folds committed before (a try whose delta it took first): `entered` keeps it.
      const before = Number((await entered()) ?? 0)
      const rebuild = runCli(['counts', 'rebuild'], { DATABASE_URL: env.databaseUrl })
      await waitFor('the rebuild waits on the fold\'s rows', async () =>
        (await sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%status_count_deltas%'`)[0]!.n > 0, 30_000)
      release()
      await held
      const done = await rebuild
      expect(done.stderr).toBe('')
      expect(done.code).toBe(0)
      expect(await entered()).toBe(String(before + 5))
    } finally {
      await sql.end()
      await env.stop()
    }
  }, 60_000)
})

describe('the status_counts migration on a database that already has transactions', () => {
  it('counts the rows that were there before it', async () => {
    const db = await createTestDatabase()
    const sql = postgres(db.url, { max: 1, onnotice: () => {} })
    try {
      // The migrations up to the one before status_counts, as a deployment that predates it has them.
      await migrateUpTo(db.url, '_status_counts')

      const signers = ['0x1111111111111111111111111111111111111111', '0x2222222222222222222222222222222222222222']
      await sql`
        INSERT INTO transactions (chain_id, signer, status, nonce, block_number, final_at)
        SELECT 31337, ${signers[0]!}, 'CONFIRMED', g, 1, now() FROM generate_series(0, 41) g`
      await sql`INSERT INTO transactions (chain_id, signer, status) SELECT 5, ${signers[1]!}, 'QUEUED' FROM generate_series(1, 7)`
      await sql`INSERT INTO transactions (chain_id, signer, status, final_at) VALUES (5, ${signers[1]!}, 'FAILED', now())`

      await migrateDatabase(db.url)
      const counts = await sql<{ chain_id: number; signer: string; status: string; count: number }[]>`
        SELECT chain_id, signer, status, sum(n)::int AS count FROM (
          SELECT chain_id, signer, status, count AS n FROM status_counts UNION ALL SELECT chain_id, signer, status, delta FROM status_count_deltas
        ) c GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`
      expect(counts).toEqual([
        { chain_id: 5, signer: signers[1], status: 'FAILED', count: 1 },
        { chain_id: 5, signer: signers[1], status: 'QUEUED', count: 7 },
        { chain_id: 31337, signer: signers[0], status: 'CONFIRMED', count: 42 },
      ])
    } finally {
      await sql.end()
      await db.drop()
    }
  })
})

describe('entries into each status (txb_transactions_entered_total)', () => {
  it('count each row that changed status, not a move to another signer, nor netted within a statement', async () => {
    const db = await createTestDatabase()
    const sql = postgres(db.url, { max: 1, onnotice: () => {} })
    try {
      await migrateDatabase(db.url)
      const [a, b] = ['0x1111111111111111111111111111111111111111', '0x2222222222222222222222222222222222222222']
      const entered = async () => {
        await foldStatusCounts(sql)
        const rows = await sql<{ status: string; n: number }[]>`SELECT status, sum(entered)::int AS n FROM status_counts GROUP BY status`
        return Object.fromEntries(rows.map((r) => [r.status, r.n]))
      }
      const ids = (await sql<{ id: string }[]>`INSERT INTO transactions (chain_id, signer, status) SELECT 31337, ${a}, 'QUEUED' FROM generate_series(1, 4) RETURNING id`).map((r) => r.id)
      expect(await entered()).toMatchObject({ QUEUED: 4 })
      // Handed to another signer: the same status, no entry (it counted one per row before).
      await sql`UPDATE transactions SET signer = ${b} WHERE id = ANY(${ids}::uuid[])`
      expect(await entered()).toMatchObject({ QUEUED: 4 })
      // One statement: three rows leave QUEUED, one (PENDING before) enters it: one entry (netted to none before).
      await sql`UPDATE transactions SET status = 'PENDING', nonce = 0 WHERE id = ${ids[0]!}`
      await sql`UPDATE transactions SET status = CASE WHEN id = ${ids[0]!} THEN 'QUEUED' ELSE 'FAILED' END, nonce = NULL,
                final_at = CASE WHEN id = ${ids[0]!} THEN NULL ELSE now() END, error_code = CASE WHEN id = ${ids[0]!} THEN NULL ELSE 'CANCELLED' END
                WHERE id = ANY(${ids}::uuid[])`
      expect(await entered()).toMatchObject({ QUEUED: 5, PENDING: 1, FAILED: 3 })
    } finally {
      await sql.end()
      await db.drop()
    }
  })
})

describe('the counters on a large update', () => {
  it('join the statement rows by hash, not a nested loop planned for the first small update of the connection', async () => {
    // The plan of the trigger's own statement, as auto_explain tells it (a notice per statement, nested ones too).
    // PL/pgSQL kept the plan of its first call for the connection's life: made for one row, it stayed a nested
    // loop over both transition tables, and a block's 2,000 receipts spent 0.5 s in the trigger (quadratic).
    const db = await createTestDatabase()
    const plans: string[] = []
    const sql = postgres(db.url, { max: 1, onnotice: (n) => plans.push(String(n.message)) })
    try {
      await migrateDatabase(db.url)
      await sql`INSERT INTO transactions (chain_id, signer, status) SELECT 31337, '0x1111111111111111111111111111111111111111', 'QUEUED' FROM generate_series(1, 2001)`
      await sql`LOAD 'auto_explain'`
      await sql`SET auto_explain.log_min_duration = 0`
      await sql`SET auto_explain.log_nested_statements = on`
      await sql`SET auto_explain.log_level = 'notice'`
      const toPending = (n: number) => sql`
        UPDATE transactions t SET status = 'PENDING', nonce = t.seq
        FROM (SELECT id FROM transactions WHERE status = 'QUEUED' ORDER BY seq LIMIT ${n}) v WHERE t.id = v.id`
      await toPending(1)
      plans.length = 0
      await toPending(2000)
      const trigger = plans.filter((p) => p.includes('INSERT INTO status_count_deltas'))
      expect(trigger).toHaveLength(1)
      // The transition tables joined on id by a hash or a merge (the nested loop's was a join filter on each pair).
      expect(trigger[0]).toMatch(/(Hash|Merge) Cond: \(\w+\.id = \w+\.id\)/)
      const [counts] = await sql<{ pending: number; queued: number }[]>`
        SELECT sum(delta) FILTER (WHERE status = 'PENDING')::int AS pending, sum(delta) FILTER (WHERE status = 'QUEUED')::int AS queued FROM status_count_deltas`
      expect(counts).toEqual({ pending: 2001, queued: 0 })
    } finally {
      await sql.end()
      await db.drop()
    }
  })
})
