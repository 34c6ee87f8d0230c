import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { ServerContext, Yoga } from './createYoga.ts'

/** What yoga's result processors build: the body and the status and headers, instead of a web Response. */
class CapturedResponse {
  constructor(
    readonly body: string | null,
    readonly init: { status?: number; headers?: Record<string, string> } = {},
  ) {}
}
const CAPTURE_FETCH_API = { Response: CapturedResponse }

/** The parts of a web Request that yoga's parameter and result hooks read (the method, the URL, two headers). */
function requestView(req: IncomingMessage) {
  return {
    method: 'POST',
    url: 'http://localhost/graphql',
    headers: {
      get(name: string): string | null {
        const v = req.headers[name.toLowerCase()]
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v
      },
      has(name: string): boolean {
        return req.headers[name.toLowerCase()] !== undefined
      },
    },
  }
}

/**
 * Whether a request can take the direct path: a plain JSON POST to /graphql from a non-browser client
 * asking for a JSON answer. Everything else (browsers' CORS, GET, multipart, SSE or multipart answers,
 * GraphiQL) goes through yoga's HTTP layer unchanged.
 */
export function canServeDirectly(req: IncomingMessage): boolean {
  if (req.method !== 'POST' || req.url !== '/graphql' || req.headers.origin !== undefined) return false
  if (!/^application\/json\s*(;\s*charset=utf-8\s*)?$/i.test(req.headers['content-type'] ?? '')) return false
  const accept = req.headers.accept
  return accept === undefined || !/event-stream|multipart/i.test(accept)
}

/**
 * The GraphQL POST path without the web Request/Response layer. Under load, turning each Node request
 * into a web Request (headers, body stream, abort signal) and each result back into a web Response cost
 * about a third of the event loop, more than executing the operation. This path runs the same yoga
 * stages on the already-read body: the parameter checks (onParams), parse and validate (cached), the
 * context, execution with error masking, and every result hook (error codes, metrics, yoga's status and
 * media-type rules), so the answer is byte for byte what yoga sends (a test compares the two).
 *
 * Returns false, having executed nothing, when the body is not a JSON object or yoga's parameter checks
 * refuse it: the caller then hands the same bytes to yoga, which answers with its own error.
 */
export async function serveGraphQLPost(
  yoga: Yoga,
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
  serverContext: ServerContext,
  log: Logger,
): Promise<boolean> {
  let params: unknown
  try {
    params = JSON.parse(body.toString('utf8'))
  } catch {
    return false
  }
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return false
  // A subscription's answer is a stream (SSE or multipart): yoga's layer serves it. The word anywhere in
  // the text is enough to step aside; a query that merely mentions it is served correctly, only slower.
  const { query } = params as { query?: unknown }
  if (typeof query === 'string' && query.includes('subscription')) return false
  const request = requestView(req) as unknown as Request
  const server = yoga as unknown as YogaInternals
  const context: Record<string, unknown> = { ...serverContext, req, res }
  let result: unknown
  try {
    result = await server.getResultForParams({ params: params as Record<string, unknown>, request }, context)
  } catch {
    // Only the parameter hooks throw (before anything runs); errors during execution are in the result.
    return false
  }
  let response: CapturedResponse
  try {
    const acceptableMediaTypes: string[] = []
    let processor: ((result: unknown, fetchAPI: unknown, mediaType: string) => unknown) | undefined
    let mediaType = '*/*'
    for (const hook of server.onResultProcessHooks) {
      const done = hook({
        request,
        acceptableMediaTypes,
        result,
        setResult: (r: unknown) => void (result = r),
        resultProcessor: processor,
        setResultProcessor: (p: typeof processor, m: string) => {
          processor = p
          mediaType = m
        },
        serverContext: context,
      })
      if (done instanceof Promise) await done
    }
    // No processor for what the client accepts: yoga's 406, after execution as in yoga.
    response = processor
      ? ((await processor(result, CAPTURE_FETCH_API, mediaType)) as CapturedResponse)
      : new CapturedResponse(null, { status: 406, headers: { accept: acceptableMediaTypes.join('; charset=utf-8, ') } })
  } catch (err) {
    log.error({ err }, 'GraphQL result processing failed')
    response = new CapturedResponse(JSON.stringify({ errors: [{ message: 'Unexpected error.' }] }), {
      status: 500,
      headers: { 'Content-Type': 'application/json; charset=utf-8' },
    })
  }
  if (response.body === null) {
    res.writeHead(response.init.status ?? 200, response.init.headers)
    res.end()
  } else {
    res.writeHead(response.init.status ?? 200, { ...response.init.headers, 'content-length': Buffer.byteLength(response.body) })
    res.end(response.body)
  }
  return true
}

/** yoga's own stages, which the server adapter exposes from the YogaServer it wraps. */
type YogaInternals = {
  getResultForParams: (payload: { params: Record<string, unknown>; request: Request }, context: Record<string, unknown>) => Promise<unknown>
  onResultProcessHooks: ((payload: Record<string, unknown>) => unknown)[]
}
