import type { ProviderHealthView } from '../../chain/providerHealth.ts'
import { requireRole } from '../auth.ts'
import { builder } from './builder.ts'

const ProviderStatus = builder.enumType('ProviderStatus', {
  description: 'DOWN: skipped by sends and reads until it answers again (checked every chains[].rpc.checkIntervalMs). DEGRADED: errors in the last minute, slow, or behind.',
  values: { HEALTHY: { value: 'healthy' }, DEGRADED: { value: 'degraded' }, DOWN: { value: 'down' } } as const,
})

const ProviderHealthType = builder.objectRef<ProviderHealthView>('ProviderHealth').implement({
  description: "One RPC provider of a chain, as this instance sees it. The URL is never shown: it may hold credentials.",
  fields: (t) => ({
    name: t.exposeString('name'),
    chainId: t.exposeInt('chainId'),
    status: t.field({ type: ProviderStatus, resolve: (p) => p.status }),
    latencyMs: t.exposeInt('latencyMs', { nullable: true, description: 'Moving average over answered requests' }),
    headBlock: t.field({ type: 'BigInt', nullable: true, description: 'Its latest block at the last check', resolve: (p) => p.headBlock }),
    headLag: t.exposeInt('headLag', { nullable: true, description: 'Blocks behind the best head among the chain\'s providers' }),
    errorsLastMinute: t.exposeInt('errorsLastMinute', { description: 'Failed requests (timeouts, connection errors, HTTP errors, rate limits)' }),
    consecutiveFailures: t.exposeInt('consecutiveFailures'),
    lastError: t.exposeString('lastError', { nullable: true }),
    lastErrorAt: t.field({ type: 'DateTime', nullable: true, resolve: (p) => p.lastErrorAt }),
    downUntil: t.field({ type: 'DateTime', nullable: true, description: 'While DOWN: when it is tried again', resolve: (p) => p.downUntil }),
  }),
})

builder.queryField('providers', (t) =>
  t.field({
    type: [ProviderHealthType],
    description: "Health of every RPC provider (of one chain, with chainId), in config order",
    args: { chainId: t.arg.int() },
    resolve: (_, { chainId }, ctx) => {
      requireRole(ctx.principal, 'reader')
      return [...ctx.service.chains.values()]
        .filter((c) => chainId == null || c.chainId === chainId)
        .flatMap((c) => c.health.view().map((v) => ({ ...v, lastError: v.lastError === null ? null : c.redact(v.lastError) })))
    },
  }),
)
