import DataLoader from 'dataloader'
import { GraphQLError, Kind, parse, visit, type ASTNode, type DocumentNode, type GraphQLSchema } from 'graphql'
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga'
import type { ServiceContext } from '../../context.ts'
import type { Logger } from '../../common/logger.ts'
import { databaseUnavailable, isDatabaseUnavailable } from '../../db/databaseUnavailable.ts'
import { ERROR_CODE, InputError } from '../../core/errors.ts'
import { dataLengthOf, getAttemptsFor, getDataFor, getEventsFor, getScannedHeads } from '../../store/readTransactions.ts'
import type { Principal } from '../auth.ts'
import { graphqlMetricsPlugin } from '../../metrics/graphqlMetrics.ts'
import { graphqlArmorPlugins } from './armor.ts'
import type { GraphQLContext } from './builder.ts'
import { PartlyStoredError, type StoredSubmission } from './submissions.ts'

const OUR_CODES = new Set<string>(Object.values(ERROR_CODE))

/**
 * graphql-js reports bad variables and unknown fields as plain messages. Give
 * every such error a stable code and the field it is about, so clients can
 * branch on `extensions.code` instead of parsing text.
 */
export function codeFor(message: string): { code: string; field?: string } {
  const at = /at "(?:\w+)\.([\w.[\]]+)"/.exec(message)?.[1]
  const variable = /^Variable "\$(\w+)"/.exec(message)?.[1]
  const unknown = /Field "(\w+)" is not defined by type/.exec(message)?.[1]
  if (unknown) return { code: ERROR_CODE.UNKNOWN_FIELD, field: at ? `${at}.${unknown}` : unknown }
  const missing = /Field "(\w+)" of required type/.exec(message)?.[1]
  if (missing) return { code: ERROR_CODE.INVALID_INPUT, field: missing }
  if (variable) return { code: ERROR_CODE.INVALID_INPUT, field: at ?? variable }
  if (/^Syntax Error/.test(message)) return { code: 'GRAPHQL_PARSE_FAILED' }
  return { code: 'GRAPHQL_VALIDATION_FAILED' }
}

/** Each operation's text is parsed once for this, however many errors it has (graphql-js reports up to 100). */
const parsedSources = new WeakMap<object, DocumentNode | null>()

/**
 * The argument or input field a bad value was given for, found in the operation's text: for an inline literal
 * (`to: "0x12"`), the innermost one whose value holds the reported node; for a variable given as a whole
 * (`hash: $h`), the one the variable is passed to.
 */
function fieldOfBadValue(err: GraphQLError): string | undefined {
  const node = err.nodes?.[0]
  const source = node?.loc?.source
  if (!node?.loc || !source) return undefined
  let document = parsedSources.get(source)
  if (document === undefined) {
    try {
      document = parse(source, { noLocation: false })
    } catch {
      document = null
    }
    parsedSources.set(source, document)
  }
  if (!document) return undefined
  const variable = node.kind === Kind.VARIABLE_DEFINITION ? node.variable.name.value : undefined
  const at = node.loc.start
  let found: { name: string; span: number } | undefined
  const consider = (name: string, value: ASTNode) => {
    if (!value.loc) return
    const hit = variable ? value.kind === Kind.VARIABLE && value.name.value === variable : value.loc.start <= at && at < value.loc.end
    const span = value.loc.end - value.loc.start
    if (hit && (!found || span < found.span)) found = { name, span }
  }
  visit(document, {
    Argument: (a) => consider(a.name.value, a.value),
    ObjectField: (f) => consider(f.name.value, f.value),
  })
  return found?.name
}

/** Errors past this many in one response keep the scalar's name as their field (a walk of the operation each). */
export const FIELD_LOOKUPS = 10

/** An error's code and field as HTTP answers carry them (useErrorCodes); the WebSocket path formats with it too. */
export function normalizeError(err: GraphQLError, lookUp = true): GraphQLError {
  const ext = err.extensions as { code?: string; field?: string }
  if (ext.code && OUR_CODES.has(ext.code)) {
    // A scalar does not know which argument it parsed; the message's path does, or else the operation's text.
    const at = /at "(?:\w+)\.([\w.[\]]+)"/.exec(err.message)?.[1] ?? (lookUp && ext.field && /^[A-Z]/.test(ext.field) ? fieldOfBadValue(err) : undefined)
    if (at && (!ext.field || /^[A-Z]/.test(ext.field))) {
      // 'Variable "$i" got invalid value ... at "i.to"; Expected type "Address". Address: <why>' -> 'to: <why>',
      // and 'Expected value of type "Address", found "0x12"; Address: <why>' -> 'to: <why>'
      const why = /(?:Expected type "\w+"\.|Expected value of type "\w+", found .*?;) \w+: (.*)$/s.exec(err.message)?.[1] ?? err.message
      return new GraphQLError(`${at}: ${why}`, { nodes: err.nodes, path: err.path, extensions: { ...ext, field: at } })
    }
    return err
  }
  // A body that is not JSON: REST's code and words (yoga's BAD_REQUEST carried its parser's error object too).
  if (ext.code === 'BAD_REQUEST' && /invalid JSON/i.test(err.message)) {
    const { originalError } = ext as { originalError?: { message?: string } }
    const why = originalError?.message ? `: ${originalError.message}` : ''
    return new GraphQLError(`Body is not valid JSON${why}`, { extensions: { code: ERROR_CODE.INVALID_JSON, http: { status: 400 } } })
  }
  // yoga's own code for a variable it could not coerce (seen on the WebSocket path): ours instead, with the field.
  if (ext.code && ext.code !== 'BAD_USER_INPUT') return err
  return new GraphQLError(err.message, { nodes: err.nodes, source: err.source, positions: err.positions, path: err.path, extensions: { ...ext, ...codeFor(err.message) } })
}

const useErrorCodes: Plugin = {
  onResultProcess({ result, setResult }) {
    const results = Array.isArray(result) ? result : [result]
    let changed = false
    const mapped = results.map((r) => {
      if (!r || typeof r !== 'object' || !('errors' in r) || !Array.isArray(r.errors)) return r
      changed = true
      return { ...r, errors: r.errors.map((e: unknown, i: number) => (e instanceof GraphQLError ? normalizeError(e, i < FIELD_LOOKUPS) : e)) }
    })
    if (changed) setResult((Array.isArray(result) ? mapped : mapped[0]) as typeof result)
  },
}

/**
 * Long calldata one request may read (hex characters, about 16 MB of bytes): past it, it is refused. Up to 500
 * rows of 127 KiB calldata each, three times over with aliases, built a 390 MB answer (heap 1.6 GB) from one
 * reader's request, and a few at once stalled the process for tens of seconds.
 */
export const DATA_BUDGET_CHARS = 32 * 1024 * 1024

/** Counts `chars` of calldata against a request's budget; past it, throws QUERY_TOO_COMPLEX saying what to do. */
export function chargeData(read: { chars: number }, chars: number): void {
  read.chars += chars
  if (read.chars > DATA_BUDGET_CHARS)
    throw new InputError(
      ERROR_CODE.QUERY_TOO_COMPLEX,
      `This request asks for more than ${DATA_BUDGET_CHARS / 2 / 1024 / 1024} MB of calldata (data): ask for fewer transactions (first), or leave data out of the list`,
    )
}

/**
 * A read under a broadcastTransaction that stored its transaction (its attempts, its events), failing because the
 * database went out of reach after the commit: the field is non-null, so the answer's data is null, and the id is
 * lost with it. Told as a PartlyStoredError, the error lists what this request stored (extensions.stored), as one
 * failing after earlier fields were stored does; before, it said UNAVAILABLE only, and a client without an
 * idempotencyKey sent it again, and it ran twice.
 */
export function storedThenUnreadable<K, V>(batch: (keys: readonly K[]) => Promise<V[]>, storedSoFar: () => StoredSubmission[] | undefined, log?: Logger) {
  return async (keys: readonly K[]): Promise<V[]> => {
    try {
      return await batch(keys)
    } catch (err) {
      const stored = storedSoFar()
      if (!stored?.length || err instanceof InputError) throw err
      if (isDatabaseUnavailable(err)) throw new PartlyStoredError(ERROR_CODE.UNAVAILABLE, NESTED_FIELD_UNAVAILABLE, { retryAfterSeconds: 5 }, stored)
      // Any other failure of the read (a connection lost in a restart or a failover, a statement timeout): the commit
      // stands all the same, and the ids must reach the client.
      log?.error({ err }, 'reading a field of a stored broadcastTransaction failed')
      throw new PartlyStoredError(ERROR_CODE.INTERNAL, 'Reading this field failed (an internal error, logged); what this request stored stays stored', {}, stored)
    }
  }
}

function lazyLoaders(service: ServiceContext, storedSoFar: () => StoredSubmission[] | undefined): GraphQLContext['loaders'] {
  let attempts: GraphQLContext['loaders']['attempts'] | undefined
  let events: GraphQLContext['loaders']['events'] | undefined
  let scannedHeads: GraphQLContext['loaders']['scannedHeads'] | undefined
  let data: GraphQLContext['loaders']['data'] | undefined
  const dataRead = { chars: 0, read: { chars: 0 } }
  const guarded = <K, V>(batch: (keys: readonly K[]) => Promise<V[]>) => storedThenUnreadable(batch, storedSoFar, service.log)
  return {
    dataRead,
    get data() {
      return (data ??= new DataLoader(guarded(async (ids: readonly string[]) => {
        // Measured before it is read (the length of a long value is known without reading it), and counted at once:
        // batches of the request running together each see the others' (the resolver counts what the answer
        // carries, separately).
        const chars = await dataLengthOf(service.db.sql, ids)
        chargeData(dataRead.read, chars)
        return getDataFor(service.db.sql, ids)
      })))
    },
    get scannedHeads() {
      return (scannedHeads ??= new DataLoader(guarded((chainIds: readonly number[]) => getScannedHeads(service.db.sql, chainIds))))
    },
    get attempts() {
      return (attempts ??= new DataLoader(guarded((ids: readonly string[]) => getAttemptsFor(service.db.sql, ids))))
    },
    get events() {
      return (events ??= new DataLoader(guarded((ids: readonly string[]) => getEventsFor(service.db.sql, ids))))
    },
  }
}

/** The HTTP server authenticates before yoga runs and hands over who is asking. */
export type ServerContext = { principal: Principal; keyStillValid?: () => boolean; terminate?: () => void; takeToken?: (count: number) => void }
export type Yoga = YogaServerInstance<ServerContext, GraphQLContext>

/** What a field under a root field answers when the database is out of reach (maskError below). */
export const NESTED_FIELD_UNAVAILABLE =
  'The service cannot reach its database to read this field; retry in a few seconds. Anything this request stored before (a broadcastTransaction) stays stored.'

export function createGraphQL(service: ServiceContext, schema: GraphQLSchema): Yoga {
  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    graphiql: service.devMode,
    // The HTTP server answers CORS itself, per API key (api/cors.ts); yoga's default lets every origin in.
    cors: false,
    // The HTTP server checks Content-Length against MAX_BODY_BYTES before yoga runs (api/readBody.ts).
    maxRequestBodySize: false,
    landingPage: false,
    logging: false,
    plugins: [useErrorCodes, graphqlMetricsPlugin(service.metrics), ...graphqlArmorPlugins(service.devMode)],
    maskedErrors: {
      // Our coded errors (bad input, auth) and graphql-js's own reach the client; anything else is logged and masked.
      maskError(error, message) {
        const chain: unknown[] = []
        for (let e: unknown = error; e && chain.length < 10; e = (e as { originalError?: unknown }).originalError) chain.push(e)
        const ours = chain.find((e): e is InputError => e instanceof InputError)
        const outer = error as GraphQLError
        // yoga's `http` (status 400 for a variable that cannot be coerced) is kept: dropped, a bad variable value
        // answered 200 while a missing one answered 400. yoga does not send it to the client.
        const http = (outer.extensions as { http?: unknown } | undefined)?.http
        if (ours) return new GraphQLError(outer.message, { nodes: outer.nodes, path: outer.path, extensions: { ...ours.extensions, ...(http ? { http } : {}) } })
        if (chain.every((e) => e instanceof GraphQLError)) return outer
        if (chain.some(isDatabaseUnavailable)) {
          service.log.warn({ err: chain.at(-1) }, 'GraphQL request failed: the database is out of reach')
          const unavailable = databaseUnavailable()
          // A field under a root field (a stored transaction's attempts, read after its commit): "nothing was stored"
          // would be false of a broadcastTransaction that did commit, and invite a retry that runs it twice. Worded for
          // queries too (maskError does not see which operation it was).
          const message = (outer.path?.length ?? 0) > 1 ? NESTED_FIELD_UNAVAILABLE : unavailable.message
          return new GraphQLError(message, { nodes: outer.nodes, path: outer.path, extensions: { ...unavailable.extensions } })
        }
        service.log.error({ err: chain.at(-1) }, 'unexpected error in a GraphQL resolver')
        return new GraphQLError(message, { path: outer.path, extensions: { code: ERROR_CODE.INTERNAL } })
      },
    },
    // Synchronous, and the loaders made on first use: a submission reads neither, and under load an
    // async factory and two DataLoaders per request were measurable.
    context: ({ principal, keyStillValid, terminate, takeToken }) => {
      const ctx: GraphQLContext = { service, principal, keyStillValid, terminate, takeToken, submissions: 0, loaders: lazyLoaders(service, () => ctx.stored) }
      return ctx
    },
  })
}
