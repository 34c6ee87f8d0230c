import { BaseError, HttpRequestError, RpcRequestError, TimeoutError, type Hex } from 'viem'
import type { ChainClients, ProviderClient } from '../chain/createChainClients.ts'
import type { ServiceContext } from '../context.ts'
import { classifySendAnswer, type SendAnswer, type SendOutcome } from '../core/classifySendError.ts'
import { redactUrl } from '../common/logger.ts'
import { pgArray } from '../db/pgArray.ts'

export type RawAttempt = { transactionId: string; nonce: number; hash: Hex; raw: Hex }

export type ProviderResult = { name: string; outcome: SendOutcome; error: string | null; at: string }

/** Turns whatever viem threw into the shape the classifier reads. */
export function toSendAnswer(err: unknown): SendAnswer {
  if (!(err instanceof BaseError)) return { kind: 'network_error', message: String((err as Error)?.message ?? err) }
  if (err.walk((e) => e instanceof TimeoutError)) return { kind: 'timeout' }
  const rpc = err.walk((e) => e instanceof RpcRequestError) as RpcRequestError | null
  if (rpc) return { kind: 'rpc_error', code: rpc.code, message: rpc.details || rpc.shortMessage }
  const http = err.walk((e) => e instanceof HttpRequestError) as HttpRequestError | null
  if (http) {
    if (http.status === undefined) return { kind: 'network_error', message: http.details || http.shortMessage }
    return { kind: 'http_error', status: http.status, message: http.details }
  }
  const withCode = err.walk((e) => typeof (e as { code?: unknown }).code === 'number') as (BaseError & { code: number }) | null
  return { kind: 'rpc_error', code: withCode?.code, message: err.details || err.shortMessage }
}

/** Error text safe to store and show: provider URLs in viem's messages are redacted. */
function describe(answer: SendAnswer, provider: ProviderClient): string | null {
  const text =
    answer.kind === 'ok'
      ? null
      : answer.kind === 'timeout'
        ? 'timed out'
        : answer.kind === 'http_error'
          ? `HTTP ${answer.status}${answer.message ? `: ${answer.message}` : ''}`
          : answer.message
  return text === null ? null : text.split(provider.url).join(redactUrl(provider.url)).slice(0, 500)
}

async function sendTo(provider: ProviderClient, raw: Hex): Promise<SendAnswer> {
  try {
    await provider.client.request({ method: 'eth_sendRawTransaction', params: [raw] })
    return { kind: 'ok' }
  } catch (err) {
    return toSendAnswer(err)
  }
}

/**
 * Sends stored raw bytes to every provider of the chain at once (viem has no
 * broadcast-to-all), in nonce order within each provider, and records each
 * provider's answer on the attempt. The same bytes every time: a rebroadcast can
 * never execute a request twice.
 */
export async function broadcastAttempts(ctx: ServiceContext, chain: ChainClients, attempts: RawAttempt[]): Promise<Map<Hex, ProviderResult[]>> {
  const results = new Map<Hex, ProviderResult[]>()
  if (attempts.length === 0) return results
  const ordered = [...attempts].sort((a, b) => a.nonce - b.nonce)
  await Promise.allSettled(
    chain.providers.map(async (provider) => {
      // All sends of one provider start in the same tick, so the batching transport puts them in one request, in order.
      const answers = await Promise.all(ordered.map((a) => sendTo(provider, a.raw)))
      const at = new Date().toISOString()
      answers.forEach((answer, i) => {
        const hash = ordered[i]!.hash
        const list = results.get(hash) ?? []
        list.push({ name: provider.name, outcome: classifySendAnswer(answer), error: describe(answer, provider), at })
        results.set(hash, list)
      })
    }),
  )
  const hashes = [...results.keys()]
  const answers = hashes.map((h) => JSON.stringify(results.get(h)))
  const sent = hashes.map((h) => results.get(h)!.some((r) => r.outcome === 'sent'))
  // Refused as never valid by every provider: the reconcile stage fails it if no attempt was ever accepted.
  const refused = hashes.map((h) => results.get(h)!.every((r) => r.outcome === 'invalid'))
  await ctx.db.sql`
    WITH v AS (
      SELECT * FROM unnest(${pgArray(hashes)}::text[], ${pgArray(answers)}::jsonb[], ${pgArray(sent)}::boolean[], ${pgArray(refused)}::boolean[])
        AS v(hash, answers, sent, refused)
    ), a AS (
      UPDATE attempts SET
        providers = attempts.providers || v.answers,
        sent_at = CASE WHEN v.sent THEN COALESCE(attempts.sent_at, now()) ELSE attempts.sent_at END,
        status = CASE WHEN v.sent AND attempts.status = 'SIGNED' THEN 'SENT'
                      WHEN v.refused AND attempts.status = 'SIGNED' THEN 'REJECTED' ELSE attempts.status END
      FROM v WHERE attempts.hash = v.hash
      RETURNING attempts.transaction_id, v.sent
    )
    UPDATE transactions SET last_sent_at = now(),
      first_sent_at = CASE WHEN a.sent THEN COALESCE(transactions.first_sent_at, now()) ELSE transactions.first_sent_at END
    FROM a WHERE transactions.id = a.transaction_id`
  for (const [hash, list] of results) {
    const failed = list.filter((r) => r.outcome !== 'sent')
    if (failed.length === list.length)
      ctx.log.warn({ chainId: chain.chainId, hash, answers: failed.map((f) => `${f.name}: ${f.outcome}: ${f.error}`) }, 'no provider accepted the attempt')
  }
  return results
}
