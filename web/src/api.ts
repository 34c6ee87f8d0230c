import { createClient } from 'graphql-ws/client'

export type TxStatus = 'QUEUED' | 'PENDING' | 'INCLUDED' | 'CONFIRMED' | 'REVERTED' | 'FAILED' | 'CANCELLED'
export const FINAL: readonly TxStatus[] = ['CONFIRMED', 'REVERTED', 'FAILED', 'CANCELLED']

/** What a list row shows; the live subscription delivers all of it but `hash`. */
export type TxRow = {
  id: string
  status: TxStatus
  chainId: number
  from: string
  to: string | null
  value: string
  nonce: string | null
  hash?: string | null
  kind: string
  createdAt: string
  updatedAt: string
  error: { code: string; message: string } | null
}

export type ProviderAnswer = { name: string; outcome: string; error: string | null; at: string }
export type Attempt = {
  hash: string
  nonce: string
  execution: number
  purpose: string
  status: string
  /** For a MINED attempt: success, or reverted (mined, the call failed). */
  receiptStatus: string | null
  gasLimit: string
  maxFeePerGas: string | null
  maxPriorityFeePerGas: string | null
  gasPrice: string | null
  createdAt: string
  sentAt: string | null
  providers: ProviderAnswer[]
}
export type TxEvent = { fromStatus: TxStatus | null; toStatus: TxStatus; actor: string; at: string; detail: string | null }
export type TxDetail = TxRow & {
  data: string
  gasLimit: string | null
  execution: number
  idempotencyKey: string | null
  validUntil: string | null
  atFeeCap: boolean
  blockNumber: string | null
  blockHash: string | null
  confirmations: number | null
  gasUsed: string | null
  effectiveGasPrice: string | null
  contractAddress: string | null
  receiptStatus: string | null
  revertReason: string | null
  firstSentAt: string | null
  includedAt: string | null
  finalAt: string | null
  attempts: Attempt[]
  events: TxEvent[]
}

/**
 * What the live subscription asks for: only fields read from the transaction row itself. `hash` (and attempts,
 * events) go through the server's per-request DataLoader, which for a subscription lives as long as the
 * subscription: its answers would go stale and its cache would grow with every transaction seen.
 * The list fills in hashes from its periodic re-read instead, and reads the live-changed rows below that read's
 * window by id (see ListView).
 */
export const LIVE_ROW_FIELDS = `id status chainId from to value nonce kind createdAt updatedAt error { code message }`
export const ROW_FIELDS = `${LIVE_ROW_FIELDS} hash`
export const DETAIL_FIELDS = `${ROW_FIELDS} data gasLimit execution idempotencyKey validUntil atFeeCap blockNumber blockHash
  confirmations gasUsed effectiveGasPrice contractAddress receiptStatus revertReason firstSentAt includedAt finalAt
  attempts { hash nonce execution purpose status receiptStatus gasLimit maxFeePerGas maxPriorityFeePerGas gasPrice createdAt sentAt providers { name outcome error at } }
  events { fromStatus toStatus actor at detail }`

/**
 * Everything the API can answer besides data. `code` is the API's `extensions.code`
 * (UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, ...), or UNREACHABLE when no answer came.
 */
export class ApiError extends Error {
  override name = 'ApiError'
  constructor(
    message: string,
    readonly code: string,
    readonly status?: number,
  ) {
    super(message)
  }
}

let onUnauthenticated: (message: string) => void = () => {}
/** Any 401, from any request: the app goes back to the key form with the message. */
export function setUnauthenticatedHandler(fn: (message: string) => void): void {
  onUnauthenticated = fn
}

const KEY_STORAGE = 'txb.apiKey'
export const storedKey = (): string | null => sessionStorage.getItem(KEY_STORAGE)
export const storeKey = (key: string | null): void => (key ? sessionStorage.setItem(KEY_STORAGE, key) : sessionStorage.removeItem(KEY_STORAGE))

type GraphQLResponse<T> = {
  data?: T | null
  errors?: Array<{ message: string; extensions?: { code?: string } }>
  /** REST-shaped answers before GraphQL runs (overload: 429/503). */
  error?: { code?: string; message?: string }
}

/** One GraphQL request over plain fetch. Throws ApiError; a 401 also calls the unauthenticated handler. */
export async function gql<T>(key: string, query: string, variables: Record<string, unknown> = {}, opts: { signal?: AbortSignal; quiet401?: boolean } = {}): Promise<T> {
  let res: Response
  try {
    res = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables }),
      signal: opts.signal,
    })
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err
    throw new ApiError(`Cannot reach the API at ${location.origin}/graphql (${(err as Error).message})`, 'UNREACHABLE')
  }
  let body: GraphQLResponse<T>
  try {
    body = (await res.json()) as GraphQLResponse<T>
  } catch {
    throw new ApiError(`The API answered ${res.status} ${res.statusText || ''} without GraphQL`.trim(), res.status >= 500 || res.status === 0 ? 'UNREACHABLE' : 'BAD_RESPONSE', res.status)
  }
  const first = body.errors?.[0]
  if (res.status === 401 || first?.extensions?.code === 'UNAUTHENTICATED') {
    const message = first?.message ?? 'The API key was refused'
    if (!opts.quiet401) onUnauthenticated(message)
    throw new ApiError(message, 'UNAUTHENTICATED', 401)
  }
  if (first) throw new ApiError(first.message, first.extensions?.code ?? 'ERROR', res.status)
  if (!res.ok) {
    const retry = res.headers.get('retry-after')
    const why = body.error?.message ?? `${res.status} ${res.statusText}`.trim()
    throw new ApiError(`The API answered ${res.status}: ${why}${retry ? ` (retry after ${retry} s)` : ''}`, body.error?.code ?? (res.status >= 500 ? 'UNREACHABLE' : 'HTTP_ERROR'), res.status)
  }
  if (!body.data) throw new ApiError(`The API answered ${res.status} without data`, 'BAD_RESPONSE', res.status)
  return body.data
}

export type Role = 'admin' | 'limited' | 'unknown'

/** The API key in use, as the API names it (`viewer`). */
export type Viewer = { name: string; role: 'reader' | 'submitter' | 'admin' }
export type Chain = { chainId: number; name: string; currencySymbol: string; confirmations: number; explorerUrl: string | null }

/** What the dashboard may do follows from the key's role: only admins retry and cancel. */
export const roleOf = (v: Viewer): Role => (v.role === 'admin' ? 'admin' : 'limited')

/** Who the key is and which chains the service runs: one small read at start-up. */
export async function fetchSession(key: string): Promise<{ viewer: Viewer; chains: Chain[] }> {
  return gql<{ viewer: Viewer; chains: Chain[] }>(key, `query Session { viewer { name role } chains { chainId name currencySymbol confirmations explorerUrl } }`)
}

/** `${explorerUrl}/tx/${hash}` or `${explorerUrl}/address/${addr}`, when the chain has an explorer. */
export function explorerHref(chains: readonly Chain[], chainId: number, kind: 'tx' | 'address', value: string | null | undefined): string | undefined {
  if (!value) return undefined
  const base = chains.find((c) => c.chainId === chainId)?.explorerUrl
  return base ? `${base.replace(/\/+$/, '')}/${kind}/${value}` : undefined
}

export type Live = {
  /**
   * A subscription held until the returned function is called. One the server refuses (TOO_MANY_SUBSCRIPTIONS
   * while the key holds limits.maxSubscriptionsPerKey, RATE_LIMITED) or ends is made again after a backoff, the pill
   * saying "Reconnecting…" meanwhile; `resumed` runs once it is taken again, to re-read what was missed.
   */
  watch: <T>(query: string, variables: Record<string, unknown>, next: (data: T) => void, resumed: () => void) => () => void
  /** Every change of every transaction (list rows). Returns an unsubscribe function. */
  onRow: (fn: (row: TxRow) => void) => () => void
  /** Called after the socket came back: whatever changed meanwhile was missed. */
  onReconnect: (fn: () => void) => () => void
  onState: (fn: (state: LiveState) => void) => () => void
  state: () => LiveState
  dispose: () => void
}
export type LiveState = 'connecting' | 'live' | 'offline'

/**
 * How long the subscriptions sent on a socket (or one made again) go unrefused before the pill says Live: the
 * server refuses one at once, and says nothing about one it takes.
 */
const ACCEPT_MS = 1_000

/** One graphql-ws connection for the whole app; reconnects forever with backoff. */
export function connectLive(key: string): Live {
  const rowListeners = new Set<(row: TxRow) => void>()
  const reconnectListeners = new Set<() => void>()
  const stateListeners = new Set<(s: LiveState) => void>()
  let state: LiveState = 'connecting'
  const setState = (s: LiveState) => {
    if (s === state) return
    state = s
    for (const fn of stateListeners) fn(s)
  }
  let socketUp = false
  /** The socket's subscriptions went ACCEPT_MS without a refusal. */
  let settled = false
  let settleTimer: ReturnType<typeof setTimeout> | undefined
  /** Something went wrong since the page opened: "Reconnecting…", no longer "Connecting…". */
  let troubled = false
  let disposed = false
  type Watch = { accepted: () => void }
  const watches = new Set<Watch>()
  /** Watches the server refused or ended, waiting for their next try. */
  const refused = new Set<Watch>()
  const recompute = () => {
    if (socketUp && settled && refused.size === 0) setState('live')
    else setState(troubled ? 'offline' : 'connecting')
  }
  const settle = () => {
    settled = false
    clearTimeout(settleTimer)
    settleTimer = setTimeout(() => {
      settled = true
      for (const w of watches) if (!refused.has(w)) w.accepted()
      recompute()
    }, ACCEPT_MS)
    recompute()
  }
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`
  const client = createClient({
    url,
    connectionParams: { authorization: `Bearer ${key}` },
    lazy: false,
    keepAlive: 20_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    retryWait: (n) => new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** n) * (0.75 + Math.random() / 2))),
    onNonLazyError: () => {
      troubled = true
      setState('offline')
    },
    on: {
      connected: (_socket, _payload, wasRetry) => {
        socketUp = true
        // graphql-ws sends every subscription held again on the new socket: any of them may be refused.
        settle()
        if (wasRetry) for (const fn of reconnectListeners) fn()
      },
      closed: (event) => {
        socketUp = false
        settled = false
        clearTimeout(settleTimer)
        troubled = true
        recompute()
        // The server closes the socket with 4403 once the key is refused (revoked with the CLI; dev mode's key made
        // anew). graphql-ws retries it as any close: a page that reads nothing over HTTP (a final transaction's)
        // showed "Reconnecting…" for ever. Back to the key form, saying why, as a 401 over HTTP does.
        const close = event as { code?: number; reason?: string } | undefined
        if (close?.code === 4403) onUnauthenticated(close.reason || 'The API key is no longer valid')
      },
    },
  })
  // A subscription can be refused on a live socket (the key over its rate limit, or holding all the subscriptions it
  // may): graphql-ws then delivers an `error`, or (refused inside the subscription's resolver) a result with errors
  // and a `complete`. Either way it is made again after a backoff, and the caller re-reads what it missed. Before,
  // only `error` was looked at: a list refused with TOO_MANY_SUBSCRIPTIONS stopped updating for good under "Live".
  const watch = <T,>(query: string, variables: Record<string, unknown>, next: (data: T) => void, resumed: () => void) => {
    let attempt = 0
    let retry: ReturnType<typeof setTimeout> | undefined
    let unsubscribe = () => {}
    let resumePending = false
    const w: Watch = {
      accepted: () => {
        attempt = 0
        if (!resumePending) return
        resumePending = false
        resumed()
      },
    }
    const start = () => {
      /** This try was refused, ended by the server, or let go here: it counts once. */
      let over = false
      const end = () => {
        if (over || disposed || !watches.has(w)) return
        over = true
        unsubscribe()
        refused.add(w)
        troubled = true
        recompute()
        retry = setTimeout(() => {
          if (disposed) return
          refused.delete(w)
          resumePending = true
          start()
          // Not Live again before the server had the time to refuse this one too.
          if (refused.size === 0 && socketUp) settle()
        }, Math.min(10_000, 1_000 * 2 ** attempt++))
      }
      unsubscribe = client.subscribe<T>(
        { query, variables },
        {
          next: (msg) => {
            if (msg.errors?.length && !msg.data) return end()
            if (msg.data) next(msg.data)
          },
          error: end,
          complete: end,
        },
      )
    }
    watches.add(w)
    start()
    return () => {
      watches.delete(w)
      refused.delete(w)
      clearTimeout(retry)
      unsubscribe()
      recompute()
    }
  }
  watch<{ transactionUpdated: TxRow }>(
    `subscription Rows { transactionUpdated { ${LIVE_ROW_FIELDS} } }`,
    {},
    (data) => {
      for (const fn of rowListeners) fn(data.transactionUpdated)
    },
    () => {
      for (const fn of reconnectListeners) fn()
    },
  )
  const add = <T,>(set: Set<T>, fn: T) => {
    set.add(fn)
    return () => void set.delete(fn)
  }
  return {
    watch,
    onRow: (fn) => add(rowListeners, fn),
    onReconnect: (fn) => add(reconnectListeners, fn),
    onState: (fn) => add(stateListeners, fn),
    state: () => state,
    dispose: () => {
      disposed = true
      clearTimeout(settleTimer)
      void client.dispose()
    },
  }
}
