import { FixedBuffer, Repeater } from 'graphql-yoga'
import { parseTransactionId } from '../../accept/parseFields.ts'
import { ERROR_CODE, InputError } from '../../core/errors.ts'
import type { TxStatus } from '../../core/txStatus.ts'
import type { TransactionRow } from '../../store/transactionRow.ts'
import { requireRole } from '../auth.ts'
import { builder } from './builder.ts'
// A cycle with schema.ts, safe because Pothos reads these only inside field thunks, when the schema is built.
import { TransactionStatus, TransactionType } from './schema.ts'

/** Buffered per subscriber; a client that falls this far behind is disconnected rather than using unbounded memory. */
const MAX_BUFFERED = 10_000
/** How often an SSE subscription looks at its key when nothing it would deliver happens. */
const KEY_RECHECK_MS = 5_000

builder.subscriptionType({
  fields: (t) => ({
    transactionUpdated: t.field({
      type: TransactionType,
      description:
        'Every status change (and bump, cancel, retry) of a transaction, from any instance, in order. Filter by id and/or statuses. Over graphql-ws (WebSocket) and SSE on /graphql.',
      args: {
        id: t.arg.id(),
        status: t.arg({ type: [TransactionStatus] }),
      },
      subscribe: (_, args, ctx) => {
        requireRole(ctx.principal, 'reader')
        const id = args.id ? parseTransactionId(String(args.id)) : null
        const statuses = args.status?.length ? new Set<TxStatus>(args.status as TxStatus[]) : null
        const updates = ctx.service.updates
        // The buffer holds what the client has not read yet. Without one, a Repeater takes at most 1,024 pushes
        // not yet read and throws on the next: one batch of more changes than that (a burst, a stall) dropped the
        // rest for every subscriber, and logged an error for each. Past MAX_BUFFERED (and the Repeater's own 1,024
        // waiting pushes) the client is too slow and is disconnected.
        return new Repeater<TransactionRow>(async (push, stop) => {
          // Over SSE, a revoked key's stream ends: at any change it sees, and every few seconds on a quiet one (one
          // waiting for a transaction already final, or for a status that never comes).
          const revoked = () => {
            if (!ctx.keyStillValid || ctx.keyStillValid()) return false
            stop(new InputError(ERROR_CODE.UNAUTHENTICATED, 'The API key is no longer valid', undefined, 401))
            return true
          }
          const keyCheck = ctx.keyStillValid ? setInterval(revoked, KEY_RECHECK_MS) : undefined
          keyCheck?.unref()
          const unsubscribe = updates.subscribe((row) => {
            if (revoked()) return
            if (id && row.id !== id) return
            if (statuses && !statuses.has(row.status)) return
            try {
              push(row).catch(() => {})
            } catch {
              // The buffer is full and so is the Repeater's queue of waiting pushes (RepeaterOverflowError).
              stop(new Error('subscriber too slow; reconnect and re-read with transactions(...)'))
            }
          })
          await stop
          clearInterval(keyCheck)
          unsubscribe()
        }, new FixedBuffer(MAX_BUFFERED))
      },
      // A subscription keeps one context for its whole life: before each event, forget everything its loaders
      // cached, or attempts, events and confirmations would be stale. Forgetting only this event's transaction
      // left the loaders holding every transaction the subscription ever delivered (attempts carry the raw
      // signed bytes): memory grew for as long as it stayed open. Events are resolved one after another.
      resolve: (row: TransactionRow, _args, ctx) => {
        ctx.loaders.attempts.clearAll()
        ctx.loaders.events.clearAll()
        ctx.loaders.scannedHeads.clearAll()
        return row
      },
    }),
  }),
})
