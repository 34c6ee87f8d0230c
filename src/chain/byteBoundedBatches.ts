import { stringify, type EIP1193RequestFn } from 'viem'

/**
 * A JSON-RPC batch's bounds. geth and besu refuse an HTTP body over 5 MiB (HTTP 413, and none of the calls
 * runs); a request may carry ~254 KB of hex (calldata up to 127 KB), so 200 of them could be 50 MB. A megabyte
 * leaves room under that limit for the pieces of a few stages that reach one node at once.
 */
export const BATCH_LIMITS = { maxBytes: 1024 * 1024, maxRequests: 200 }

export type BatchLimits = typeof BATCH_LIMITS

/** Idle lanes (viem transports) kept for the next groups; more are made when needed and dropped when idle. */
const MAX_IDLE_LANES = 8

/** What a call adds to a batch's body besides its method and params: `{"jsonrpc":"2.0","id":…,"method":"","params":},`. */
const ENVELOPE_BYTES = 64

/** A call's share of a JSON-RPC batch body, in bytes (its params are hex and numbers: one byte a character). */
export function requestBytes(args: { method: string; params?: unknown }): number {
  return args.method.length + (args.params === undefined ? 0 : stringify(args.params).length) + ENVELOPE_BYTES
}

type Call = { args: Parameters<EIP1193RequestFn>[0]; options: Parameters<EIP1193RequestFn>[1]; resolve: (value: unknown) => void; reject: (err: unknown) => void }
type Piece = { calls: Call[]; bytes: number }
/** The calls made in one tick, cut into pieces within the limits, all sent through one lane. */
type Group = { lane: EIP1193RequestFn; pieces: Piece[]; firstSent: Promise<void>[] }

/**
 * Requests to one provider, batched as viem's http transport batches them (the calls of one tick share an HTTP
 * round trip) but cut by bytes as well as by count: a tick's calls go out in pieces of at most `limits`, each
 * its own HTTP request. A call over the limit on its own goes alone (nothing splits it).
 *
 * `openLane` makes a viem http transport (batching, wait 0) that no other group uses while this one runs: viem
 * batches per transport instance, so pieces on separate lanes are never merged back into one body. Within a
 * tick the first piece goes out as its calls are made (no added wait); each later one once the one before it is
 * answered, in the order the calls were made: the broadcast stage makes a provider's sends in nonce order.
 */
export function byteBoundedBatches(openLane: () => EIP1193RequestFn, limits: BatchLimits = BATCH_LIMITS): EIP1193RequestFn {
  const idleLanes: EIP1193RequestFn[] = []
  let open: Group | null = null

  const send = (lane: EIP1193RequestFn, call: Call) => lane(call.args, call.options).then(call.resolve, call.reject)

  async function sendTheRest(group: Group): Promise<void> {
    await Promise.all(group.firstSent)
    for (const piece of group.pieces.slice(1)) await Promise.all(piece.calls.map((call) => send(group.lane, call)))
    // Kept for reuse up to a few: a provider that hung made one lane per tick, and all of them stayed.
    if (idleLanes.length < MAX_IDLE_LANES) idleLanes.push(group.lane)
  }

  return ((args, options) =>
    new Promise<unknown>((resolve, reject) => {
      let group = open
      if (!group) {
        const opened: Group = { lane: idleLanes.pop() ?? openLane(), pieces: [{ calls: [], bytes: 0 }], firstSent: [] }
        group = open = opened
        // The tick's end, as viem's batching (wait: 0) counts it: calls after it make a new group, on another lane.
        setTimeout(() => {
          open = null
          void sendTheRest(opened)
        }, 0)
      }
      const call: Call = { args, options, resolve, reject }
      const bytes = requestBytes(args)
      let piece = group.pieces.at(-1)!
      if (piece.calls.length > 0 && (piece.calls.length >= limits.maxRequests || piece.bytes + bytes > limits.maxBytes))
        group.pieces.push((piece = { calls: [], bytes: 0 }))
      piece.calls.push(call)
      piece.bytes += bytes
      if (group.pieces.length === 1) group.firstSent.push(send(group.lane, call))
    })) as EIP1193RequestFn
}
