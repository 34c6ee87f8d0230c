import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import postgres from 'postgres'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../src/config/loadConfig.ts'
import { launchBrowser } from './helpers/browser.ts'
import { ADMIN_KEY, RECIPIENT, startTestEnv, type TestEnv } from './helpers/testService.ts'

const PAGE_KEY = 'page-submitter-key-0123456789'
const OTHER_KEY = 'other-submitter-key-0123456789'

/** A blank page on its own port: its own origin, http://127.0.0.1:<port>. */
async function startPageServer(): Promise<{ origin: string; server: Server }> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>page</title>'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

type FetchOutcome = { status: number; body: any } | { blocked: string }

/** What the page itself sees when it calls the API with fetch: an answer, or the browser refusing it. */
function pageFetch(page: Page, url: string, init: { method: string; headers: Record<string, string>; body?: string }): Promise<FetchOutcome> {
  return page.evaluate(
    async ({ url, init }) => {
      try {
        const res = await fetch(url, init)
        return { status: res.status, body: await res.json().catch(() => null) }
      } catch (err) {
        return { blocked: String(err) }
      }
    },
    { url, init },
  )
}

/** Whether the page can open the GraphQL WebSocket (graphql-ws protocol) from its origin. */
function pageWebSocket(page: Page, url: string): Promise<'open' | 'refused'> {
  return page.evaluate(
    (url) =>
      new Promise<'open' | 'refused'>((resolve) => {
        const ws = new WebSocket(url, 'graphql-transport-ws')
        ws.onopen = () => {
          ws.close()
          resolve('open')
        }
        ws.onerror = () => resolve('refused')
      }),
    url,
  )
}

describe('CORS: which web pages may call the API from a browser (real chromium)', () => {
  let env: TestEnv
  let open: TestEnv
  let browser: Browser
  let allowed: { origin: string; server: Server }
  let foreign: { origin: string; server: Server }
  let sql: postgres.Sql
  let allowedPage: Page
  let foreignPage: Page

  beforeAll(async () => {
    // Two more names for this machine, as DNS would give them: an attacker's site rebound to it, and a name the
    // operator lists in allowedHosts.
    const names = launchBrowser(['--host-resolver-rules=MAP rebound.example 127.0.0.1, MAP relayer.internal 127.0.0.1'])
    ;[allowed, foreign, browser] = await Promise.all([startPageServer(), startPageServer(), names])
    ;[env, open] = await Promise.all([
      startTestEnv({
        config: (c) => {
          c.apiKeys.push({ name: 'page', role: 'submitter', key: PAGE_KEY, allowedOrigins: [allowed.origin] })
          c.apiKeys.push({ name: 'other', role: 'submitter', key: OTHER_KEY })
        },
      }),
      // auth disabled: requests without a key act as admin, so no other site may send them from a browser.
      startTestEnv({
        config: (c) => {
          c.auth = 'disabled'
          c.allowedHosts = ['relayer.internal']
        },
      }),
    ])
    sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    allowedPage = await browser.newPage()
    await allowedPage.goto(allowed.origin)
    foreignPage = await browser.newPage()
    await foreignPage.goto(foreign.origin)
  }, 120_000)
  afterAll(async () => {
    await sql?.end()
    await browser?.close()
    await Promise.all([env?.stop(), open?.stop()])
    for (const s of [allowed, foreign]) s?.server.close()
  })

  const submit = (key?: string) => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ to: RECIPIENT, value: '1' }),
  })
  const stored = async () => (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM transactions`)[0]!.n

  it('a page on an origin its key lists submits over REST and GraphQL and reads the answers', async () => {
    const rest = await pageFetch(allowedPage, `${env.service.url}/broadcast_transaction`, submit(PAGE_KEY))
    expect(rest).toMatchObject({ status: 200, body: { status: 'QUEUED' } })
    const id = (rest as { body: { transactionId: string } }).body.transactionId
    expect((await sql`SELECT id FROM transactions WHERE id = ${id}`).length).toBe(1)
    const gql = await pageFetch(allowedPage, `${env.service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${PAGE_KEY}` },
      body: JSON.stringify({ query: `mutation { broadcastTransaction(input: { to: "${RECIPIENT}", value: "2" }) { id status } }` }),
    })
    expect(gql).toMatchObject({ status: 200, body: { data: { broadcastTransaction: { status: 'QUEUED' } } } })
    // Errors are readable too (a bad field), so the page can show why.
    const bad = await pageFetch(allowedPage, `${env.service.url}/broadcast_transaction`, { ...submit(PAGE_KEY), body: JSON.stringify({ to: '0x12' }) })
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'INVALID_ADDRESS', field: 'to' } } })
    expect(await pageWebSocket(allowedPage, `${env.service.url.replace('http', 'ws')}/graphql`)).toBe('open')
  })

  it('a page on another origin is refused by the browser, and nothing is stored (before: any origin was let in)', async () => {
    const before = await stored()
    const rest = await pageFetch(foreignPage, `${env.service.url}/broadcast_transaction`, submit(PAGE_KEY))
    expect(rest).toHaveProperty('blocked')
    const gql = await pageFetch(foreignPage, `${env.service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
      body: JSON.stringify({ query: `mutation { broadcastTransaction(input: { to: "${RECIPIENT}", value: "3" }) { id } }` }),
    })
    expect(gql).toHaveProperty('blocked')
    expect(await pageWebSocket(foreignPage, `${env.service.url.replace('http', 'ws')}/graphql`)).toBe('refused')
    expect(await stored()).toBe(before)
  })

  it("a key that does not list the page's origin is refused with 403, even from an origin another key lists", async () => {
    const before = await stored()
    const other = await pageFetch(allowedPage, `${env.service.url}/broadcast_transaction`, submit(OTHER_KEY))
    expect(other).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } })
    expect((other as { body: { error: { message: string } } }).body.error.message).toContain(allowed.origin)
    expect(await stored()).toBe(before)
  })

  it('the preflight answers for a listed origin without a key, and never allows credentials', async () => {
    const res = await fetch(`${env.service.url}/broadcast_transaction`, {
      method: 'OPTIONS',
      headers: { origin: allowed.origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    })
    expect(res.status).toBe(204)
    expect(res.headers.get('access-control-allow-origin')).toBe(allowed.origin)
    expect(res.headers.get('access-control-allow-headers')).toContain('authorization')
    expect(res.headers.get('access-control-allow-credentials')).toBeNull()
    const foreignPreflight = await fetch(`${env.service.url}/graphql`, {
      method: 'OPTIONS',
      headers: { origin: foreign.origin, 'access-control-request-method': 'POST' },
    })
    expect(foreignPreflight.headers.get('access-control-allow-origin')).toBeNull()
  })

  it('with auth disabled, no other site can act as admin from an operator’s browser; the server’s own pages can', async () => {
    const openSql = postgres(open.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      const count = async () => (await openSql<{ n: number }[]>`SELECT count(*)::int AS n FROM transactions`)[0]!.n
      expect(await pageFetch(foreignPage, `${open.service.url}/broadcast_transaction`, submit())).toHaveProperty('blocked')
      // A "simple" request (no preflight) is not JSON: refused before anything is stored.
      const simple = await pageFetch(foreignPage, `${open.service.url}/broadcast_transaction`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ to: RECIPIENT, value: '1' }),
      })
      expect(simple).toHaveProperty('blocked')
      // The same request from a non-browser client claiming that origin: 403.
      const forged = await fetch(`${open.service.url}/broadcast_transaction`, { ...submit(), headers: { ...submit().headers, origin: foreign.origin } })
      expect(forged.status).toBe(403)
      // The server's own pages behind a proxy that rewrites Host (the Origin is the public name): the browser's
      // Sec-Fetch-Site says same-origin, which no page can forge.
      const proxied = await fetch(`${open.service.url}/broadcast_transaction`, {
        ...submit(),
        headers: { ...submit().headers, origin: 'https://relayer.example.com', 'sec-fetch-site': 'same-origin' },
      })
      expect(proxied.status).toBe(200)
      expect(await count()).toBe(1)
      // The dashboard's origin (the server's own) is fine.
      const ownPage = await browser.newPage()
      await ownPage.goto(`${open.service.url}/healthz`)
      expect(await pageFetch(ownPage, `${open.service.url}/broadcast_transaction`, submit())).toMatchObject({ status: 200 })
      await ownPage.close()
      expect(await count()).toBe(2)
    } finally {
      await openSql.end()
    }
  })

  it('with auth disabled, a site whose name was rebound to this server (DNS rebinding) cannot act as admin; IP addresses, localhost and allowedHosts names can', async () => {
    const openSql = postgres(open.databaseUrl, { max: 1, onnotice: () => {} })
    const port = new URL(open.service.url).port
    try {
      const count = async () => (await openSql<{ n: number }[]>`SELECT count(*)::int AS n FROM transactions`)[0]!.n
      const before = await count()
      // The attacker's page, loaded while its name pointed at the attacker, is now served by this server under
      // that name: to the browser every call below is same-origin (before: all were taken, as admin).
      const rebound = await browser.newPage()
      await rebound.goto(`http://rebound.example:${port}/healthz`)
      const posted = await pageFetch(rebound, `http://rebound.example:${port}/broadcast_transaction`, submit())
      expect(posted).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } })
      expect((posted as { body: { error: { message: string } } }).body.error.message).toMatch(/allowedHosts/)
      const read = await pageFetch(rebound, `http://rebound.example:${port}/graphql?query=${encodeURIComponent('{ transactions(first: 1) { edges { node { id } } } }')}`, {
        method: 'GET',
        headers: { accept: 'application/json' },
      })
      // Over plain http a same-origin GET carries no Origin and no Sec-Fetch-Site: the name alone tells it apart.
      expect(read).toMatchObject({ status: 403 })
      await rebound.close()
      // So any client reaching it by a name not listed is refused too, with the fix in the message.
      const byName = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: Number(port), path: '/transactions/00000000-0000-4000-8000-000000000000', headers: { host: `relayer.other:${port}` } }, (res) => {
          let body = ''
          res.on('data', (c) => (body += c))
          res.on('end', () => resolve({ status: res.statusCode!, body }))
        })
        req.on('error', reject)
        req.end()
      })
      expect(byName.status).toBe(403)
      expect(byName.body).toMatch(/allowedHosts, not at relayer\.other/)
      expect(await count()).toBe(before)
      for (const name of ['localhost', '127.0.0.1', 'relayer.internal']) {
        const own = await browser.newPage()
        await own.goto(`http://${name}:${port}/healthz`)
        expect(await pageFetch(own, `http://${name}:${port}/broadcast_transaction`, submit()), name).toMatchObject({ status: 200 })
        await own.close()
      }
      expect(await count()).toBe(before + 3)
    } finally {
      await openSql.end()
    }
  })

  it('allowedOrigins must be origins (scheme, host, port): a path or a bare host is a start-up error naming the field', () => {
    const raw = (allowedOrigins: string[]) => ({
      chains: [{ chainId: 31337, name: 'anvil', providers: [{ name: 'a', url: 'http://127.0.0.1:8545' }] }],
      signers: [{ name: 's', chainIds: [31337], privateKey: `0x${'11'.repeat(32)}` }],
      apiKeys: [{ name: 'k', role: 'reader', key: 'k'.repeat(16), allowedOrigins }],
    })
    expect(() => parseConfig(raw(['https://app.example.com/login']), {})).toThrow(/apiKeys\[0\]\.allowedOrigins\[0\].*origin/s)
    expect(() => parseConfig(raw(['app.example.com']), {})).toThrow(/allowedOrigins/)
    expect(() => parseConfig(raw(['https://app.example.com', 'http://localhost:3000/']), {})).not.toThrow()
  })
})
