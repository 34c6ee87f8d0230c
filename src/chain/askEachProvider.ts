import type { Hex } from 'viem'
import type { ChainClients } from './createChainClients.ts'
import { receiptOrNull } from './receiptOrNull.ts'

/** Whether the node has a receipt for the hash: only its "not found" answer counts as absent, not a failed call. */
export function receiptOrAbsent(chain: ChainClients, hash: Hex): Promise<'mined' | 'absent' | 'unknown'> {
  return receiptOrNull(chain, hash).then(
    (r) => (r ? 'mined' : 'absent'),
    () => 'unknown',
  )
}

/**
 * Every provider that is not down, asked on its own for the transaction: `mined` (its answer has a block hash),
 * `pooled`, `absent` (not found) or `unknown` (the call failed); null when none can be asked. A relay or private
 * endpoint may hold what the read node never saw, and a fallback client takes the first "not found" as the answer.
 */
async function askEachProvider(chain: ChainClients, hash: Hex): Promise<('mined' | 'pooled' | 'absent' | 'unknown')[] | null> {
  const asked = chain.providers.filter((p) => chain.health.usableForSend(p.name))
  if (asked.length === 0) return null
  return Promise.all(
    asked.map((p) =>
      p.client.getTransaction({ hash }).then(
        (t) => (t.blockHash ? ('mined' as const) : ('pooled' as const)),
        (err: unknown) => ((err as Error | null)?.name === 'TransactionNotFoundError' ? ('absent' as const) : ('unknown' as const)),
      ),
    ),
  )
}

/** Whether any node holds the transaction (in its pool, or mined). Absent only when each one asked said so. */
export async function heldOrAbsent(chain: ChainClients, hash: Hex): Promise<'held' | 'absent' | 'unknown'> {
  const answers = await askEachProvider(chain, hash)
  if (!answers) return 'unknown'
  if (answers.some((a) => a === 'mined' || a === 'pooled')) return 'held'
  return answers.every((a) => a === 'absent') ? 'absent' : 'unknown'
}

/**
 * Whether any node still has the transaction mined; a node that only holds it in its pool does not count.
 * `unknown` when a call failed or none could be asked: one provider's view (the fallback client's, on a losing
 * branch) never decides.
 */
export async function minedSomewhere(chain: ChainClients, hash: Hex): Promise<'mined' | 'not-mined' | 'unknown'> {
  const answers = await askEachProvider(chain, hash)
  if (!answers) return 'unknown'
  if (answers.includes('mined')) return 'mined'
  return answers.every((a) => a === 'pooled' || a === 'absent') ? 'not-mined' : 'unknown'
}
