import { createClient, type Client } from 'graphql-ws'
import postgres from 'postgres'
import type { Browser, Page } from 'playwright-core'
import WebSocket from 'ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureWebBuilt, launchBrowser } from './helpers/browser.ts'
import { submit, waitForStatus } from './helpers/chainControl.ts'
import { ADMIN_KEY, RECIPIENT, SIGNER, startTestEnv, type TestEnv } from './helpers/testService.ts'

/** Subscriptions the admin key may hold at once here: as many as the page holds (its list, and a transaction's page). */
const MAX_SUBSCRIPTIONS = 2
const ROWS = `subscription { transactionUpdated { id } }`

describe('dashboard: a live subscription the server refuses (headless Chromium against the real service)', () => {
  let env: TestEnv
  let browser: Browser
  let holder: Client | undefined

  beforeAll(async () => {
    ensureWebBuilt()
    ;[env, browser] = await Promise.all([
      startTestEnv({ anvil: { blockTimeSec: 0.3 }, config: (c) => (c.limits = { maxSubscriptionsPerKey: MAX_SUBSCRIPTIONS }) }),
      launchBrowser(),
    ])
  }, 120_000)
  afterAll(async () => {
    await holder?.dispose()
    await browser?.close()
    await env?.stop()
  })

  /** Every text the Live pill showed, in order (repeats collapsed), from before the app mounted. */
  const pillTexts = (page: Page) => page.evaluate(() => (window as unknown as { pillSeen: string[] }).pillSeen.slice())

  it('a list and a transaction page refused their subscription (the key holds all it may) say Reconnecting…, never Live, and go live once a place is free', async () => {
    // Another client of the same key holds every subscription the key may.
    holder = createClient({ url: `${env.service.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${ADMIN_KEY}` } })
    const hold = () => holder!.subscribe({ query: ROWS }, { next: () => {}, error: () => {}, complete: () => {} })
    /** What the server answers one more subscription of the key: its refusal comes as a result with errors, then complete. */
    const oneMore = () =>
      new Promise<string>((resolve) => {
        const stop = holder!.subscribe(
          { query: ROWS },
          {
            next: (msg) => resolve(String(msg.errors?.[0]?.extensions?.code ?? 'data')),
            error: () => resolve('error'),
            complete: () => resolve('complete'),
          },
        )
        setTimeout(() => {
          stop()
          resolve('accepted')
        }, 1_000)
      })
    const held = [hold(), hold()]
    expect(await oneMore()).toBe('TOO_MANY_SUBSCRIPTIONS')

    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } })
    await page.addInitScript((k) => {
      sessionStorage.setItem('txb.apiKey', k)
      const seen: string[] = ((window as unknown as { pillSeen: string[] }).pillSeen = [])
      new MutationObserver(() => {
        const text = document.querySelector('.live')?.textContent
        if (text && seen.at(-1) !== text) seen.push(text)
      }).observe(document, { subtree: true, childList: true, characterData: true })
    }, ADMIN_KEY)
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      await page.goto(`${env.service.url}/#/`)
      await page.getByRole('heading', { name: 'No transactions yet' }).waitFor()
      // Before: "Live" for good, while no change would ever arrive.
      await page.locator('.live-offline', { hasText: 'Reconnecting…' }).waitFor({ timeout: 10_000 })
      // A few of its retries (refused again) later, it has not claimed Live once.
      await new Promise((r) => setTimeout(r, 4_000))
      expect(await pillTexts(page)).not.toContain('Live')
      expect(await page.locator('.live').textContent()).toBe('Reconnecting…')

      // A place comes free: the list subscribes again and is live.
      held[0]!()
      await page.locator('.live-live').waitFor({ timeout: 20_000 })
      // Only the live feed may bring rows now: the list's periodic re-read (and any other read of rows) fails.
      await page.route('**/graphql', (route) => {
        const body = route.request().postData() ?? ''
        return /query (Counts|List|RowsById)/.test(body) ? route.abort('connectionreset') : route.continue()
      })
      const id = await submit(env, { to: RECIPIENT, value: '7' })
      await page.locator(`tr[data-id="${id}"] [data-status="CONFIRMED"]`).waitFor({ timeout: 20_000 })
      await page.unroute('**/graphql')

      // A failed transaction's page (it does not re-read by itself: only its subscription brings a change), opened
      // while the list holds one place and the other client the other.
      const [failed] = await sql<Array<{ id: string }>>`
        INSERT INTO transactions (chain_id, signer, "to", value, kind, api_key_name, status, error_code, error_message, final_at)
        VALUES (31337, ${SIGNER.address}, ${RECIPIENT}, 0, 'REQUEST', 'quiet', 'FAILED', 'SEND_REFUSED', 'refused', now()) RETURNING id`
      const detail = page.locator(`section.detail[data-id="${failed!.id}"]`)
      await page.evaluate((id) => (location.hash = `#/tx/${id}`), failed!.id)
      await detail.locator('.tx-error', { hasText: 'SEND_REFUSED' }).waitFor()
      // Before: its refusal was dropped (`error: () => {}`), the pill said Live, and the page never changed again.
      await page.locator('.live-offline', { hasText: 'Reconnecting…' }).waitFor({ timeout: 10_000 })
      held[1]!()
      await page.locator('.live-live').waitFor({ timeout: 20_000 })
      const retried = await env.graphql(`mutation($id: ID!) { retryTransaction(id: $id) { execution } }`, { id: failed!.id })
      expect(retried.json.data.retryTransaction.execution).toBe(2)
      await waitForStatus(env, failed!.id, 'CONFIRMED')
      await page.locator(`section.detail[data-id="${failed!.id}"][data-status="CONFIRMED"]`).waitFor({ timeout: 10_000 })
    } finally {
      await page.close()
      await sql.end()
    }
  }, 90_000)
})
