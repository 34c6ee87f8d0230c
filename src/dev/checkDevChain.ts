import { ConfigError } from '../config/loadConfig.ts'
import { describeDatabase } from '../db/checkDatabase.ts'
import { openPostgres } from '../db/socketUrl.ts'

/**
 * Blocks the dev chain may be behind the database's watcher cursor and still be the same chain: anvil saves its
 * state every second, so a machine that lost power loses a block or two, which the watcher handles as a reorg.
 */
const LOST_BLOCKS_TOLERATED = 3

/**
 * Dev mode's anvil keeps its chain in `<dataDir>/anvil-state.json`. With that file deleted (or from another
 * checkout) anvil starts a new chain at block 0 while the database remembers hundreds of blocks, nonces and
 * transactions: the watcher then logged "Block at number N could not be found" three times a second, and new
 * requests waited at nonces the new chain never reaches, with nothing said. Refused at start instead, saying what
 * to do. Nothing to compare on a new database.
 */
export async function checkDevChain(databaseUrl: string, chainId: number, head: bigint, dataDir: string, { embedded }: { embedded: boolean }): Promise<void> {
  const sql = openPostgres(databaseUrl, { max: 1, onnotice: () => {} })
  try {
    const rows = await sql<{ block_number: number }[]>`SELECT block_number::int8 AS block_number FROM chain_cursors WHERE chain_id = ${chainId}`.catch(
      (err: { code?: string }) => (err.code === '42P01' ? [] : Promise.reject(err)), // no table yet: a new database
    )
    const seen = rows[0]?.block_number
    if (seen === undefined || Number(head) + LOST_BLOCKS_TOLERATED >= seen) return
    throw new ConfigError(
      `the dev chain is at block ${head}, but the dev database has followed it to block ${seen}: the chain was reset ` +
        `(${dataDir}/anvil-state.json removed or replaced). ` +
        // With a DATABASE_URL, deleting the data dir leaves that database as it was: every start was refused again.
        (embedded
          ? `Delete ${dataDir} to start over (the dev database's transactions go with it)`
          : `Drop and create again the database DATABASE_URL names (${describeDatabase(databaseUrl)}) to start over (its transactions go with it), or unset DATABASE_URL to use the embedded one`),
    )
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {})
  }
}
