import { describe, expect, it } from 'vitest'
import { createMigratedTestDatabase } from '../../tests/helpers/database.ts'
import { checkDevChain } from './checkDevChain.ts'

describe('checkDevChain (real Postgres at 127.0.0.1:5432)', () => {
  it('a dev chain behind the database is refused, saying how to start over with the database in use', async () => {
    const db = await createMigratedTestDatabase()
    try {
      await db.conn.sql`INSERT INTO chain_cursors (chain_id, block_number, block_hash) VALUES (31337, 500, '0x01')`
      const refusal = (embedded: boolean) =>
        checkDevChain(db.url, 31337, 0n, '/tmp/dev-data', { embedded }).then(
          () => null,
          (e: Error) => e.message,
        )
      expect(await refusal(true)).toMatch(/the dev chain is at block 0, but the dev database has followed it to block 500.*Delete \/tmp\/dev-data to start over/)
      // With a DATABASE_URL, deleting the data dir leaves that database as it was (before: it said to, and every start
      // was refused again).
      const withUrl = await refusal(false)
      expect(withUrl).toMatch(/Drop and create again the database DATABASE_URL names \(127\.0\.0\.1:5432\/\w+\) to start over.*or unset DATABASE_URL/)
      expect(withUrl).not.toContain('Delete /tmp/dev-data')
      // A chain as far as the database (or a few blocks short: a lost state save) is the same chain.
      await expect(checkDevChain(db.url, 31337, 498n, '/tmp/dev-data', { embedded: false })).resolves.toBeUndefined()
    } finally {
      await db.drop()
    }
  })
})
