import type { Plugin } from 'graphql-yoga'
import type { Metrics } from './metrics.ts'

/**
 * Counts GraphQL requests that came back with errors, by the first error's code
 * (txb_requests_rejected_total{api="graphql"}). Runs after the plugin that gives
 * every error a code, so it reads `extensions.code`.
 */
export function graphqlMetricsPlugin(metrics: Metrics | undefined): Plugin {
  if (!metrics) return {}
  return {
    onResultProcess({ result }) {
      for (const r of Array.isArray(result) ? result : [result]) {
        if (!r || typeof r !== 'object' || !('errors' in r) || !Array.isArray(r.errors) || r.errors.length === 0) continue
        const code = (r.errors[0] as { extensions?: { code?: unknown } }).extensions?.code
        metrics.rejected.inc({ api: 'graphql', reason: typeof code === 'string' ? code : 'UNKNOWN' })
      }
    },
  }
}
