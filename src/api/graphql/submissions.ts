import {
  getArgumentValues,
  getDirectiveValues,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLResolveInfo,
  type SelectionNode,
} from 'graphql'
import { checkBeforeStoring } from '../../accept/acceptTransaction.ts'
import { validateBroadcastRequest } from '../../accept/validateBroadcastRequest.ts'
import { ERROR_CODE, InputError } from '../../core/errors.ts'
import { isDatabaseUnavailable } from '../../db/databaseUnavailable.ts'
import type { GraphQLContext } from './builder.ts'

/**
 * One GraphQL request may carry several `broadcastTransaction` fields (aliases). graphql-js runs a mutation's
 * fields one after the other, and the field is non-null: one refused after others were stored nulls the whole
 * answer (`data: null`), so the client never learns the ids of those stored, and one without idempotency keys
 * sends them again (they run twice). So every field's input is checked before the first is stored, and a field
 * that fails afterwards anyway (its key's in-flight cap, an idempotency conflict, the database) says in its error
 * which fields were stored, with their ids.
 */

/**
 * The broadcastTransaction fields the mutation executes (not skipped by @skip/@include): inside fragments too
 * (`... on Mutation { }`, `...Named`), which counting the top-level fields alone missed (16 submissions for one
 * token). Fields with one response key are merged by graphql-js and run once, so they count once (a fragment spread
 * twice).
 */
export function submissionFields(info: GraphQLResolveInfo): FieldNode[] {
  const byKey = new Map<string, FieldNode>()
  const included = (node: FieldNode | SelectionNode) =>
    getDirectiveValues(GraphQLSkipDirective, node, info.variableValues)?.if !== true &&
    getDirectiveValues(GraphQLIncludeDirective, node, info.variableValues)?.if !== false
  const walk = (selections: readonly SelectionNode[], seen: Set<string>) => {
    for (const s of selections) {
      if (!included(s)) continue
      if (s.kind === Kind.FIELD) {
        if (s.name.value === 'broadcastTransaction' && !byKey.has(s.alias?.value ?? s.name.value)) byKey.set(s.alias?.value ?? s.name.value, s)
      } else if (s.kind === Kind.INLINE_FRAGMENT) walk(s.selectionSet.selections, seen)
      else {
        const fragment: FragmentDefinitionNode | undefined = info.fragments[s.name.value]
        if (!seen.has(s.name.value) && fragment) {
          seen.add(s.name.value)
          walk(fragment.selectionSet.selections, seen)
        }
      }
    }
  }
  walk(info.operation.selectionSet.selections, new Set())
  return [...byKey.values()]
}

/**
 * Each broadcastTransaction field takes a rate token, all at the first: more of them than the key's bucket ever
 * holds (`limits.burst`) can never pass, and RATE_LIMITED with a Retry-After had its client try again for ever.
 */
export function refuseOverBurst(fields: number, burst: number): void {
  if (fields > burst)
    throw new InputError(
      ERROR_CODE.QUERY_TOO_COMPLEX,
      `this request carries ${fields} broadcastTransaction fields, each taking a rate token, and the key's limits.burst is ${burst}: it can never pass; send at most ${burst} in one request`,
    )
}

/**
 * Checks the input of every broadcastTransaction field of the request (as each will be checked when it runs)
 * before the first is stored: one refused refuses them all, nothing stored, its response key named.
 */
export async function checkEverySubmission(ctx: GraphQLContext, info: GraphQLResolveInfo, fields: FieldNode[]): Promise<void> {
  const definition = info.parentType.getFields()['broadcastTransaction']!
  for (const field of fields) {
    const key = field.alias?.value ?? field.name.value
    try {
      const { input } = getArgumentValues(definition, field, info.variableValues)
      await checkBeforeStoring(ctx.service, validateBroadcastRequest(input, ctx.service.config), ctx.principal.name)
    } catch (err) {
      if (!(err instanceof InputError)) throw err
      throw new InputError(
        err.code,
        `${key}: ${err.message} (nothing of this request was stored: its broadcastTransaction fields are checked together before the first is stored)`,
        err.field,
        err.httpStatus,
      )
    }
  }
}

export type StoredSubmission = { field: string; id: string }

/** A broadcastTransaction field that failed after others of its request were stored: their ids, which `data: null` drops. */
export class PartlyStoredError extends InputError {
  override name = 'PartlyStoredError'
  override readonly extensions: Record<string, unknown> & { code: InputError['code']; stored: StoredSubmission[] }
  /** `extensions`: the field's own error's (its field, a retryAfterSeconds), kept. */
  constructor(code: InputError['code'], message: string, extensions: Record<string, unknown>, stored: StoredSubmission[]) {
    const list = stored.map((s) => `${s.field} = ${s.id}`).join(', ')
    super(code, `${message.replace(/[.\s]+$/, '')}. Stored before it in this request, though the answer's data is null: ${list} (extensions.stored)`)
    this.extensions = { ...extensions, code, stored }
  }
}

/** The error a broadcastTransaction field answers with once earlier fields of its request were stored. */
export function partlyStored(ctx: GraphQLContext, err: unknown, stored: StoredSubmission[]): unknown {
  if (err instanceof InputError) return new PartlyStoredError(err.code, err.message, err.extensions, stored)
  if (isDatabaseUnavailable(err))
    return new PartlyStoredError(ERROR_CODE.UNAVAILABLE, 'The service cannot reach its database; this field was not stored', { retryAfterSeconds: 5 }, stored)
  ctx.service.log.error({ err }, 'unexpected error in broadcastTransaction')
  // A connection lost during its commit lands here too: it may be stored (a 500 says so over REST).
  return new PartlyStoredError(
    ERROR_CODE.INTERNAL,
    'This field failed (an internal error, logged) and may have been stored: look it up, or send it again only with the same idempotencyKey',
    {},
    stored,
  )
}
