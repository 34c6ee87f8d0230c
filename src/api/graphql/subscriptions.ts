import { FixedBuffer, Repeater } from 'graphql-yoga'
import { parseTransactionId } from '../../accept/parseFields.ts'
import { ERROR_CODE, InputError } from '../../core/errors.ts'
import type { TxStatus } from '../../core/txStatus.ts'
import type { FeedRow, TransactionUpdates } from '../../events/transactionUpdates.ts'
import { requireRole } from '../auth.ts'
import { TooManyRequestsError } from '../rateLimit.ts'
import { builder } from './builder.ts'
// A cycle with schema.ts, safe because Pothos reads these only inside field thunks, when the schema is built.
import { TransactionStatus, TransactionType } from './schema.ts'

/** Buffered per subscriber; a client that falls this far behind is disconnected rather than using unbounded memory. */
const MAX_BUFFERED = 10_000
/** How often an SSE subscription looks at its key when nothing it would deliver happens. */
const KEY_RECHECK_MS = 5_000
/** Open subscriptions per API key name, per running service (this instance). */
const openByKey = new WeakMap<object, Map<string, number>>()

/** A transaction's row now, tried again while the database fails, for as long as its subscription is open. */
async function currentRow(updates: TransactionUpdates, id: string, stopped: Promise<unknown>): Promise<FeedRow | null> {
  let open = true
  void stopped.then(
    () => (open = false),
    () => (open = false),
  )
  for (let tries = 1; open; tries++) {
    try {
      return await updates.current(id)
    } catch {
      await new Promise((r) => setTimeout(r, Math.min(500 * tries, 5_000)))
    }
  }
  return null
}

builder.subscriptionType({
  fields: (t) => ({
    transactionUpdated: t.field({
      type: TransactionType,
      description:
        'Every status change (and bump, cancel, retry) of a transaction, from any instance, in order. Filter by id and/or statuses. With an id, it starts with the transaction as it is now (if its status passes the filter), so a change made while it was being set up is not missed. Over graphql-ws (WebSocket) and SSE on /graphql.',
      args: {
        id: t.arg.id(),
        status: t.arg({ type: [TransactionStatus] }),
      },
      subscribe: (_, args, ctx) => {
        requireRole(ctx.principal, 'reader')
        // An empty id (an unset variable) is refused, not read as "every transaction": a client would take others' changes for its own.
        const id = args.id != null ? parseTransactionId(String(args.id)) : null
        const statuses = args.status?.length ? new Set<TxStatus>(args.status as TxStatus[]) : null
        const updates = ctx.service.updates
        // Each open subscription costs an execution per change it delivers: a key may hold only so many at once.
        const max = ctx.service.config.limits.maxSubscriptionsPerKey
        const open = openByKey.get(ctx.service) ?? new Map<string, number>()
        openByKey.set(ctx.service, open)
        const key = ctx.principal.name
        if ((open.get(key) ?? 0) >= max)
          throw new TooManyRequestsError(
            ERROR_CODE.TOO_MANY_SUBSCRIPTIONS,
            `Key "${key}" already holds ${max} open subscriptions on this instance (limits.maxSubscriptionsPerKey); close one first`,
            5,
          )
        open.set(key, (open.get(key) ?? 0) + 1)
        let released = false
        const release = () => {
          if (released) return
          released = true
          const n = (open.get(key) ?? 1) - 1
          if (n <= 0) open.delete(key)
          else open.set(key, n)
        }
        // The buffer holds what the client has not read yet. Without one, a Repeater takes at most 1,024 pushes
        // not yet read and throws on the next: one batch of more changes than that (a burst, a stall) dropped the
        // rest for every subscriber, and logged an error for each. Past MAX_BUFFERED (and the Repeater's own 1,024
        // waiting pushes) the client is too slow and is disconnected.
        const stream = new Repeater<FeedRow>(async (push, stop) => {
          // Over SSE, a revoked key's stream ends: at the next change it would deliver, and within a few seconds on a
          // quiet one (one waiting for a transaction already final, or for a status that never comes).
          const revoked = () => {
            if (!ctx.keyStillValid || ctx.keyStillValid()) return false
            stop(new InputError(ERROR_CODE.UNAUTHENTICATED, 'The API key is no longer valid', undefined, 401))
            return true
          }
          const keyCheck = ctx.keyStillValid ? setInterval(revoked, KEY_RECHECK_MS) : undefined
          keyCheck?.unref()
          /** For one transaction: the latest of its events delivered (or passed over), so none goes out after a later one. */
          let latestEvent = -1n
          const deliver = (row: FeedRow) => {
            if (id) {
              if (row.id !== id) return
              const event = BigInt(row.event_id)
              if (event <= latestEvent) return
              latestEvent = event
            }
            if (statuses && !statuses.has(row.status)) return
            // After the filters: a key check per change per stream was a lot of work for streams that skip most.
            if (revoked()) return
            try {
              push(row).catch(() => {})
            } catch {
              // The buffer is full and so is the Repeater's queue of waiting pushes (RepeaterOverflowError).
              stop(new Error('subscriber too slow; reconnect and re-read with transactions(...)'))
              // Stopped, the stream still holds its buffer until the client has read it, which this one is not doing.
              ctx.terminate?.()
            }
          }
          const unsubscribe = updates.subscribe(deliver)
          // One transaction's subscription starts with the transaction as it is now, read once the feed is listened
          // to: no change falls between the two. A client that subscribed and then read it (as the README said) could
          // read QUEUED before a change the socket was not yet listening for (the subscription is set up a round trip
          // or two after the read is answered): its FAILED went by, and nothing more ever came.
          if (id) void currentRow(updates, id, stop).then((row) => row && deliver(row))
          await stop
          clearInterval(keyCheck)
          unsubscribe()
          release()
        }, new FixedBuffer(MAX_BUFFERED))
        // Ended before its first read (the client left at once): the executor above never ran, so release here.
        const end = stream.return.bind(stream)
        stream.return = (value) => {
          release()
          return end(value)
        }
        return stream
      },
      // A subscription keeps one context for its whole life: before each event, forget everything its loaders
      // cached, or attempts, events and confirmations would be stale. Forgetting only this event's transaction
      // left the loaders holding every transaction the subscription ever delivered (attempts carry the raw
      // signed bytes): memory grew for as long as it stayed open. Events are resolved one after another.
      resolve: (row: FeedRow, _args, ctx) => {
        ctx.loaders.attempts.clearAll()
        ctx.loaders.events.clearAll()
        ctx.loaders.scannedHeads.clearAll()
        ctx.loaders.data.clearAll()
        ctx.loaders.dataRead.chars = 0
        ctx.loaders.dataRead.read.chars = 0
        return row
      },
    }),
  }),
})
