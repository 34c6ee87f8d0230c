import type { Address } from 'viem'
import type { Sql } from '../db/connect.ts'
import { pgArray } from '../db/pgArray.ts'
import type { SignerRegistry } from '../signers/loadSigners.ts'

/**
 * The signers of a chain no longer in this instance's config (a key rotated out) that still have PENDING
 * transactions there: the watcher follows their receipts, the reconciler goes over them (all but filling holes).
 */
export async function unconfiguredPendingSigners(sql: Sql, signers: SignerRegistry, chainId: number): Promise<Address[]> {
  const configured = signers.forChain(chainId).map((s) => s.address)
  const rows = await sql<{ signer: Address }[]>`
    SELECT DISTINCT signer FROM transactions WHERE chain_id = ${chainId} AND status = 'PENDING' AND signer <> ALL(${pgArray(configured)}::text[])`
  return rows.map((r) => r.signer)
}
