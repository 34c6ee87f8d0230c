import { existsSync } from 'node:fs'
import type { Sql } from 'postgres'
import { CHROMIUM, ensureWebBuilt, launchBrowser } from '../tests/helpers/browser.ts'

export type DashboardResult =
  | { skipped: string }
  | {
      /** Rows in the transactions table when the page was loaded. */
      rows: number
      /** From navigation start to the frame after the first page's rows were rendered, per load (a new page each time). */
      firstPageMs: number[]
      bestMs: number
      /** The Failed tab's first page, once the oldest fifth of those rows are FAILED (old failures, a busy history). */
      failed: { rows: number; firstPageMs: number[]; bestMs: number }
    }

/** Final rows of a signer the service does not hold, so no stage touches them. */
const FOREIGN_SIGNER = '0x1111111111111111111111111111111111111111'

/**
 * The dashboard's first page with many transactions in the table (the target: under 1 s). Adds `rows`
 * CONFIRMED rows of a signer the service does not hold, then opens the dashboard in Debian's chromium
 * `loads` times, each in a new page with the API key in sessionStorage as the login leaves it, and reads
 * the page's own mark (web/src/ListView.tsx: `txb:first-rows`, the frame after the first rows rendered).
 * Skipped, with the reason, when there is no chromium.
 */
export async function runDashboard(opts: { sql: Sql; serviceUrl: string; apiKey: string; chainId: number; rows: number; loads?: number }): Promise<DashboardResult> {
  if (!existsSync(CHROMIUM)) return { skipped: `no browser at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)` }
  ensureWebBuilt()
  const { sql } = opts
  await sql`
    INSERT INTO transactions (chain_id, signer, "to", value, status, nonce, block_number, block_hash, mined_hash, receipt_status,
                              api_key_name, first_sent_at, included_at, final_at, created_at, updated_at)
    SELECT ${opts.chainId}, ${FOREIGN_SIGNER}, ${FOREIGN_SIGNER}, g::numeric, 'CONFIRMED', g, 1000000 + g,
           '0x' || md5('b' || g) || md5('c' || g), '0x' || md5('h' || g) || md5('i' || g), 'success',
           'bench-dashboard', now(), now(), now(), now() - make_interval(secs => ${opts.rows} - g), now()
    FROM generate_series(1, ${opts.rows}::int) AS g`
  await sql`ANALYZE transactions`
  const [count] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM transactions`
  const browser = await launchBrowser()
  const loads = async (hash: string) => {
    const firstPageMs: number[] = []
    for (let i = 0; i < (opts.loads ?? 3); i++) {
      const page = await browser.newPage({ viewport: { width: 1280, height: 860 } })
      try {
        await page.addInitScript((key) => sessionStorage.setItem('txb.apiKey', key), opts.apiKey)
        await page.goto(`${opts.serviceUrl}/${hash}`)
        await page.locator('tr[data-id]').first().waitFor({ timeout: 30_000 })
        await page.waitForFunction(() => performance.getEntriesByName('txb:first-rows').length > 0, undefined, { timeout: 30_000 })
        firstPageMs.push(Math.round(await page.evaluate(() => performance.getEntriesByName('txb:first-rows')[0]!.startTime)))
      } finally {
        await page.close()
      }
    }
    return firstPageMs
  }
  try {
    const firstPageMs = await loads('#/')
    // Failures are old and the newest rows all passed: a plan that walks the table from its newest row reads four
    // fifths of it before the first failure (575 ms in the query alone with a million rows, before the fix).
    const [failed] = await sql<{ n: number }[]>`
      WITH f AS (
        UPDATE transactions SET status = 'FAILED', error_code = 'BENCH', error_message = 'bench: an old failure', nonce = NULL, block_number = NULL,
          block_hash = NULL, mined_hash = NULL, receipt_status = NULL
        WHERE signer = ${FOREIGN_SIGNER} AND value <= ${Math.floor(opts.rows / 5)}
        RETURNING 1)
      SELECT count(*)::int AS n FROM f`
    await sql`ANALYZE transactions`
    const failedMs = await loads('#/?tab=failed')
    return { rows: count!.n, firstPageMs, bestMs: Math.min(...firstPageMs), failed: { rows: failed!.n, firstPageMs: failedMs, bestMs: Math.min(...failedMs) } }
  } finally {
    await browser.close()
  }
}
