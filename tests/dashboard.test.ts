import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import postgres from 'postgres'
import type { Browser, Page, WebSocketRoute } from 'playwright-core'
import { getAddress, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ARTIFACTS, ensureWebBuilt, launchBrowser } from './helpers/browser.ts'
import { insertConfirmedRows } from './helpers/confirmedRows.ts'
import { chainControl, getTx, submit, waitForStatus } from './helpers/chainControl.ts'
import { runCli } from './helpers/cli.ts'
import { ADMIN_KEY, RECIPIENT, SIGNER, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'

/** Runtime code that always reverts with Error("nope") (as in adminActions.test.ts). */
const REVERTING_CODE = ('0x6064600c60003960646000fd08c379a0' +
  '0000000000000000000000000000000000000000000000000000000000000020' +
  '0000000000000000000000000000000000000000000000000000000000000004' +
  '6e6f706500000000000000000000000000000000000000000000000000000000') as Hex
const TARGET = '0x00000000000000000000000000000000000c0de0'
const READER_KEY = 'test-reader-key-0123456789'
const WIDE = { width: 1280, height: 860 }
const NARROW = { width: 380, height: 800 }
/** An iPhone SE's width. */
const NARROWEST = { width: 320, height: 640 }

describe('dashboard (headless Chromium against the real service)', () => {
  let env: TestEnv
  let browser: Browser
  let page: Page
  const shot = (p: Page, name: string, fullPage = false) => p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage })
  /** A new page that opens with `key` stored, as the login form leaves it. */
  const pageWithKey = async (key: string, options: Parameters<Browser['newPage']>[0] = { viewport: WIDE }) => {
    const p = await browser.newPage(options)
    await p.addInitScript((k) => sessionStorage.setItem('txb.apiKey', k), key)
    return p
  }

  /**
   * A PENDING request at `nonce` whose cancel (a self-transfer) is sent, for a signer the service does not hold (no
   * stage touches it): its two attempts, hashes from `hashDigits`. Returns its id.
   */
  const insertPendingWithCancel = async (sql: postgres.Sql, nonce: number, hashDigits: [number, number], note: { code: string; message: string; validUntilPast?: boolean }) => {
    const signer = '0x4444444444444444444444444444444444444444'
    const [row] = await sql<Array<{ id: string }>>`
      INSERT INTO transactions (chain_id, signer, "to", value, kind, api_key_name, status, nonce, error_code, error_message, valid_until)
      VALUES (31337, ${signer}, ${RECIPIENT}, 0, 'REQUEST', 'quiet', 'PENDING', ${nonce}, ${note.code}, ${note.message},
              ${note.validUntilPast ? sql`now() - interval '1 minute'` : null}) RETURNING id`
    const id = row!.id
    for (const [n, purpose] of [[hashDigits[0], 'REQUEST'], [hashDigits[1], 'CANCEL']] as const)
      await sql`
        INSERT INTO attempts (transaction_id, execution, chain_id, signer, nonce, hash, raw, gas_limit, max_fee_per_gas, max_priority_fee_per_gas, purpose, status)
        VALUES (${id}, 1, 31337, ${signer}, ${nonce}, ${`0x${String(n).repeat(64)}`}, '0x00', 21000, ${String(n * 1_000_000_000)}, 1000000000, ${purpose}, 'SENT')`
    return id
  }

  /**
   * Empties the signer and submits a transfer, which then waits QUEUED with INSUFFICIENT_FUNDS. (The sign stage
   * reuses a balance read for up to half a second: that is waited out, or it signs against the old balance.)
   */
  const submitUnaffordable = async (value: string) => {
    await chainControl(env).setBalance(SIGNER.address, 0n)
    await new Promise((r) => setTimeout(r, 1_200))
    const id = await submit(env, { to: RECIPIENT, value })
    await waitForStatus(env, id, (t) => t.status === 'QUEUED' && t.error?.code === 'INSUFFICIENT_FUNDS')
    return id
  }

  beforeAll(async () => {
    ensureWebBuilt()
    mkdirSync(ARTIFACTS, { recursive: true })
    ;[env, browser] = await Promise.all([
      startTestEnv({
        anvil: { blockTimeSec: 0.3 },
        config: (c) => {
          c.apiKeys.push({ name: 'viewer', role: 'reader', key: READER_KEY })
          c.chains[0].explorerUrl = 'https://explorer.example'
        },
      }),
      launchBrowser(),
    ])
    page = await browser.newPage({ viewport: WIDE })
  }, 120_000)
  afterAll(async () => {
    await browser?.close()
    await env?.stop()
  })

  it('asks for the API key once: a wrong key is refused with the API message, the right one opens the empty dashboard', async () => {
    await page.goto(`${env.service.url}/`)
    await page.locator('#api-key').fill('not-a-key-0123456789')
    await page.getByRole('button', { name: 'Open dashboard' }).click()
    await page.getByRole('alert').filter({ hasText: 'Unknown or revoked API key' }).waitFor()
    await shot(page, 'dashboard-key-form')
    await page.locator('#api-key').fill(ADMIN_KEY)
    await page.getByRole('button', { name: 'Open dashboard' }).click()
    await page.getByRole('heading', { name: 'No transactions yet' }).waitFor()
    const example = await page.locator('pre.code').textContent()
    expect(example).toContain(`${env.service.url}/broadcast_transaction`)
    // Placeholders, not a transfer of 0.001 ETH to anvil's account #1 that a copy and paste would send on any chain.
    expect(example).toContain('"to": "<recipient 0x…>", "value": "<amount in wei>"')
    expect(example).not.toMatch(/0x[0-9a-fA-F]{40}/)
    expect(await page.evaluate(() => sessionStorage.getItem('txb.apiKey'))).toBe(ADMIN_KEY)
    await page.locator('.role', { hasText: 'admin' }).waitFor()
    expect(await page.locator('.role').textContent()).toContain('test-admin')
    // The chain filter lists the configured chains by name.
    await page.locator('select[name="chain"] option[value="31337"]', { hasText: 'anvil' }).waitFor({ state: 'attached' })
    await shot(page, 'dashboard-empty')
  })

  it('a transaction submitted over REST appears at the top and turns CONFIRMED without a reload', async () => {
    await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true))
    await page.locator('.live-live').waitFor()
    const id = await submit(env, { to: RECIPIENT, value: '1000000000000000' })
    const row = page.locator(`tr[data-id="${id}"]`)
    await row.waitFor({ timeout: 15_000 })
    await row.locator('[data-status="CONFIRMED"]').waitFor({ timeout: 30_000 })
    expect(await row.textContent()).toContain('0.001 ETH')
    // Live updates carry no hash; the list's periodic re-read fills it in.
    const { hash } = await waitForStatus(env, id, 'CONFIRMED')
    await row.locator(`.c-hash .hex[title="${hash}"]`).waitFor({ timeout: 10_000 })
    // With the chain's explorerUrl, hashes and addresses link to the block explorer.
    expect(await row.locator('.c-hash a.hex').getAttribute('href')).toBe(`https://explorer.example/tx/${hash}`)
    expect(await row.locator('.c-parties a.hex').first().getAttribute('href')).toBe(`https://explorer.example/address/${SIGNER.address}`)
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true)
    expect(await page.locator('tr[data-id]').count()).toBe(1)
  })

  it('a failed transaction shows under Failed with its reason; a reader sees no admin actions; an admin retries it and it confirms live', async () => {
    const anvil = chainControl(env)
    await anvil.setCode(TARGET, REVERTING_CODE)
    await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true))
    await page.locator('a[data-tab="failed"]').click()
    await page.getByText('Nothing here').waitFor()
    const id = await submit(env, { to: TARGET, data: '0xabcdef01' })
    // It arrives in the open Failed tab by itself, once the gas estimate reverted.
    const row = page.locator(`tr[data-id="${id}"]`)
    await row.locator('[data-status="FAILED"]').waitFor({ timeout: 30_000 })
    expect(await row.locator('.row-error').textContent()).toMatch(/GAS_ESTIMATION_REVERTED.*nope/)
    await page.locator('a[data-tab="failed"] .count', { hasText: '1' }).waitFor()
    await shot(page, 'dashboard-list-failed')
    await page.locator('a[data-tab="all"]').click()
    await page.locator('tr[data-id]').nth(1).waitFor()
    await shot(page, 'dashboard-list')

    await row.click()
    await page.waitForURL(`**/#/tx/${id}`)
    const detail = page.locator(`section.detail[data-id="${id}"]`)
    await detail.waitFor()
    const error = await detail.locator('.tx-error').textContent()
    expect(error).toContain('GAS_ESTIMATION_REVERTED')
    expect(error).toContain('nope')
    const retry = detail.getByRole('button', { name: 'Retry' })
    await retry.waitFor()

    // The same link with a reader key: the transaction, but no Retry.
    const reader = await pageWithKey(READER_KEY)
    await reader.goto(`${env.service.url}/#/tx/${id}`)
    await reader.locator('.role', { hasText: 'no admin actions' }).waitFor()
    await reader.locator(`section.detail[data-id="${id}"] .tx-error`).waitFor()
    expect(await reader.getByRole('button', { name: 'Retry' }).count()).toBe(0)
    await reader.close()

    // The cause goes away; the admin retries from the page and watches it confirm.
    await anvil.setCode(TARGET, '0x00')
    await retry.click()
    await detail.locator('.notice.ok', { hasText: 'Retried' }).waitFor()
    await page.locator(`section.detail[data-status="CONFIRMED"]`).waitFor({ timeout: 30_000 })
    await detail.locator('.timeline li[data-to="CONFIRMED"]').waitFor()
    const timeline = await detail.locator('.timeline').textContent()
    expect(timeline).toContain('by test-admin')
    expect(await detail.locator('.attempt').count()).toBeGreaterThanOrEqual(1)
    expect(await detail.locator('.providers').first().textContent()).toContain('sent')
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true)
    const done = await waitForStatus(env, id, 'CONFIRMED')
    expect(await detail.locator('.hex', { hasText: done.hash }).count()).toBeGreaterThan(0)
    expect(await detail.locator(`a.hex[href="https://explorer.example/tx/${done.hash}"]`).count()).toBeGreaterThan(0)
    await shot(page, 'dashboard-detail', true)

    await page.setViewportSize(NARROW)
    await shot(page, 'dashboard-detail-narrow', true)
    await page.locator('a.back').click()
    await page.locator(`tr[data-id="${id}"]`).waitFor()
    await shot(page, 'dashboard-list-narrow')
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(NARROW.width)
    // Every status tab in view on the narrowest phones, none behind a strip that scrolls with no visible bar.
    await page.setViewportSize(NARROWEST)
    const tabs = await page.locator('nav.tabs a.tab').evaluateAll((els) => els.map((el) => ({ tab: el.textContent, right: el.getBoundingClientRect().right })))
    expect(tabs).toHaveLength(4)
    for (const t of tabs) expect(t.right, `tab ${t.tab}`).toBeLessThanOrEqual(NARROWEST.width)
    await shot(page, 'dashboard-list-narrowest')
    await page.setViewportSize(WIDE)
  })

  it('search finds a transaction by hash and by id', async () => {
    const { json } = await env.graphql(`{ transactions(first: 1, status: [CONFIRMED]) { edges { node { id hash } } } }`)
    const { id, hash } = json.data.transactions.edges[0].node
    await page.goto(`${env.service.url}/#/`)
    await page.getByRole('searchbox').fill(hash)
    await page.getByRole('searchbox').press('Enter')
    await page.waitForURL(`**/#/tx/${id}`)
    await page.locator(`section.detail[data-id="${id}"]`).waitFor()
    await page.getByRole('searchbox').fill('0x' + 'ab'.repeat(32))
    await page.getByRole('searchbox').press('Enter')
    await page.getByRole('alert').filter({ hasText: 'No transaction has an attempt with hash' }).waitFor()
    // The short id the list shows (its first 8 characters) finds it too; before, it was refused as no id at all.
    await page.goto(`${env.service.url}/#/`)
    const short = (await page.locator(`tr[data-id="${id}"] td.c-id`).textContent())!.trim()
    expect(id.startsWith(short.slice(0, 8))).toBe(true)
    await page.getByRole('searchbox').fill(short.slice(0, 8))
    await page.getByRole('searchbox').press('Enter')
    await page.waitForURL(`**/#/tx/${id}`)
    await page.getByRole('searchbox').fill('00000000')
    await page.getByRole('searchbox').press('Enter')
    await page.getByRole('alert').filter({ hasText: 'No transaction id starts with 00000000' }).waitFor()
    const { json: bad } = await env.graphql(`{ transactionsByIdPrefix(prefix: "xyz") { id } }`)
    expect(bad.errors[0].extensions).toMatchObject({ code: 'INVALID_ID', field: 'prefix' })
  })

  it('a slow re-read of the transaction left behind never replaces the one now shown, and Cancel acts on the one shown', async () => {
    const anvil = chainControl(env)
    const { json } = await env.graphql(`{ transactions(first: 1, status: [CONFIRMED]) { edges { node { id } } } }`)
    const final = json.data.transactions.edges[0].node.id as string
    // An in-flight transaction (QUEUED: the signer cannot pay), whose page re-reads it every 5 s.
    const waiting = await submitUnaffordable('3')
    const tab = await pageWithKey(ADMIN_KEY)
    try {
      await tab.goto(`${env.service.url}/#/tx/${waiting}`)
      await tab.locator(`section.detail[data-id="${waiting}"] .tx-error`, { hasText: 'INSUFFICIENT_FUNDS' }).waitFor({ timeout: 15_000 })
      // Its next re-read answers slowly; meanwhile the admin goes to another transaction.
      let held = 0
      await tab.route('**/graphql', async (route) => {
        const body = route.request().postData() ?? ''
        if (body.includes(waiting) && body.includes('query Tx')) {
          held++
          await new Promise((r) => setTimeout(r, 3_000))
        }
        await route.continue()
      })
      await expect.poll(() => held, { timeout: 10_000 }).toBeGreaterThan(0)
      await tab.evaluate((id) => (location.hash = `#/tx/${id}`), final)
      await tab.locator(`section.detail[data-id="${final}"]`).waitFor()
      await new Promise((r) => setTimeout(r, 3_500))
      // Before: the late answer put the QUEUED transaction back on the page, with a Cancel button for it.
      expect(await tab.locator('section.detail').getAttribute('data-id')).toBe(final)
      expect(await tab.getByRole('button', { name: /Cancel/ }).count()).toBe(0)
    } finally {
      await tab.close()
      await anvil.setBalance(SIGNER.address, 10n ** 22n)
      await waitForStatus(env, waiting, 'CONFIRMED')
    }
  })

  it('times on the page name their zone (the browser’s), beside the API’s UTC', async () => {
    const { json } = await env.graphql(`{ transactions(first: 1, status: [CONFIRMED]) { edges { node { id createdAt } } } }`)
    const { id, createdAt } = json.data.transactions.edges[0].node
    const ny = await pageWithKey(ADMIN_KEY, { viewport: WIDE, timezoneId: 'America/New_York' })
    try {
      await ny.goto(`${env.service.url}/#/tx/${id}`)
      await ny.locator(`section.detail[data-id="${id}"]`).waitFor()
      // New York in November is UTC−05:00; before, the local time carried no zone at all.
      const local = new Date(Date.parse(createdAt) - 5 * 3600_000).toISOString().replace('T', ' ').replace('Z', ' UTC−05:00')
      expect(await ny.locator('section.detail').textContent()).toContain(local)
    } finally {
      await ny.close()
    }
  })

  it('a deployment shows the contract it created, as GraphQL and REST do', async () => {
    // Init code that returns a 1-byte runtime (STOP): PUSH1 1 PUSH1 12 PUSH1 0 CODECOPY PUSH1 1 PUSH1 0 RETURN, then 00.
    const { json } = await env.post('/broadcast_transaction', { data: '0x6001600c60003960016000f300' })
    const done = await waitForStatus(env, json.transactionId, 'CONFIRMED')
    const receipt = await env.chain.getTransactionReceipt({ hash: done.hash })
    const created = receipt.contractAddress!
    expect(await env.chain.getCode({ address: created })).toBe('0x00')
    const { json: viaGraphql } = await env.graphql(`query($id: ID!) { transaction(id: $id) { contractAddress } }`, { id: json.transactionId })
    expect(viaGraphql.data.transaction.contractAddress).toBe(getAddress(created))
    expect((await env.get(`/transactions/${json.transactionId}`)).json.contractAddress).toBe(getAddress(created))
    const tab = await pageWithKey(ADMIN_KEY)
    try {
      await tab.goto(`${env.service.url}/#/tx/${json.transactionId}`)
      const field = tab.locator(`section.detail[data-id="${json.transactionId}"] dt:text-is("Contract created") + dd`)
      await field.waitFor()
      expect(await field.textContent()).toContain(getAddress(created))
    } finally {
      await tab.close()
    }
  })

  it('In flight: a row that confirms leaves the tab, as it leaves the count', async () => {
    const anvil = chainControl(env)
    // An earlier test emptied the signer too: its flag must be gone (the sweep clears it once funded), so the
    // notice below is this test's.
    await waitFor('the signer no longer flagged', async () => (await env.graphql(`{ signers { shortOfFundsSince } }`)).json.data.signers[0].shortOfFundsSince === null, 20_000)
    const flaggedAfter = Date.now()
    const id = await submitUnaffordable('4')
    const tab = await pageWithKey(ADMIN_KEY)
    try {
      await tab.goto(`${env.service.url}/#/?tab=inflight`)
      const row = tab.locator(`tr[data-id="${id}"]`)
      await row.waitFor({ timeout: 15_000 })
      // The page names the signer that cannot pay, and stops once it is funded.
      const alert = tab.locator(`.signer-alert p.signer-short[data-signer="${SIGNER.address}"]`)
      await alert.waitFor({ timeout: 15_000 })
      expect(await alert.textContent()).toMatch(/^Signer anvil-0 \(0xf39F.*, chain 31337\) cannot pay for requests since .* \(balance [\d,.]+ ETH\): fund it\.$/)
      const since = (await env.graphql(`{ signers { shortOfFundsSince } }`)).json.data.signers[0].shortOfFundsSince
      expect(Date.parse(since)).toBeGreaterThanOrEqual(flaggedAfter - 1_000)
      await anvil.setBalance(SIGNER.address, 10n ** 22n)
      await waitForStatus(env, id, 'CONFIRMED').catch(async (err) => {
        throw new Error(`${(err as Error).message}: ${JSON.stringify(await getTx(env, id))}`)
      })
      // Before, it stayed listed (as CONFIRMED) under "In flight 0" until a reload.
      await row.waitFor({ state: 'detached', timeout: 15_000 })
      await alert.waitFor({ state: 'detached', timeout: 15_000 })
      await tab.locator('a[data-tab="inflight"] .count', { hasText: /^0$/ }).waitFor({ timeout: 15_000 })
    } finally {
      await tab.close()
      await anvil.setBalance(SIGNER.address, 10n ** 22n)
    }
  })

  it('changes the live feed never announced still reach the page: a row turns FAILED (and leaves In flight), a new row appears', async () => {
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    const all = await pageWithKey(ADMIN_KEY)
    const inflight = await pageWithKey(ADMIN_KEY)
    try {
      // Requests of a signer the service does not hold: no stage touches them, only this test changes them.
      const insertQuietly = async () =>
        (
          await sql<Array<{ id: string }>>`
            INSERT INTO transactions (chain_id, signer, "to", value, api_key_name)
            VALUES (31337, '0x2222222222222222222222222222222222222222', ${RECIPIENT}, 5000, 'quiet') RETURNING id`
        )[0]!.id
      const id = await insertQuietly()
      await all.goto(`${env.service.url}/#/`)
      await inflight.goto(`${env.service.url}/#/?tab=inflight`)
      const inAll = all.locator(`tr[data-id="${id}"]`)
      const inInflight = inflight.locator(`tr[data-id="${id}"]`)
      await inAll.locator('.c-status', { hasText: 'QUEUED' }).waitFor({ timeout: 15_000 })
      await inInflight.locator('.c-status', { hasText: 'QUEUED' }).waitFor({ timeout: 15_000 })
      await all.locator('.live-live').waitFor()
      await inflight.locator('.live-live').waitFor()
      // As a cancel does it, but with no transaction_events row: nothing announces it (as with a change committed
      // between the page's first read and its subscription going live). Only the trigger-kept counters follow.
      await sql`
        UPDATE transactions SET status = 'FAILED', error_code = 'CANCELLED', error_message = 'Cancelled quietly', final_at = now(), updated_at = now()
        WHERE id = ${id} AND status = 'QUEUED'`
      const added = await insertQuietly()
      // The page re-reads its newest rows every 5 s; before, it showed QUEUED (and kept it under In flight) until a reload.
      await inAll.locator('.c-status', { hasText: 'FAILED' }).waitFor({ timeout: 8_000 })
      expect(await inAll.locator('.row-error').textContent()).toContain('Cancelled quietly')
      await inInflight.waitFor({ state: 'detached', timeout: 8_000 })
      await all.locator(`tr[data-id="${added}"] .c-status`, { hasText: 'QUEUED' }).waitFor({ timeout: 8_000 })
      await inflight.locator(`tr[data-id="${added}"] .c-status`, { hasText: 'QUEUED' }).waitFor({ timeout: 8_000 })
      expect(await all.locator('tr[data-id]').first().getAttribute('data-id')).toBe(added)
    } finally {
      await all.close()
      await inflight.close()
      await sql.end()
    }
  })

  it('an attempt that mined but reverted reads MINED · REVERTED, not a green MINED; still so for the first execution after a retry', async () => {
    const target = '0x00000000000000000000000000000000000c0de1'
    await chainControl(env).setCode(target, REVERTING_CODE)
    // A gas limit of its own: no estimate, so it is signed, sent and mined, and reverts there.
    const id = await submit(env, { to: target, data: '0x01', gasLimit: '100000' })
    // Open while it is in flight: the reason, found by a replay after the REVERTED status was stored, reaches the
    // open page by itself (before, the page kept "mined with status 0" until a reload).
    await page.goto(`${env.service.url}/#/tx/${id}`)
    await page.locator(`section.detail[data-id="${id}"][data-status="REVERTED"] .tx-error`, { hasText: 'nope' }).waitFor({ timeout: 15_000 })
    await page.locator(`section.detail[data-id="${id}"] .timeline li`, { hasText: 'revertReason: nope' }).waitFor()
    const reverted = await waitForStatus(env, id, 'REVERTED')
    const attemptsOf = async () =>
      (await env.graphql(`query($id: ID!) { transaction(id: $id) { receiptStatus revertReason attempts { hash execution status receiptStatus } } }`, { id })).json.data
        .transaction
    const before = await attemptsOf()
    expect(before.receiptStatus).toBe('reverted')
    expect(before.revertReason).toBe('nope')
    expect(before.attempts.map((a: any) => [a.status, a.receiptStatus])).toEqual([['MINED', 'reverted']])
    expect((await env.get(`/transactions/${id}`)).json.attempts[0].receiptStatus).toBe('reverted')
    const first = page.locator(`section.detail[data-id="${id}"] .attempt[data-hash="${reverted.attempts[0].hash}"] .attempt-head`)
    await first.waitFor()
    expect(await first.locator('.pill').first().textContent()).toBe('MINED · REVERTED')
    // Retried: the transaction's receipt columns are cleared; execution 1's attempt still says what happened to it.
    const retried = await env.graphql(`mutation($id: ID!) { retryTransaction(id: $id) { execution } }`, { id })
    expect(retried.json.data.retryTransaction.execution).toBe(2)
    await waitForStatus(env, id, 'REVERTED')
    const after = await attemptsOf()
    expect(after.attempts.map((a: any) => [a.execution, a.status, a.receiptStatus])).toEqual([
      [1, 'MINED', 'reverted'],
      [2, 'MINED', 'reverted'],
    ])
    await page.reload()
    await first.waitFor()
    expect(await first.locator('.pill').first().textContent()).toBe('MINED · REVERTED')
    // A transfer that succeeded keeps its plain MINED.
    const ok = await submit(env, { to: RECIPIENT, value: '5' })
    const done = await waitForStatus(env, ok, 'CONFIRMED')
    await page.goto(`${env.service.url}/#/tx/${ok}`)
    const okHead = page.locator(`section.detail[data-id="${ok}"] .attempt[data-hash="${done.attempts[0].hash}"] .attempt-head`)
    await okHead.waitFor()
    expect(await okHead.locator('.pill').first().textContent()).toBe('MINED')
  })

  it('renders the first page (50 rows, exact counts) with 10,000 transactions in the database, and pages on', async () => {
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    let passed = 0
    try {
      // A signer the service does not hold: its stages leave these rows alone.
      await sql`
        INSERT INTO transactions (chain_id, signer, "to", value, status, nonce, block_number, block_hash, mined_hash, receipt_status,
                                  api_key_name, first_sent_at, included_at, final_at, created_at, updated_at)
        SELECT 31337, '0x1111111111111111111111111111111111111111', ${RECIPIENT}, (g::numeric * 1000000000000), 'CONFIRMED', g,
               1000000 + g, '0x' || md5('b' || g) || md5('c' || g), '0x' || md5('h' || g) || md5('i' || g), 'success',
               'bulk', now(), now(), now(), now() - make_interval(secs => 20000 - g), now()
        FROM generate_series(1, 10000) AS g`
      await sql`ANALYZE transactions`
      passed = (await sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM transactions WHERE status = 'CONFIRMED'`)[0]!.n
    } finally {
      await sql.end()
    }
    // A new page each time (no HTTP cache, nothing in sessionStorage but the key); best of two loads, so one
    // hiccup of a busy CI machine does not decide it. Measured in the browser: from navigation start to the
    // frame after the first page's rows were rendered.
    const load = async () => {
      const p = await pageWithKey(ADMIN_KEY)
      const started = Date.now()
      await p.goto(`${env.service.url}/#/`)
      await p.locator('tr[data-id]').first().waitFor()
      const aroundGoto = Date.now() - started
      await p.waitForFunction(() => performance.getEntriesByName('txb:first-rows').length > 0)
      const inPage = Math.round(await p.evaluate(() => performance.getEntriesByName('txb:first-rows')[0]!.startTime))
      return { p, inPage, aroundGoto }
    }
    const first = await load()
    await first.p.close()
    const second = await load()
    const fresh = second.p
    console.log(
      `dashboard: first page of 10,002 on screen ${first.inPage} ms, then ${second.inPage} ms after navigation start ` +
        `(${first.aroundGoto} and ${second.aroundGoto} ms around page.goto, with a new browser page's start-up)`,
    )
    // The 1 s target is a speed figure, measured by `npm run bench` (its dashboard step): on a loaded 2-core
    // CI machine a browser's page start-up alone swings by hundreds of ms (914 ms idle, 1,029 ms under a full
    // test run, on one VM), so here it is logged and not asserted. What is asserted is that it does not take seconds, which it would if the page waited
    // for all 10,000 rows or for a count of the table.
    expect(Math.min(first.inPage, second.inPage)).toBeLessThan(5_000)
    expect(await fresh.locator('tr[data-id]').count()).toBe(50)
    // Exact counts, not capped.
    const grouped = String(passed).replace(/\B(?=(\d{3})+(?!\d))/g, ',')
    expect(passed).toBeGreaterThan(10_000)
    await fresh.locator('a[data-tab="passed"] .count', { hasText: grouped }).waitFor()
    expect(await fresh.locator('a[data-tab="passed"] .count').textContent()).toBe(grouped)
    await shot(fresh, 'dashboard-list-10k')

    await fresh.getByRole('button', { name: 'Load more' }).click()
    await fresh.locator('tr[data-id]').nth(99).waitFor()
    expect(await fresh.locator('tr[data-id]').count()).toBe(100)

    // Filtered by signer: only the few transactions of the service's own signer, out of 10,000 more.
    const own = (await env.graphql(`{ transactionCounts(from: "${SIGNER.address}") { count } }`)).json.data.transactionCounts.reduce((n: number, c: { count: number }) => n + c.count, 0)
    expect(own).toBeGreaterThanOrEqual(2)
    expect(own).toBeLessThan(50)
    await fresh.locator('input[name="from"]').fill(SIGNER.address)
    await fresh.getByRole('button', { name: 'Filter' }).click()
    await fresh.waitForURL(/from=0x/)
    await fresh.waitForFunction((n) => document.querySelectorAll('tr[data-id]').length === n, own)
    const signers = await fresh.locator('tr[data-id] .c-parties > .hex:first-child').allTextContents()
    expect(signers).toEqual(Array.from({ length: own }, () => SIGNER.address.slice(0, 6) + '…' + SIGNER.address.slice(-4)))
    await fresh.close()
  })

  it('a dropped live connection keeps the rows loaded with "Load more" and the scroll position; a failed re-read keeps them under a notice', async () => {
    // Far more than 150 rows in the tab (after the 10,000-row test there are anyway): confirmed transfers of a
    // signer the service does not hold, which no stage touches.
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      await sql`
        INSERT INTO transactions (chain_id, signer, "to", value, status, nonce, block_number, block_hash, mined_hash, receipt_status,
                                  api_key_name, first_sent_at, included_at, final_at, created_at, updated_at)
        SELECT 31337, '0x5555555555555555555555555555555555555555', ${RECIPIENT}, g, 'CONFIRMED', g, 2000000 + g,
               '0x' || md5('d' || g) || md5('e' || g), '0x' || md5('f' || g) || md5('g' || g), 'success',
               'scroll', now(), now(), now(), now() - make_interval(secs => 1000 - g), now()
        FROM generate_series(1, 300) AS g`
    } finally {
      await sql.end()
    }
    const tab = await pageWithKey(ADMIN_KEY)
    try {
      // The page's WebSocket passes through here to the service, so the test can drop it as a restarting service
      // would (1012, "Service Restart"), and keep refusing new ones until it lets them through again.
      const sockets: WebSocketRoute[] = []
      let down = false
      await tab.routeWebSocket(/\/graphql$/, (ws) => {
        if (down) return void ws.close({ code: 1012 })
        ws.connectToServer()
        sockets.push(ws)
      })
      await tab.goto(`${env.service.url}/#/`)
      await tab.locator('.live-live').waitFor()
      const rows = tab.locator('tr[data-id]')
      await rows.nth(49).waitFor()
      for (const n of [100, 150]) {
        await tab.getByRole('button', { name: 'Load more' }).click()
        await rows.nth(n - 1).waitFor()
      }
      const ids = async () => (await rows.evaluateAll((els) => els.map((el) => el.getAttribute('data-id')))).join()
      const loaded = await ids()
      expect(await rows.count()).toBe(150)
      await rows.nth(120).scrollIntoViewIfNeeded()
      const scrolled = await tab.evaluate(() => window.scrollY)
      expect(scrolled).toBeGreaterThan(2_000)
      const dropSocket = async (whileDown: () => Promise<unknown> = async () => {}) => {
        down = true
        for (const ws of sockets.splice(0)) await ws.close({ code: 1012 })
        await tab.locator('.live-offline').waitFor({ timeout: 10_000 })
        await whileDown()
        down = false
        await tab.locator('.live-live').waitFor({ timeout: 20_000 })
      }

      let reads = 0
      const listReads = () => reads
      await tab.route('**/graphql', (route) => {
        if ((route.request().postData() ?? '').includes('query List')) reads++
        return route.continue()
      })
      // While the page is offline, a row far below the newest 100 (which the periodic re-read brings) changes.
      const far = (await rows.nth(130).getAttribute('data-id'))!
      await dropSocket(async () => {
        const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
        await sql`UPDATE transactions SET status = 'REVERTED', receipt_status = 'reverted', updated_at = now() WHERE id = ${far}`.finally(() => sql.end())
      })
      // The reconnect re-reads the rows shown; before, it loaded the first 50 again in their place.
      await expect.poll(listReads, { timeout: 10_000 }).toBeGreaterThan(0)
      await tab.locator(`tr[data-id="${far}"] .c-status`, { hasText: 'REVERTED' }).waitFor({ timeout: 10_000 })
      expect(await rows.count()).toBe(150)
      expect(await ids()).toBe(loaded)
      expect(await tab.evaluate(() => window.scrollY)).toBe(scrolled)
      await tab.unroute('**/graphql')

      // The re-read fails: the rows stay where they were, under a notice that says so; before, the error replaced them.
      reads = 0
      await tab.route('**/graphql', (route) => {
        if (!(route.request().postData() ?? '').includes('query List')) return route.continue()
        reads++
        return route.abort('connectionreset')
      })
      await dropSocket()
      const notice = tab.getByRole('alert').filter({ hasText: 'The list may be out of date' })
      await notice.waitFor({ timeout: 10_000 })
      expect(await notice.textContent()).toContain('Cannot reach the API')
      // In view where the user is, far down the list, not at its top.
      const box = (await notice.boundingBox())!
      expect(box.y).toBeGreaterThanOrEqual(0)
      expect(box.y + box.height).toBeLessThanOrEqual(WIDE.height)
      await shot(tab, 'dashboard-list-refresh-failed')
      expect(await rows.count()).toBe(150)
      expect(await ids()).toBe(loaded)
      expect(await tab.evaluate(() => window.scrollY)).toBe(scrolled)
      await tab.unroute('**/graphql')
      await notice.getByRole('button', { name: 'Try again' }).click()
      await notice.waitFor({ state: 'detached', timeout: 10_000 })
      expect(await rows.count()).toBe(150)
    } finally {
      await tab.close()
    }
  })

  it('a signer that cannot pay shows its balance in ETH, the exact wei on hover', async () => {
    const anvil = chainControl(env)
    await waitFor('the signer no longer flagged', async () => (await env.graphql(`{ signers { shortOfFundsSince } }`)).json.data.signers[0].shortOfFundsSince === null, 20_000)
    const tab = await pageWithKey(ADMIN_KEY)
    let id: string | undefined
    try {
      // Some ether, but less than a plain transfer's gas (21,000 gas at anvil's 1 gwei tip alone is 0.000021 ETH).
      // (The sign stage reuses a balance read for up to half a second.)
      await anvil.setBalance(SIGNER.address, 1_500_000_000_000n)
      await new Promise((r) => setTimeout(r, 1_200))
      id = await submit(env, { to: RECIPIENT, value: '5' })
      await waitForStatus(env, id, (t) => t.status === 'QUEUED' && t.error?.code === 'INSUFFICIENT_FUNDS')
      await tab.goto(`${env.service.url}/#/`)
      const alert = tab.locator(`.signer-alert p.signer-short[data-signer="${SIGNER.address}"]`)
      await alert.waitFor({ timeout: 15_000 })
      // Before: "(balance 1500000000000 wei)". (A balance read is reused for 5 s: the one before may show first.)
      await alert.filter({ hasText: '(balance 0.000001 ETH)' }).waitFor({ timeout: 15_000 })
      expect(await alert.textContent()).toMatch(/ \(balance 0\.000001 ETH\): fund it\.$/)
      expect(await alert.locator('span[title="1500000000000 wei"]').textContent()).toBe('0.000001 ETH')
    } finally {
      await tab.close()
      await anvil.setBalance(SIGNER.address, 10n ** 22n)
      if (id) await waitForStatus(env, id, 'CONFIRMED')
    }
  })

  it('a request whose cancel is already sent says so, and is not offered Cancel again', async () => {
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    const tab = await pageWithKey(ADMIN_KEY)
    let id: string | undefined
    try {
      // PENDING at nonce 7 with its cancel sent.
      id = await insertPendingWithCancel(sql, 7, [1, 2], { code: 'CANCELLED', message: 'cancel requested' })
      await tab.goto(`${env.service.url}/#/tx/${id}`)
      const detail = tab.locator(`section.detail[data-id="${id}"]`)
      await detail.locator('.tx-cancelling', { hasText: 'Cancel requested' }).waitFor()
      await tab.locator('.role', { hasText: 'admin' }).waitFor()
      // Before, "Cancel…" was offered again, and a second cancel changed nothing while the page said "Cancel sent".
      expect(await tab.getByRole('button', { name: /Cancel/ }).count()).toBe(0)
    } finally {
      await tab.close()
      if (id) await sql`UPDATE transactions SET status = 'FAILED', nonce = NULL, final_at = now(), updated_at = now() WHERE id = ${id}`
      await sql.end()
    }
  })

  it('a transaction opened by its id in capitals is retried from the page; one replaced for its validUntil says so, not "Cancel requested"', async () => {
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    const tab = await pageWithKey(ADMIN_KEY)
    let expiredId: string | undefined
    try {
      const [failed] = await sql<Array<{ id: string }>>`
        INSERT INTO transactions (chain_id, signer, "to", value, kind, api_key_name, status, error_code, error_message, final_at)
        VALUES (31337, ${SIGNER.address}, ${RECIPIENT}, 0, 'REQUEST', 'quiet', 'FAILED', 'SEND_REFUSED', 'refused', now()) RETURNING id`
      const id = failed!.id
      // Typed or pasted in capitals: the page showed it, and its Retry silently did nothing.
      await tab.goto(`${env.service.url}/#/tx/${id.toUpperCase()}`)
      const detail = tab.locator(`section.detail[data-id="${id}"]`)
      await tab.locator('.role', { hasText: 'admin' }).waitFor()
      await detail.getByRole('button', { name: 'Retry' }).click()
      await detail.locator('.notice.ok', { hasText: 'Retried' }).waitFor()
      await waitForStatus(env, id, 'CONFIRMED')

      // The service replaced this one itself (its validUntil passed): no admin asked for a cancel.
      expiredId = await insertPendingWithCancel(sql, 8, [3, 4], { code: 'EXPIRED', message: 'validUntil passed', validUntilPast: true })
      await tab.goto(`${env.service.url}/#/tx/${expiredId}`)
      const note = tab.locator(`section.detail[data-id="${expiredId}"] .tx-cancelling`)
      await note.waitFor()
      expect(await note.textContent()).toMatch(/^Its validUntil passed: a zero-value self-transfer at nonce 8 replaces it/)
    } finally {
      await tab.close()
      if (expiredId) await sql`UPDATE transactions SET status = 'FAILED', nonce = NULL, final_at = now(), updated_at = now() WHERE id = ${expiredId}`
      await sql.end()
    }
  })

  it('a key revoked while a final transaction is open goes back to the key form, saying so (not "Reconnecting…" for ever)', async () => {
    const created = await runCli(['keys', 'create', '--name', 'dash-doomed', '--role', 'reader'], { DATABASE_URL: env.databaseUrl })
    expect(created.code, created.stderr).toBe(0)
    const id = await submit(env, { to: RECIPIENT, value: '3' })
    await waitForStatus(env, id, 'CONFIRMED')
    const tab = await pageWithKey(created.stdout.trim())
    try {
      await tab.goto(`${env.service.url}/#/tx/${id}`)
      await tab.locator(`section.detail[data-id="${id}"][data-status="CONFIRMED"]`).waitFor()
      const revoked = await runCli(['keys', 'revoke', '--name', 'dash-doomed'], { DATABASE_URL: env.databaseUrl })
      expect(revoked.code, revoked.stderr).toBe(0)
      // The server closes the live socket (4403) at its next result (a change made with another key), and refuses it
      // again on every reconnect; nothing else on this page reads the API. Changes come until the page has shown why.
      const alert = tab.getByRole('alert').filter({ hasText: /no longer valid/ })
      await waitFor('the key form, saying the key is no longer valid', async () => {
        await submit(env, { to: RECIPIENT, value: '4' })
        return alert.isVisible()
      }, 25_000, 1_000)
    } finally {
      await tab.close()
    }
  }, 60_000)

  it('an admin is offered Cancel on a waiting request, not on a filler (which the server refuses to cancel)', async () => {
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    const tab = await pageWithKey(ADMIN_KEY)
    const ids: string[] = []
    try {
      // QUEUED rows of a signer the service does not hold: no stage touches them.
      for (const kind of ['REQUEST', 'FILLER'])
        ids.push(
          (
            await sql<Array<{ id: string }>>`
              INSERT INTO transactions (chain_id, signer, "to", value, kind, api_key_name)
              VALUES (31337, '0x3333333333333333333333333333333333333333', ${RECIPIENT}, 0, ${kind}, 'quiet') RETURNING id`
          )[0]!.id,
        )
      const [request, filler] = ids as [string, string]
      await tab.goto(`${env.service.url}/#/tx/${request}`)
      await tab.locator(`section.detail[data-id="${request}"]`).waitFor()
      await tab.getByRole('button', { name: 'Cancel…' }).waitFor()
      await tab.evaluate((id) => (location.hash = `#/tx/${id}`), filler)
      const detail = tab.locator(`section.detail[data-id="${filler}"]`)
      await detail.locator('dt:text-is("Kind") + dd', { hasText: 'FILLER' }).waitFor()
      await tab.locator('.role', { hasText: 'admin' }).waitFor()
      // Before, it was offered, and "Yes, cancel" only brought the server's INVALID_STATE refusal.
      expect(await tab.getByRole('button', { name: /Cancel/ }).count()).toBe(0)
      const { json } = await env.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { id } }`, { id: filler })
      expect(json.errors[0].extensions.code).toBe('INVALID_STATE')
    } finally {
      await tab.close()
      // Out of In flight again, for the tests after this one.
      if (ids.length) await sql`UPDATE transactions SET status = 'FAILED', error_code = 'CANCELLED', error_message = 'test', final_at = now(), updated_at = now() WHERE id IN ${sql(ids)}`
      await sql.end()
    }
  })

  it('an L2 fee bump shows: each attempt its own fees, in significant digits, the exact wei on hover', async () => {
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    const tab = await pageWithKey(ADMIN_KEY)
    try {
      // A confirmed request of a signer the service does not hold, bumped once by 12.5% at L2 fee levels.
      const signer = '0x4444444444444444444444444444444444444444'
      const id = (
        await sql<Array<{ id: string }>>`
          INSERT INTO transactions (chain_id, signer, "to", value, status, nonce, block_number, block_hash, mined_hash, receipt_status,
                                    api_key_name, first_sent_at, included_at, final_at)
          VALUES (31337, ${signer}, ${RECIPIENT}, 1, 'CONFIRMED', 0, 1, ${'0x' + 'b1'.repeat(32)}, ${'0x' + 'a2'.repeat(32)}, 'success',
                  'l2', now(), now(), now()) RETURNING id`
      )[0]!.id
      await sql`
        INSERT INTO attempts (transaction_id, execution, chain_id, signer, nonce, hash, raw, gas_limit, max_fee_per_gas, max_priority_fee_per_gas, status, sent_at)
        VALUES (${id}, 1, 31337, ${signer}, 0, ${'0x' + 'a1'.repeat(32)}, '0x', 21000, 1000000, 1000000, 'REPLACED', now()),
               (${id}, 1, 31337, ${signer}, 0, ${'0x' + 'a2'.repeat(32)}, '0x', 21000, 1125000, 1125000, 'MINED', now())`
      await tab.goto(`${env.service.url}/#/tx/${id}`)
      const attempts = tab.locator(`section.detail[data-id="${id}"] .attempt`)
      await attempts.nth(1).waitFor()
      const fees = (n: number) => attempts.nth(n).locator('dt:text-is("Fees") + dd')
      // Before, both attempts read "max fee 0.001 gwei · priority 0.001 gwei".
      expect(await fees(0).textContent()).toContain('max fee 0.001 gwei · priority 0.001 gwei')
      expect(await fees(1).textContent()).toContain('max fee 0.001125 gwei · priority 0.001125 gwei')
      expect(await fees(1).locator('[title]').evaluateAll((els) => els.map((el) => `${el.textContent} = ${el.getAttribute('title')}`))).toEqual([
        '0.001125 gwei = 1125000 wei',
        '0.001125 gwei = 1125000 wei',
      ])
    } finally {
      await tab.close()
      await sql.end()
    }
  })

  it('back from a transaction (its link or the browser\'s Back), the list is where it was scrolled to', async () => {
    // Enough rows to scroll: confirmed transfers of a signer the service does not hold, which no stage touches.
    await insertConfirmedRows(env.databaseUrl, { signer: '0x7777777777777777777777777777777777777777', to: RECIPIENT, count: 80, firstBlock: 4_000_000, seed: 'back', apiKeyName: 'back' })
    const tab = await pageWithKey(ADMIN_KEY)
    try {
      await tab.goto(`${env.service.url}/#/`)
      const rows = tab.locator('tr[data-id]')
      await rows.nth(49).waitFor()
      for (const back of [() => tab.locator('a.back').click(), () => tab.goBack()]) {
        await rows.nth(40).scrollIntoViewIfNeeded()
        const scrolled = await tab.evaluate(() => window.scrollY)
        expect(scrolled).toBeGreaterThan(1_000)
        const id = (await rows.nth(40).getAttribute('data-id'))!
        await rows.nth(40).locator('td.c-value').click()
        await tab.locator(`section.detail[data-id="${id}"]`).waitFor()
        expect(await tab.evaluate(() => window.scrollY)).toBe(0)
        await back()
        await tab.locator('section.list').waitFor()
        await rows.nth(40).waitFor()
        // Before: at the top, every time (the detail page's scroll to its top was taken for the list's).
        await expect.poll(() => tab.evaluate(() => window.scrollY)).toBe(scrolled)
        await tab.evaluate(() => window.scrollTo(0, 0))
      }
    } finally {
      await tab.close()
    }
  })

  it('a link to a transaction with a stray % shows Not found, not a page that never mounted', async () => {
    const tab = await pageWithKey(ADMIN_KEY)
    try {
      // Before: decodeURIComponent threw before the app mounted, and the page said the dashboard was not built.
      await tab.goto(`${env.service.url}/#/tx/6f0c%`)
      await tab.getByRole('heading', { name: 'Not found' }).waitFor()
      expect(await tab.locator('section.detail').textContent()).toContain('"6f0c%" is not a transaction id')
      // The same link followed from a page already open.
      await tab.goto(`${env.service.url}/#/`)
      await tab.locator('section.list').waitFor()
      await tab.evaluate(() => (location.hash = '#/tx/%E0%A4%A'))
      await tab.getByRole('heading', { name: 'Not found' }).waitFor()
    } finally {
      await tab.close()
    }
  })

  it("a transaction's page whose re-read fails says so over what it shows, until a re-read succeeds", async () => {
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    const tab = await pageWithKey(ADMIN_KEY)
    let id: string | undefined
    try {
      // QUEUED (in flight, so its page re-reads it every 5 s), of a signer the service does not hold: no stage touches it.
      id = (
        await sql<Array<{ id: string }>>`
          INSERT INTO transactions (chain_id, signer, "to", value, api_key_name)
          VALUES (31337, '0x8888888888888888888888888888888888888888', ${RECIPIENT}, 9, 'quiet') RETURNING id`
      )[0]!.id
      await tab.goto(`${env.service.url}/#/tx/${id}`)
      const detail = tab.locator(`section.detail[data-id="${id}"][data-status="QUEUED"]`)
      await detail.waitFor()
      // The API stops answering (as when its database is down): the next re-read fails.
      await tab.route('**/graphql', (route) => ((route.request().postData() ?? '').includes('query Tx') ? route.abort('connectionreset') : route.continue()))
      const notice = tab.getByRole('alert').filter({ hasText: 'This page could not be refreshed' })
      // Before: nothing said so; the page went on showing what it read last as if it were current.
      await notice.waitFor({ timeout: 10_000 })
      expect(await notice.textContent()).toContain('Cannot reach the API')
      await detail.waitFor()
      await tab.unroute('**/graphql')
      await notice.waitFor({ state: 'detached', timeout: 10_000 })
      await detail.waitFor()
    } finally {
      await tab.close()
      // Out of In flight, for the tests after this one.
      if (id) await sql`UPDATE transactions SET status = 'FAILED', error_code = 'CANCELLED', error_message = 'test', final_at = now(), updated_at = now() WHERE id = ${id}`
      await sql.end()
    }
  })

  it("a filter whose counts cannot be read shows no counts, not the previous filter's", async () => {
    // At least one transaction, so the unfiltered counts are not those of a signer with none.
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    await sql`
      INSERT INTO transactions (chain_id, signer, "to", value, kind, api_key_name, status, error_code, error_message, final_at)
      VALUES (31337, '0x8888888888888888888888888888888888888888', ${RECIPIENT}, 0, 'REQUEST', 'quiet', 'FAILED', 'SEND_REFUSED', 'refused', now())`.finally(() => sql.end())
    const tab = await pageWithKey(ADMIN_KEY)
    try {
      await tab.goto(`${env.service.url}/#/`)
      await tab.locator('a[data-tab="failed"] .count', { hasText: /^[1-9]/ }).waitFor()
      // The counts read for another signer fails.
      const other = '0x9999999999999999999999999999999999999999'
      let failed = 0
      await tab.route('**/graphql', (route) => {
        const body = route.request().postData() ?? ''
        if (!(body.includes('query Counts') && body.includes(other))) return route.continue()
        failed++
        return route.abort('connectionreset')
      })
      await tab.evaluate((from) => (location.hash = `#/?from=${from}`), other)
      await tab.getByRole('heading', { name: 'Nothing here' }).waitFor()
      await expect.poll(() => failed, { timeout: 10_000 }).toBeGreaterThan(0)
      await new Promise((r) => setTimeout(r, 300))
      // Before: the tabs kept the unfiltered numbers beside a filter that matches nothing.
      expect(await tab.locator('nav.tabs .count').allTextContents()).toEqual([])
      // Back to no filter, its counts are read and shown again.
      await tab.evaluate(() => (location.hash = '#/'))
      await tab.locator('a[data-tab="failed"] .count', { hasText: /^[1-9]/ }).waitFor()
    } finally {
      await tab.close()
    }
  })

  it('Copy copies on a plain-HTTP origin (no navigator.clipboard) and when the clipboard API refuses; says so when nothing could copy', async () => {
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    const id = (
      await sql<Array<{ id: string }>>`
        INSERT INTO transactions (chain_id, signer, "to", value, kind, api_key_name, status, error_code, error_message, final_at)
        VALUES (31337, '0x8888888888888888888888888888888888888888', ${RECIPIENT}, 0, 'REQUEST', 'quiet', 'FAILED', 'SEND_REFUSED', 'refused', now())
        RETURNING id`.finally(() => sql.end())
    )[0]!.id
    // The service by a name other than localhost, over plain HTTP (as on a LAN): not a secure context.
    const named = await launchBrowser(['--host-resolver-rules=MAP broadcaster.lan 127.0.0.1'])
    /** Opens the transaction's page at `origin` and clicks its id's Copy: what the button then says, and what is on the clipboard. */
    const copyAt = async (b: Browser, origin: string, init: () => void = () => {}) => {
      const context = await b.newContext({ viewport: WIDE })
      try {
        // The test reads the clipboard from a page on the service's own origin (secure: 127.0.0.1), allowed to.
        await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.service.url })
        const reader = await context.newPage()
        await reader.goto(`${env.service.url}/`)
        await reader.evaluate(() => navigator.clipboard.writeText('before'))
        const p = await context.newPage()
        await p.addInitScript((k) => sessionStorage.setItem('txb.apiKey', k), ADMIN_KEY)
        await p.addInitScript(init)
        await p.goto(`${origin}/#/tx/${id}`)
        const button = p.locator(`section.detail[data-id="${id}"] .id-line button.copy`)
        await button.click()
        await button.filter({ hasNotText: /^Copy$/ }).waitFor({ timeout: 2_000 })
        const says = await button.textContent()
        const secure = await p.evaluate(() => window.isSecureContext)
        await reader.bringToFront()
        return { secure, says, clipboard: await reader.evaluate(() => navigator.clipboard.readText()) }
      } finally {
        await context.close()
      }
    }
    try {
      // Before: the button did nothing, and said nothing.
      const port = new URL(env.service.url).port
      expect(await copyAt(named, `http://broadcaster.lan:${port}`)).toEqual({ secure: false, says: 'Copied', clipboard: id })
      // The clipboard API refuses (no permission, the page not focused): before, the rejection went unhandled.
      const refused = () => void (navigator.clipboard.writeText = () => Promise.reject(new DOMException('Write permission denied.', 'NotAllowedError')))
      expect(await copyAt(browser, env.service.url, refused)).toEqual({ secure: true, says: 'Copied', clipboard: id })
      // Nothing can copy: the button says so.
      const nothing = () => {
        navigator.clipboard.writeText = () => Promise.reject(new DOMException('Write permission denied.', 'NotAllowedError'))
        document.execCommand = () => false
      }
      expect(await copyAt(browser, env.service.url, nothing)).toEqual({ secure: true, says: 'Copy failed', clipboard: 'before' })
    } finally {
      await named.close()
    }
  })
})
