import { randomUUID } from 'node:crypto'
import { BaseError, http, MethodNotFoundRpcError, type EIP1193RequestFn, type Transport } from 'viem'
import { describeSendAnswer, toSendAnswer } from './toSendAnswer.ts'
import { isMethodUnsupported } from './isMethodUnsupported.ts'
import { isProviderFault } from './isProviderFault.ts'
import { BATCH_LIMITS, byteBoundedBatches } from './byteBoundedBatches.ts'
import type { ProviderHealth } from './providerHealth.ts'
import type { Redact } from './redactUrls.ts'
import { redactErrorInPlace } from './redactUrls.ts'

/**
 * Requests inside one tick share an HTTP round trip; that is what makes batches of receipts and estimates cheap.
 * byteBoundedBatches cuts a tick's requests into pieces within BATCH_LIMITS, each on a transport of its own.
 */
const BATCH = { batchSize: BATCH_LIMITS.maxRequests, wait: 0 }
/** The largest answer a bulk read takes. */
const BULK_MAX_RESPONSE_BYTES = 256 * 1024 * 1024

/**
 * Refused without a request: the provider is down (or lagging) and its time-out has not passed. The read
 * fallback moves on to the next provider at once. A viem BaseError, so viem passes it on as it is.
 */
export class ProviderDownError extends BaseError {
  constructor(readonly provider: string) {
    super(`provider "${provider}" is down or behind; skipped until it answers again`, { name: 'ProviderDownError' })
  }
}

/**
 * A bulk read of a block's receipts answered `null`: this provider does not have the block (yet: one a block behind,
 * or on another fork). Not an answer about the block, so the read fallback asks the next provider (a null is a
 * successful answer to viem, which would stop there and throw BlockNotFoundError). Not a fault of the provider.
 */
export class BlockNotServedError extends BaseError {
  constructor(readonly provider: string) {
    super(`provider "${provider}" does not have the block (yet)`, { name: 'BlockNotServedError' })
  }
}

export type ProviderTransportOptions = {
  name: string
  url: string
  timeoutMs: number
  health: ProviderHealth
  redact: Redact
  /** Refuse requests while the provider is not usable for reads (the members of the read fallback). */
  gateReads?: boolean
  /** viem's own retries; 0 where our failover decides. */
  retryCount?: number
  /**
   * For calls whose time grows with the chain's load (a block's receipts): each request goes alone (not
   * batched with others under one timeout), and only failures that are not timeouts count toward health,
   * with no latency recorded (a slow answer for a large block says nothing about the provider).
   */
  bulk?: boolean
  /**
   * For calls whose time is the call's own (a gas estimate of a heavy contract call): a timeout is not counted
   * toward the provider's health (other failures are). Counted, one request that no node estimates within the
   * timeout took every provider down in turn, each time the sign stage looked at it again.
   */
  callTimeouts?: boolean
  /** Each request its own HTTP request, not batched with others of its tick (one slow call then fails alone). */
  alone?: boolean
  /**
   * Bulk only: the methods this provider answered it does not have (eth_getBlockReceipts on an older node), shared
   * by the provider's bulk clients. Refused at once from then on (as "method not found"), so the fallback goes on to
   * the next provider without asking.
   */
  lacking?: Set<string>
}

/**
 * Failures already counted. Requests batched into one HTTP round trip fail with
 * one shared error: that is one failed exchange with the provider, not one per
 * request, so a single bad batch neither inflates errorsLastMinute nor takes a
 * provider down on its own.
 */
const countedFailures = new WeakSet<object>()

function rootCause(err: unknown): unknown {
  let e = err
  for (let depth = 0; depth < 10 && e && typeof e === 'object' && (e as { cause?: unknown }).cause; depth++) e = (e as { cause: unknown }).cause
  return e
}

/**
 * viem's http transport for one provider, wrapped so that every request
 * - is bounded by the chain's timeout (a hanging provider costs at most that),
 * - counts toward the provider's health (latency; failures once per failed HTTP exchange),
 * - fails with an error whose texts no longer hold the URL's credentials,
 * - is refused at once, in the read fallback, while the provider is down or lagging,
 * - shares an HTTP round trip with the other requests of its tick, in batches bounded by bytes as well as by
 *   count (byteBoundedBatches): a node refuses a body over its limit whole.
 */
/**
 * Methods with nothing in them a node could refuse: an error answer to one (a -32603 "internal error" from a broken
 * backend behind a balancer) is the provider failing. Read as an answer, like "nonce too low", a provider failing
 * every call stayed HEALTHY, was asked first by reads, and its "unknown" answers held every reconcile decision that
 * needs each provider to say "absent".
 */
const NOTHING_TO_REFUSE = new Set(['eth_chainId', 'eth_blockNumber'])

export function providerTransport(opts: ProviderTransportOptions): Transport {
  const { name, health, redact } = opts
  const bulk = opts.bulk === true
  const alone = bulk || opts.alone === true
  const timeoutsUncounted = bulk || opts.callTimeouts === true
  // A new http() for each lane of byteBoundedBatches: viem batches the calls of a tick per http() instance.
  const httpTransport = () =>
    http(opts.url, {
      batch: alone ? false : BATCH,
      // viem refuses answers over 10 MB; a block of 10,000 transfers' receipts is about that.
      ...(bulk ? { maxResponseBodySize: BULK_MAX_RESPONSE_BYTES } : {}),
      retryCount: opts.retryCount ?? 0,
      timeout: opts.timeoutMs,
      key: name,
      name,
    })
  const withHealth = (transport: ReturnType<Transport>, dedupeUid: string) =>
    (async (args, options) => {
      if (opts.gateReads && !health.usableForRead(name)) throw new ProviderDownError(name)
      if (bulk && opts.lacking?.has(args.method))
        throw new MethodNotFoundRpcError(new Error(`provider "${name}" has no ${args.method}`), { method: args.method })
      // viem's ranking pings (net_listening, 1 s timeout) say nothing about serving real requests: not counted.
      const counted = args.method !== 'net_listening'
      const started = performance.now()
      let result: unknown
      try {
        result = await transport.request(args, { ...options, uid: options?.uid ?? dedupeUid })
        if (counted && !bulk) health.recordSuccess(name, performance.now() - started)
      } catch (err) {
        redactErrorInPlace(err, redact)
        if (bulk && isMethodUnsupported(err)) opts.lacking?.add(args.method)
        if (counted) {
          if (!isProviderFault(err) && !NOTHING_TO_REFUSE.has(args.method)) {
            if (!bulk) health.recordSuccess(name, performance.now() - started)
          } else {
            const root = rootCause(err)
            const key = root && typeof root === 'object' ? root : err
            if (key && typeof key === 'object' && !countedFailures.has(key)) {
              countedFailures.add(key)
              const answer = toSendAnswer(err)
              if (timeoutsUncounted && answer.kind === 'timeout') throw err
              health.recordFailure(name, redact(describeSendAnswer(answer) ?? 'failed').slice(0, 300), { timeout: answer.kind === 'timeout' })
            }
          }
        }
        throw err
      }
      if (bulk && result === null && args.method === 'eth_getBlockReceipts') throw new BlockNotServedError(name)
      // Every head read (the watcher's, each block) keeps the chain's head fresh, not only the periodic check's:
      // txb_chain_head_block lagged the watcher's cursor by up to rpc.checkIntervalMs, several blocks below it.
      if (args.method === 'eth_blockNumber' && typeof result === 'string' && /^0x[0-9a-fA-F]+$/.test(result)) health.recordSeenHead(name, BigInt(result))
      return result
    }) as EIP1193RequestFn
  // Made once per timeout asked for: viem's fallback calls a transport's factory on every request, and each made its
  // own batches (and dedupe key), so with two or more providers every read went alone, one HTTP request each: a sign
  // batch's 200 estimates, 200 requests. Its requests pass the same params each time (its chain, retryCount 0, no
  // timeout: ours holds); its ranking pings ask for a 1 s timeout, and get their own.
  const made = new Map<number | undefined, ReturnType<Transport>>()
  return ((params) => {
    let transport = made.get(params.timeout)
    if (!transport) made.set(params.timeout, (transport = make(params)))
    return transport
  }) as Transport
  function make(params: Parameters<Transport>[0]): ReturnType<Transport> {
    const transport = httpTransport()(params)
    // viem shares an identical call in flight (a receipt, a block) per transport; one key keeps that across the lanes.
    const dedupeUid = `${name}.${randomUUID()}`
    // Bulk calls go alone, each its own HTTP request: nothing to batch.
    const request = alone ? withHealth(transport, dedupeUid) : byteBoundedBatches(() => withHealth(httpTransport()(params), dedupeUid))
    return { ...transport, request }
  }
}
