import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor'
import { NoSchemaIntrospectionCustomRule, type GraphQLError } from 'graphql'
import type { Plugin } from 'graphql-yoga'
import { ERROR_CODE } from '../../core/errors.ts'

/**
 * Limits on the shape of a query, so one request cannot make the server do unbounded
 * work. Sized for the deepest query the dashboard and clients send:
 * `transactions { edges { node { attempts { providers { name } } } } }` is depth 6.
 */
export const GRAPHQL_LIMITS = {
  maxDepth: 10,
  maxAliases: 15,
  maxCost: 20_000,
  maxTokens: 2_000,
  maxDirectives: 20,
} as const

/** graphql-armor plus, outside dev mode, no introspection and no "did you mean" field suggestions. */
export function graphqlArmorPlugins(devMode: boolean): Plugin[] {
  const tag = (_ctx: unknown, err: GraphQLError) => {
    // Armor reports every refusal as a "Syntax Error"; give it a code clients can branch on.
    ;(err.extensions as Record<string, unknown>).code = ERROR_CODE.QUERY_TOO_COMPLEX
  }
  const onReject = [tag]
  const armor = EnvelopArmorPlugin({
    maxDepth: { n: GRAPHQL_LIMITS.maxDepth, onReject },
    maxAliases: { n: GRAPHQL_LIMITS.maxAliases, onReject },
    costLimit: { maxCost: GRAPHQL_LIMITS.maxCost, onReject },
    maxTokens: { n: GRAPHQL_LIMITS.maxTokens, onReject },
    maxDirectives: { n: GRAPHQL_LIMITS.maxDirectives, onReject },
    blockFieldSuggestion: { enabled: !devMode },
  }) as Plugin
  if (devMode) return [armor]
  const noIntrospection: Plugin = {
    onValidate({ addValidationRule }) {
      addValidationRule(NoSchemaIntrospectionCustomRule)
    },
  }
  return [armor, noIntrospection]
}
