import type { IncomingMessage, Server } from 'node:http'
import { getOperationAST, GraphQLError, type ExecutionArgs } from 'graphql'
import { useServer } from 'graphql-ws/use/ws'
import { WebSocketServer } from 'ws'
import { keyIsValid, type Authenticator, type Principal } from './auth.ts'
import { fetchSiteOf, type CorsPolicy } from './cors.ts'
import { FIELD_LOOKUPS, normalizeError, type Yoga } from './graphql/createYoga.ts'
import { MAX_BODY_BYTES } from './readBody.ts'
import { TooManyRequestsError, type RateLimiter } from './rateLimit.ts'

type Enveloped = ReturnType<Yoga['getEnveloped']>

/**
 * graphql-ws (WebSocket) on the same /graphql path as yoga's HTTP and SSE, run
 * through yoga's envelop so masking, error codes and the context are the same.
 * The API key comes in connectionParams: `{ "authorization": "Bearer <key>" }`.
 * The key's rate limit counts the connection and every operation on it, as each HTTP request counts:
 * a socket is not a way around it (a limited operation gets RATE_LIMITED with retryAfterSeconds).
 */
export function attachGraphQLWs(
  server: Server,
  yoga: Yoga,
  auth: Authenticator,
  rateLimiter?: RateLimiter,
  cors?: CorsPolicy,
  /** Sockets one key may hold open at once (limits.maxWebSocketsPerKey): a key opening thousands of idle ones ran the process out of file descriptors. */
  maxSocketsPerKey = Number.POSITIVE_INFINITY,
): { close: (drainMs: number) => Promise<void> } {
  /** Open sockets by key name (those past onConnect). */
  const socketsByKey = new Map<string, number>()
  /** Set by close: new operations are refused, so a stopping instance only finishes what it has. */
  let closing = false
  /**
   * Queries and mutations being answered (not subscriptions, which last), by connection and operation id: a stop
   * waits for their answers. Added when taken (onSubscribe), removed once answered (onComplete, after the result
   * was sent), failed (onError) or their socket closed (onClose).
   */
  const answering = new Set<string>()
  /** Operations between their arrival and being added to `answering` (onSubscribe awaits): a stop waits for them too. */
  let arriving = 0
  let connections = 0
  const operation = (ctx: { extra: { connection?: number } }, id: string) => `${ctx.extra.connection}:${id}`
  const wss = new WebSocketServer({
    server,
    path: '/graphql',
    // A message is a request: the HTTP body limit, not ws's default of 100 MiB (read and parsed before any key is
    // checked, as connection_init carries the key).
    maxPayload: MAX_BODY_BYTES,
    // Browsers do not apply CORS to WebSockets but do send the page's Origin: a page on an origin no key
    // lists (or, with auth disabled, any other site) is refused at the handshake, before it can subscribe.
    verifyClient: ({ origin, req }: { origin?: string; req: IncomingMessage }) =>
      !cors || !origin || Object.keys(cors.headersFor(origin, req.headers.host, fetchSiteOf(req))).length > 0,
  })
  /**
   * The key is checked again for every operation and every result sent, not only at connect: a key revoked
   * with the CLI stops working on sockets already open too (the socket is closed with 4403), as it does over HTTP.
   */
  const stillAllowed = (ctx: { extra: { authorization?: string; socket: { close: (code: number, reason: string) => void } } }): boolean => {
    if (keyIsValid(auth, ctx.extra.authorization)) return true
    ctx.extra.socket.close(4403, 'Forbidden: the API key is no longer valid')
    return false
  }
  const disposable = useServer<Record<string, unknown> | undefined, { principal?: Principal; authorization?: string; connection?: number; counted?: boolean }>(
    {
      onConnect: (ctx) => {
        ctx.extra.connection = ++connections
        const params = ctx.connectionParams ?? {}
        const header = (params.authorization ?? params.Authorization) as string | undefined
        try {
          ctx.extra.authorization = header
          ctx.extra.principal = auth.authenticate(header)
          cors?.check(ctx.extra.request.headers.origin, ctx.extra.request.headers.host, ctx.extra.principal, fetchSiteOf(ctx.extra.request))
        } catch {
          // graphql-ws closes the socket with 4403 Forbidden; any other answer would accept the connection.
          return false
        }
        try {
          rateLimiter?.take(ctx.extra.principal.name)
        } catch (err) {
          // Over the key's rate: closed with 1013 "Try Again Later" and the reason, not as if the key were wrong.
          // (graphql-ws clients take 4429, its own code for too many connection_init messages, as final and never
          // reconnect: a dashboard opened while its key was busy stayed offline for good.)
          if (err instanceof TooManyRequestsError) ctx.extra.socket.close(1013, `RATE_LIMITED: retry in ${err.retryAfterSeconds} s`)
          return false
        }
        const name = ctx.extra.principal.name
        const open = socketsByKey.get(name) ?? 0
        if (open >= maxSocketsPerKey) {
          // 1013 (try again later), as for the rate: a client reconnects once one of its sockets closes.
          ctx.extra.socket.close(1013, `TOO_MANY_CONNECTIONS: key "${name}" holds ${open} WebSockets here (limits.maxWebSocketsPerKey)`)
          return false
        }
        socketsByKey.set(name, open + 1)
        ctx.extra.counted = true
        return true
      },
      // Each result of a subscription: a revoked key's socket is closed instead of streaming on. Errors carry their
      // code and field as over HTTP (yoga's useErrorCodes runs on HTTP results only).
      onNext: (ctx, _id, _payload, _args, result) => {
        if (!stillAllowed(ctx) || !result.errors?.length) return
        return { ...result, errors: result.errors.map((e, i) => normalizeError(e, i < FIELD_LOOKUPS).toJSON()) }
      },
      onError: (ctx, id, _payload, errors) => {
        answering.delete(operation(ctx, id))
        return errors.map((e, i) => normalizeError(e, i < FIELD_LOOKUPS).toJSON())
      },
      execute: (args) => (args.rootValue as Enveloped).execute(args as ExecutionArgs),
      onComplete: (ctx, id) => void answering.delete(operation(ctx, id)),
      onClose: (ctx) => {
        for (const key of answering) if (key.startsWith(operation(ctx, ''))) answering.delete(key)
        if (ctx.extra.counted && ctx.extra.principal) {
          const name = ctx.extra.principal.name
          const left = (socketsByKey.get(name) ?? 1) - 1
          if (left > 0) socketsByKey.set(name, left)
          else socketsByKey.delete(name)
        }
      },
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args as ExecutionArgs),
      onSubscribe: async (ctx, id, params) => {
        arriving++
        try {
          if (closing) return [new GraphQLError('The service is stopping: send this again (another instance takes it)', { extensions: { code: 'UNAVAILABLE' } })]
          if (!stillAllowed(ctx)) return [new GraphQLError('The API key is no longer valid', { extensions: { code: 'UNAUTHENTICATED' } })]
          try {
            rateLimiter?.take(ctx.extra.principal!.name)
          } catch (err) {
            if (err instanceof TooManyRequestsError) return [new GraphQLError(err.message, { extensions: { ...err.extensions } })]
            throw err
          }
          const principal = ctx.extra.principal!
          // Aliased submissions take a token each past the first, as over HTTP (the operation took one above).
          // keyStillValid: a subscription checks it every few seconds, so a quiet one (waiting for a status that never
          // comes) also ends once the key is revoked, its socket closed with 4403; it stayed open, holding its slots.
          const enveloped = yoga.getEnveloped({
            principal,
            params,
            takeToken: (count: number) => rateLimiter?.take(principal.name, count),
            keyStillValid: () => stillAllowed(ctx),
          })
          // A syntax error (or a query over armor's token limit) answers this operation; thrown, it closed the socket
          // with 4500, which graphql-ws clients take as final: every other subscription on it ended too.
          let document
          try {
            document = enveloped.parse(params.query)
          } catch (err) {
            if (err instanceof GraphQLError) return [err]
            throw err
          }
          const args = {
            schema: enveloped.schema,
            operationName: params.operationName,
            document,
            variableValues: params.variables,
            contextValue: await enveloped.contextFactory(),
            rootValue: enveloped,
          }
          const errors = enveloped.validate(args.schema, args.document)
          if (errors.length) return errors
          if (getOperationAST(document, params.operationName)?.operation !== 'subscription') answering.add(operation(ctx, id))
          return args
        } finally {
          arriving--
        }
      },
    },
    wss,
  )
  return {
    /**
     * A broadcastTransaction sent over the socket whose row was committed must hear so, as over HTTP (cut off, a
     * client without an idempotency key sent it again to another instance): new operations are refused, those
     * being executed get their answers (for up to `drainMs`), then the sockets are closed with 1001 (going away),
     * and cut if a client does not answer the close.
     */
    close: async (drainMs: number) => {
      closing = true
      const deadline = Date.now() + drainMs
      while ((answering.size > 0 || arriving > 0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
      for (const client of wss.clients) client.close(1001, 'Going away: the service is stopping')
      await new Promise((resolve) => setTimeout(resolve, wss.clients.size ? 500 : 0))
      for (const client of wss.clients) client.terminate()
      await disposable.dispose()
      await new Promise<void>((resolve) => wss.close(() => resolve()))
    },
  }
}
