import http from 'node:http'
import type { Address } from 'viem'
import { isLoopbackHost, percentiles, round, sleep, type Percentiles } from './stats.ts'

export type Api = 'graphql' | 'rest'

/**
 * A keep-alive connection pool to the service over node:http. (Global fetch would do too; plain
 * http.request costs the generator less CPU per request, which matters when it shares the machine with
 * the service, Postgres and anvil, and the pool size is explicit.)
 */
export function createHttpPool(baseUrl: string, apiKey: string, connections: number) {
  const url = new URL(baseUrl)
  if (!isLoopbackHost(url.hostname)) throw new Error(`the bench only talks to the service on a loopback address, not ${url.hostname}`)
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections, scheduling: 'fifo' })
  const authorization = `Bearer ${apiKey}`

  function post(path: string, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      let done = false
      const req = http.request(
        {
          host: url.hostname,
          port: Number(url.port),
          path,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization },
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => {
            done = true
            clearTimeout(timer)
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') })
          })
          res.on('error', (err) => {
            clearTimeout(timer)
            reject(err)
          })
        },
      )
      let sentAt = 0
      req.once('socket', (socket) => {
        if (!socket.connecting) sentAt = performance.now()
        else socket.once('connect', () => (sentAt = performance.now()))
      })
      // A bound on the whole exchange, including time queued for a pooled connection.
      const timer = setTimeout(() => {
        if (done) return
        const where = sentAt ? `sent ${Math.round(performance.now() - sentAt)} ms before, no answer` : 'still queued for a pooled connection'
        req.destroy(new Error(`timeout after ${timeoutMs} ms (${where})`))
      }, timeoutMs)
      req.on('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      req.end(body)
    })
  }

  return { post, close: () => agent.destroy() }
}
export type HttpPool = ReturnType<typeof createHttpPool>

/**
 * One pool per service instance, used round-robin (request i goes to instance i mod N), so every phase
 * spreads its requests evenly. The connections are split over the instances (at least one each).
 */
export function createRoundRobinPool(baseUrls: string[], apiKey: string, connections: number): HttpPool {
  if (baseUrls.length === 0) throw new Error('createRoundRobinPool: no service URL')
  if (baseUrls.length === 1) return createHttpPool(baseUrls[0]!, apiKey, connections)
  const perInstance = Math.max(1, Math.ceil(connections / baseUrls.length))
  const pools = baseUrls.map((u) => createHttpPool(u, apiKey, perInstance))
  let next = 0
  return {
    post: (path, body, timeoutMs) => {
      const pool = pools[next]!
      next = (next + 1) % pools.length
      return pool.post(path, body, timeoutMs)
    },
    close: () => {
      for (const p of pools) p.close()
    },
  }
}

export const GRAPHQL_MUTATION = 'mutation($input: BroadcastTransactionInput!) { broadcastTransaction(input: $input) { id status } }'

export type TxInput = { chainId: number; to: Address; value: string; gasLimit?: string; idempotencyKey: string; validUntil: string }

export function requestFor(api: Api, input: TxInput): { path: string; body: string } {
  if (api === 'rest') return { path: '/broadcast_transaction', body: JSON.stringify(input) }
  return { path: '/graphql', body: JSON.stringify({ query: GRAPHQL_MUTATION, variables: { input } }) }
}

/** Whether an answer is an accepted transaction; otherwise a short error kind for the counts. */
export function classifyAnswer(api: Api, status: number, text: string): { ok: true; id: string } | { ok: false; kind: string; detail: string } {
  if (status !== 200) return { ok: false, kind: `HTTP ${status}`, detail: text.slice(0, 300) }
  try {
    const json = JSON.parse(text) as any
    if (api === 'rest') {
      if (typeof json?.transactionId === 'string') return { ok: true, id: json.transactionId }
      return { ok: false, kind: 'bad body', detail: text.slice(0, 300) }
    }
    const id = json?.data?.broadcastTransaction?.id
    if (typeof id === 'string' && !json.errors) return { ok: true, id }
    const code = json?.errors?.[0]?.extensions?.code
    return { ok: false, kind: `graphql ${code ?? 'error'}`, detail: text.slice(0, 300) }
  } catch {
    return { ok: false, kind: 'bad json', detail: text.slice(0, 300) }
  }
}

export type LoadResult = {
  api: Api
  /** Offered rate (open loop) or null for a closed-loop burst. */
  rate: number | null
  seconds: number | null
  planned: number
  sent: number
  ok: number
  /** Non-200 answers, GraphQL errors, timeouts and connection errors, by kind. */
  errors: Record<string, number>
  errorCount: number
  errorExamples: string[]
  /** First request dispatched until the last answer arrived. */
  elapsedMs: number
  /** Requests dispatched per second (what the generator managed to offer). */
  sentPerSec: number
  /** Accepted answers per second over elapsedMs. */
  okPerSec: number
  /** Answer time per request, from dispatch (incl. waiting for a pooled connection) to the full body, ms. */
  latencyMs: Percentiles | null
  /** Open loop only: answer time measured from the scheduled send time (includes generator lag), ms. */
  fromScheduleMs: Percentiles | null
  /** Open loop only: how late the generator dispatched requests, ms (should stay near 0). */
  dispatchLagMs: Percentiles | null
  maxInFlight: number
  /**
   * Open loop only: p99 answer time of the requests dispatched in each second of the phase, the worst such
   * second and the median one. A worst second far above the median means the slow answers came together
   * (a stall of the machine or the service), not spread over the run.
   */
  perSecondP99: {
    worstAtSec: number
    worstMs: number
    medianMs: number
    seconds: number
    /** performance.now() at the start of the worst second (this process's clock), to line it up with other samples. */
    worstStartedAt: number
  } | null
  ids: string[]
}

class Recorder {
  ok = 0
  sent = 0
  inFlight = 0
  maxInFlight = 0
  errors: Record<string, number> = {}
  errorCount = 0
  errorExamples: string[] = []
  latencies: number[] = []
  /** When each request in `latencies` was dispatched (performance.now()). */
  dispatchedAt: number[] = []
  fromSchedule: number[] = []
  lags: number[] = []
  ids: string[] = []
  lastAnswerAt = 0

  error(kind: string, detail: string) {
    this.errorCount++
    this.errors[kind] = (this.errors[kind] ?? 0) + 1
    if (this.errorExamples.length < 5) this.errorExamples.push(`${kind}: ${detail}`)
  }

  /** Sends one request; never rejects. */
  async fire(pool: HttpPool, api: Api, input: TxInput, timeoutMs: number, scheduledAt: number | null): Promise<void> {
    const { path, body } = requestFor(api, input)
    const dispatchedAt = performance.now()
    if (scheduledAt !== null) this.lags.push(dispatchedAt - scheduledAt)
    this.sent++
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    try {
      const { status, text } = await pool.post(path, body, timeoutMs)
      const end = performance.now()
      this.lastAnswerAt = end
      const answer = classifyAnswer(api, status, text)
      if (answer.ok) {
        this.ok++
        this.ids.push(answer.id)
        this.latencies.push(end - dispatchedAt)
        this.dispatchedAt.push(dispatchedAt)
        if (scheduledAt !== null) this.fromSchedule.push(end - scheduledAt)
      } else this.error(answer.kind, answer.detail)
    } catch (err) {
      this.lastAnswerAt = performance.now()
      const message = (err as Error).message
      const kind = /^timeout/.test(message)
        ? /queued/.test(message)
          ? 'timeout (queued in the client pool, never sent)'
          : 'timeout (sent, no answer in time)'
        : `network ${(err as NodeJS.ErrnoException).code ?? 'error'}`
      this.error(kind, message)
    } finally {
      this.inFlight--
    }
  }

  perSecondP99(startedAt: number): LoadResult['perSecondP99'] {
    const bySecond = new Map<number, number[]>()
    this.latencies.forEach((ms, i) => {
      const sec = Math.floor((this.dispatchedAt[i]! - startedAt) / 1000)
      let list = bySecond.get(sec)
      if (!list) bySecond.set(sec, (list = []))
      list.push(ms)
    })
    const p99s = [...bySecond].filter(([, l]) => l.length >= 10).map(([sec, l]) => ({ sec, p99: percentiles(l)!.p99 }))
    if (p99s.length === 0) return null
    const worst = p99s.reduce((a, b) => (b.p99 > a.p99 ? b : a))
    const sorted = p99s.map((x) => x.p99).sort((a, b) => a - b)
    return {
      worstAtSec: worst.sec,
      worstMs: round(worst.p99, 1),
      medianMs: round(sorted[Math.floor(sorted.length / 2)]!, 1),
      seconds: p99s.length,
      worstStartedAt: round(startedAt + worst.sec * 1000, 1),
    }
  }

  result(api: Api, rate: number | null, seconds: number | null, planned: number, startedAt: number): LoadResult {
    const elapsedMs = Math.max(1, (this.lastAnswerAt || performance.now()) - startedAt)
    const dispatchSpanMs = rate && seconds ? Math.max(1, Math.min(elapsedMs, seconds * 1000)) : elapsedMs
    const r = (p: Percentiles | null) =>
      p && { count: p.count, min: round(p.min, 2), p50: round(p.p50, 2), p95: round(p.p95, 2), p99: round(p.p99, 2), max: round(p.max, 2), mean: round(p.mean, 2) }
    return {
      api,
      rate,
      seconds,
      planned,
      sent: this.sent,
      ok: this.ok,
      errors: this.errors,
      errorCount: this.errorCount,
      errorExamples: this.errorExamples,
      elapsedMs: round(elapsedMs),
      sentPerSec: round(this.sent / (dispatchSpanMs / 1000)),
      okPerSec: round(this.ok / (elapsedMs / 1000)),
      latencyMs: r(percentiles(this.latencies)),
      fromScheduleMs: r(percentiles(this.fromSchedule)),
      dispatchLagMs: r(percentiles(this.lags)),
      maxInFlight: this.maxInFlight,
      perSecondP99: rate ? this.perSecondP99(startedAt) : null,
      ids: this.ids,
    }
  }
}

export type InputFactory = (i: number) => TxInput

/**
 * Open loop: request i is due at start + i/rate and is sent then, whether or not earlier ones were
 * answered. Bounded: rate*seconds requests, at most maxInFlight at once (beyond that a due request is
 * counted as "client overload" and not sent), each request at most timeoutMs.
 */
export async function runOpenLoop(opts: {
  pool: HttpPool
  api: Api
  rate: number
  seconds: number
  input: InputFactory
  timeoutMs?: number
  maxInFlight?: number
}): Promise<LoadResult> {
  const { pool, api, rate, seconds } = opts
  const timeoutMs = opts.timeoutMs ?? 10_000
  const maxInFlight = opts.maxInFlight ?? 20_000
  const planned = Math.max(1, Math.round(rate * seconds))
  const intervalMs = 1000 / rate
  const rec = new Recorder()
  const pending: Promise<void>[] = []
  const t0 = performance.now()
  // The schedule may slip when the generator is starved; it never runs longer than this.
  const deadline = t0 + seconds * 1000 + 10_000
  let i = 0
  while (i < planned) {
    const now = performance.now()
    if (now > deadline) {
      rec.error('not sent (generator too slow)', `${planned - i} requests`)
      break
    }
    while (i < planned && t0 + i * intervalMs <= now) {
      const scheduledAt = t0 + i * intervalMs
      if (rec.inFlight >= maxInFlight) rec.error('client overload', `more than ${maxInFlight} requests in flight`)
      else pending.push(rec.fire(pool, api, opts.input(i), timeoutMs, scheduledAt))
      i++
    }
    if (i < planned) await sleep(Math.max(0, Math.min(20, t0 + i * intervalMs - performance.now())))
  }
  await Promise.all(pending)
  return rec.result(api, rate, seconds, planned, t0)
}

/** Closed loop, as fast as possible: `concurrency` requests in flight until count were sent (or timeoutSec passed). */
export async function runBurst(opts: {
  pool: HttpPool
  api: Api
  count: number
  concurrency: number
  input: InputFactory
  timeoutMs?: number
  timeoutSec: number
}): Promise<LoadResult> {
  const { pool, api, count } = opts
  const timeoutMs = opts.timeoutMs ?? 10_000
  const rec = new Recorder()
  const t0 = performance.now()
  const deadline = t0 + opts.timeoutSec * 1000
  let next = 0
  const worker = async () => {
    while (next < count && performance.now() < deadline) {
      const i = next++
      await rec.fire(pool, api, opts.input(i), timeoutMs, null)
    }
  }
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, count) }, worker))
  if (next < count) rec.error('not sent (burst timeout)', `${count - next} requests`)
  return rec.result(api, null, null, count, t0)
}
