import { createReadStream, existsSync, statSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { extname, join, normalize, sep } from 'node:path'
import { AggregatorRegistry } from 'prom-client'
import { fileURLToPath } from 'node:url'
import { parseTransactionId } from '../accept/parseFields.ts'
import { acceptTransaction } from '../accept/acceptTransaction.ts'
import { validateBroadcastRequest } from '../accept/validateBroadcastRequest.ts'
import type { ServiceContext } from '../context.ts'
import { ERROR_CODE, InputError, RetryLaterError } from '../core/errors.ts'
import { databaseUnavailable, isDatabaseUnavailable } from '../db/databaseUnavailable.ts'
import { getTransaction } from '../store/readTransactions.ts'
import type { Readiness } from '../health/readiness.ts'
import type { MetricsJson } from '../pipeline/pipelineProcess.ts'
import { keyIsValid, requireRole, type Authenticator, type Principal } from './auth.ts'
import { fetchSiteOf, type CorsPolicy } from './cors.ts'
import type { Yoga } from './graphql/createYoga.ts'
import type { RateLimiter } from './rateLimit.ts'
import { checkDeclaredLength, readBody, readJson } from './readBody.ts'
import { canServeDirectly, serveGraphQLPost } from './graphql/serveGraphQLPost.ts'
import { loadTransactionJson } from './rest/transactionJson.ts'

const WEB_DIRS = [fileURLToPath(new URL('../../web/dist', import.meta.url)), fileURLToPath(new URL('../../web', import.meta.url))]
const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
}

/**
 * The dashboard has admin buttons (retry, cancel): no other site may frame it to trick a click on one. Nothing is
 * sniffed as another type, and the explorer links do not tell the explorer the dashboard's (internal) address.
 * (No script-src: the built page inlines its script.)
 */
const PAGE_HEADERS = {
  'content-security-policy': "frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

/** 429s and 503s say when to come back. */
function retryAfter(err: InputError): Record<string, string> {
  return err instanceof RetryLaterError ? { 'retry-after': String(err.retryAfterSeconds) } : {}
}

function sendError(res: ServerResponse, err: InputError): void {
  sendJson(res, err.httpStatus, { error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } }, retryAfter(err))
}

/** decodeURIComponent throws URIError on a malformed escape (`%zz`): that is the client's mistake, a 400. */
function decodePath(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    throw new InputError(ERROR_CODE.INVALID_INPUT, 'Malformed percent-encoding in the URL path')
  }
}

function serveStatic(req: IncomingMessage, res: ServerResponse): boolean {
  const path = decodePath(new URL(req.url ?? '/', 'http://x').pathname)
  for (const dir of WEB_DIRS) {
    if (!existsSync(join(dir, 'index.html'))) continue
    let file = normalize(join(dir, path))
    // Inside the directory, not a sibling whose name starts the same (web/dist-old for web/dist).
    if (file !== dir && !file.startsWith(dir.endsWith(sep) ? dir : dir + sep)) return false
    if (!existsSync(file) || statSync(file).isDirectory()) {
      // The dashboard for a page a browser asks for; an API client's mistyped path (/transaction/<id>, a trailing
      // slash) gets the JSON 404, not 200 with a page it cannot parse.
      // The root always (load balancers' and monitors' default health check is GET / with any Accept).
      if (path !== '/' && !(req.headers.accept ?? '').includes('text/html')) return false
      file = join(dir, 'index.html')
    }
    res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream', ...PAGE_HEADERS })
    createReadStream(file).pipe(res)
    return true
  }
  return false
}

export function createHttpServer(
  service: ServiceContext,
  deps: {
    auth: Authenticator
    yoga: Yoga
    rateLimiter?: RateLimiter
    readiness?: Readiness
    /** false: every GraphQL request goes through yoga's HTTP layer (tests compare the two paths). */
    graphqlDirect?: boolean
    /** The pipeline process's metrics (prom-client JSON), served together with this process's on /metrics. */
    pipelineMetrics?: () => Promise<MetricsJson>
    /** Which web pages may call the API from a browser; none but the server's own without it. */
    cors?: CorsPolicy
  },
): Server {
  const { auth, yoga } = deps
  const log = service.log.child({ module: 'http' })

  /** Who is asking (401 without a valid key), from a page their key allows (403), within their key's rate (429). */
  function principalOf(req: IncomingMessage): Principal {
    const principal = auth.authenticate(req.headers.authorization)
    deps.cors?.check(req.headers.origin, req.headers.host, principal, fetchSiteOf(req))
    deps.rateLimiter?.take(principal.name)
    return principal
  }

  /** More of the key's rate tokens, all or none (RATE_LIMITED): one for each submission past the first of a request. */
  const tokenFor = (principal: Principal) => (count: number) => deps.rateLimiter?.take(principal.name, count)

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const path = url.pathname
    if (path === '/graphql' || path === '/broadcast_transaction' || path.startsWith('/transactions/')) {
      // CORS before anything else, so a page on an allowed origin can read errors (401, 400) too; a preflight
      // carries no key and is answered here. An origin no key lists gets no CORS headers: its page sees nothing.
      if (deps.cors) for (const [name, value] of Object.entries(deps.cors.headersFor(req.headers.origin, req.headers.host, fetchSiteOf(req)))) res.setHeader(name, value)
      if (req.method === 'OPTIONS') return void res.writeHead(204).end()
    }
    if (path === '/graphql') {
      let principal
      try {
        principal = principalOf(req)
        checkDeclaredLength(req)
      } catch (err) {
        const e = err as InputError
        service.metrics?.rejected.inc({ api: 'graphql', reason: e.code })
        return sendJson(res, e.httpStatus, { errors: [{ message: e.message, extensions: e.extensions }] }, retryAfter(e))
      }
      if (deps.graphqlDirect !== false && canServeDirectly(req)) {
        const body = await readBody(req)
        if (await serveGraphQLPost(yoga, req, res, body, { principal, takeToken: tokenFor(principal) }, log)) return
        // Not for the direct path (nothing ran): yoga reads these bytes instead of the drained stream.
        ;(req as IncomingMessage & { body?: Buffer }).body = body
      }
      // Calling the yoga instance as a node listener both handles and sends the response.
      // An SSE subscription runs for as long as the client stays: the key is looked at again for each event, so a
      // key revoked with the CLI stops its streams too, as it closes its WebSockets (graphqlWs.ts).
      const authorization = req.headers.authorization
      const keyStillValid = () => keyIsValid(auth, authorization)
      return void (await yoga(req, res, { principal, keyStillValid, terminate: () => req.socket.destroy(), takeToken: tokenFor(principal) }))
    }
    if (path === '/broadcast_transaction') {
      if (req.method !== 'POST') throw new InputError(ERROR_CODE.METHOD_NOT_ALLOWED, 'Use POST', undefined, 405)
      const principal = principalOf(req)
      requireRole(principal, 'submitter')
      const body = await readJson(req)
      const request = validateBroadcastRequest(body, service.config)
      const { transaction } = await acceptTransaction(service, request, principal.name)
      return sendJson(res, 200, { transactionId: transaction.id, status: transaction.status })
    }
    const m = /^\/transactions\/([^/]+)$/.exec(path)
    if (m) {
      if (req.method !== 'GET') throw new InputError(ERROR_CODE.METHOD_NOT_ALLOWED, 'Use GET', undefined, 405)
      requireRole(principalOf(req), 'reader')
      const id = parseTransactionId(decodePath(m[1]!))
      const row = await getTransaction(service.db.sql, id)
      if (!row) throw new InputError(ERROR_CODE.NOT_FOUND, `No transaction ${id}`, 'id', 404)
      return sendJson(res, 200, await loadTransactionJson(service, row))
    }
    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' })
    if (path === '/readyz' && deps.readiness) {
      const report = await deps.readiness.check()
      return sendJson(res, report.ready ? 200 : 503, { status: report.ready ? 'ready' : 'not ready', ...report.checks }, report.ready ? {} : { 'retry-after': '5' })
    }
    if (path === '/metrics' && service.metrics) {
      // Unauthenticated by default, like most Prometheus targets: labels carry chain ids, signers, provider names and
      // error codes, no secrets. metrics.requireKey asks for a key (config/schema.ts says why one would).
      // The key only: not its rate (a scraper sharing an app's key got 429 when the app was busy), nor its pages.
      if (service.config.metrics.requireKey) requireRole(auth.authenticate(req.headers.authorization), 'reader')
      const { registry } = service.metrics
      const text = deps.pipelineMetrics
        ? // One exposition: each family declared once, its series told apart by their `process` label.
          await AggregatorRegistry.aggregate([await registry.getMetricsAsJSON(), await deps.pipelineMetrics()]).metrics()
        : await registry.metrics()
      res.writeHead(200, { 'content-type': registry.contentType })
      return void res.end(text)
    }
    if (req.method === 'GET' && serveStatic(req, res)) return
    throw new InputError(ERROR_CODE.NOT_FOUND, `No route ${req.method} ${path}`, undefined, 404)
  }

  const server = createServer((req, res) => {
    service.apiLoad?.started()
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy()
      const restApi = req.url?.startsWith('/broadcast_transaction') || req.url?.startsWith('/transactions/')
      if (err instanceof InputError) {
        if (restApi) service.metrics?.rejected.inc({ api: 'rest', reason: err.code })
        return sendError(res, err)
      }
      if (isDatabaseUnavailable(err)) {
        // A 500 INTERNAL after postgres.js's 30 s connect timeout told the client nothing it could act on.
        if (restApi) service.metrics?.rejected.inc({ api: 'rest', reason: ERROR_CODE.UNAVAILABLE })
        log.warn({ err }, 'request failed: the database is out of reach')
        return sendError(res, databaseUnavailable())
      }
      if (restApi) service.metrics?.rejected.inc({ api: 'rest', reason: ERROR_CODE.INTERNAL })
      log.error({ err }, 'request failed')
      sendJson(res, 500, { error: { code: ERROR_CODE.INTERNAL, message: 'Internal error; see the service log' } })
    })
  })
  // Node closes an idle keep-alive connection after 5 s. A load balancer keeps its idle connections to us for
  // 60 s (AWS ALB), and keep-alive clients reuse theirs for about 5 s: one that sent a request as we closed got
  // a reset (a 502 from the ALB) for a broadcast we never read. Idle connections stay longer than those; a stop
  // still closes them at once (stopServer).
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000
  return server
}
