import SchemaBuilder from '@pothos/core'
import RelayPlugin from '@pothos/plugin-relay'
import type DataLoader from 'dataloader'
import type { Hex } from 'viem'
import type { ServiceContext } from '../../context.ts'
import type { Principal } from '../auth.ts'
import type { AttemptView, EventRow } from '../../store/transactionRow.ts'

/** Per request: the service, who is asking, and loaders that batch attempt and event lookups. */
export type GraphQLContext = {
  service: ServiceContext
  principal: Principal
  /** Over SSE: whether the request's key is still valid (a long stream looks again for each event). */
  keyStillValid?: () => boolean
  /**
   * Over SSE: ends the connection at once. What a stream holds for a client that stopped reading is freed only once
   * its response ends, and a stalled reader (a zero TCP window, alive) never lets it end. Over a WebSocket the
   * keep-alive ping ends such a client, and its socket carries others' subscriptions: not given there.
   */
  terminate?: () => void
  /** Takes more of the key's rate tokens, all or none (throws RATE_LIMITED); the request itself took one. */
  takeToken?: (count: number) => void
  /** broadcastTransaction fields run in this request so far (aliases: one request may carry several). */
  submissions?: number
  /** Those of them stored, by response key (submissions.ts: a later one's error names them). */
  stored?: { field: string; id: string }[]
  loaders: {
    attempts: DataLoader<string, AttemptView[]>
    events: DataLoader<string, EventRow[]>
    scannedHeads: DataLoader<number, number | null>
    /** Long calldata a listed row left out (ListedTransactionRow), within the request's DATA_BUDGET_CHARS. */
    data: DataLoader<string, string | null>
    /**
     * Calldata this request's answer carries so far (hex characters), and long calldata read for it (`read`);
     * a subscription starts both again at each event.
     */
    dataRead: { chars: number; read: { chars: number } }
  }
}

export const builder = new SchemaBuilder<{
  Context: GraphQLContext
  Scalars: {
    Address: { Input: `0x${string}`; Output: string }
    Hex: { Input: Hex; Output: string }
    BigInt: { Input: bigint; Output: bigint | string | number }
    DateTime: { Input: Date; Output: Date | string }
  }
  DefaultFieldNullability: false
}>({
  plugins: [RelayPlugin],
  defaultFieldNullability: false,
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodeQueryOptions: false,
    nodesQueryOptions: false,
  },
})
