import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { insertConfirmedRows } from './helpers/confirmedRows.ts'
import { ensureWebBuilt, launchBrowser } from './helpers/browser.ts'
import { getTx, submit, waitForStatus } from './helpers/chainControl.ts'
import { ADMIN_KEY, RECIPIENT, startTestEnv, type TestEnv } from './helpers/testService.ts'

/** Fee bumps on a chain that mines nothing (as dashboard.test.ts's service, with a chain that never includes). */
const BUMP_AFTER_MS = 8_000

describe('dashboard: the hash of a row below the newest 100 (headless Chromium against the real service)', () => {
  let env: TestEnv
  let browser: Browser

  beforeAll(async () => {
    ensureWebBuilt()
    ;[env, browser] = await Promise.all([
      startTestEnv({ anvil: { noMining: true }, config: (c) => (c.chains[0].fees = { bumpAfterMs: BUMP_AFTER_MS }) }),
      launchBrowser(),
    ])
  }, 120_000)
  afterAll(async () => {
    await browser?.close()
    await env?.stop()
  })

  it("a row far down the list that gets a fee bump shows the new attempt's hash, not the first one's", async () => {
    const id = await submit(env, { to: RECIPIENT, value: '1' })
    const first = await waitForStatus(env, id, (t) => t.status === 'PENDING' && t.attempts[0]?.status === 'SENT')
    // 160 newer rows put it below the newest 100, which the page's periodic re-read brings (with their hashes):
    // confirmed transfers of a signer the service does not hold, which no stage touches.
    await insertConfirmedRows(env.databaseUrl, { signer: '0x6666666666666666666666666666666666666666', to: RECIPIENT, count: 160, firstBlock: 3_000_000, seed: 'above', apiKeyName: 'above' })
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } })
    await page.addInitScript((k) => sessionStorage.setItem('txb.apiKey', k), ADMIN_KEY)
    try {
      await page.goto(`${env.service.url}/#/`)
      await page.locator('.live-live').waitFor()
      const rows = page.locator('tr[data-id]')
      for (const n of [100, 150, 161]) {
        await page.getByRole('button', { name: 'Load more' }).click()
        await rows.nth(n - 1).waitFor()
      }
      const row = page.locator(`tr[data-id="${id}"]`)
      expect(await rows.evaluateAll((els, id) => els.findIndex((el) => el.getAttribute('data-id') === id), id)).toBe(160)
      const shownHash = () => row.locator('.c-hash .hex').getAttribute('title')
      // As loaded: the API's latest attempt (the first, unless a raise came while a slow machine loaded the page).
      const loaded = await getTx(env, id)
      expect(await shownHash()).toBe(loaded.hash)

      // Not mined, it is replaced by a bumped attempt; the live feed says so, without the hash.
      const bumped = await waitForStatus(env, id, (t) => t.attempts.length > loaded.attempts.length, BUMP_AFTER_MS + 20_000)
      expect(bumped.hash).not.toBe(loaded.hash)
      // Before, the row kept the first attempt's hash until a reload. (Bumps go on every BUMP_AFTER_MS: the hash
      // shown is compared with the one the API has at the time.)
      await expect
        .poll(async () => {
          const [shown, now] = [await shownHash(), (await getTx(env, id)).hash]
          return shown === now && shown !== loaded.hash
        }, { timeout: 10_000 })
        .toBe(true)
      expect(await row.getAttribute('data-status')).toBe('PENDING')
    } finally {
      await page.close()
    }
  })
})
