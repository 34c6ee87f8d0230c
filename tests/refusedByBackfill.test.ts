import postgres from 'postgres'
import { expect, it } from 'vitest'
import { migrateDatabase } from '../src/db/migrate.ts'
import { createTestDatabase, migrateUpTo } from './helpers/database.ts'

const SIGNER = '0x90F79bf6EB2c4f870365E785982E1f101E93b906'
const AT = 'signer "remote": eth_signTransaction at http://127.0.0.1:9/'

it('the refused_by backfill marks the QUEUED requests a remote signer refused before the column existed, and no others', async () => {
  const db = await createTestDatabase()
  const sql = postgres(db.url, { max: 1, onnotice: () => {} })
  try {
    await migrateUpTo(db.url, '_refused_by_backfill')
    const rows: [string, string, string | null, string | null][] = [
      // [label, status, error_code, error_message]
      ['refused, its own', 'QUEUED', 'SIGNER_REFUSED', `${AT} refused: Request denied; it waits until 2026-11-26T22:00:00.000Z, then fails`],
      ['refused, not yet judged', 'QUEUED', 'SIGNER_UNAVAILABLE', `${AT} refused: Request denied; it waits for the signer, looked at again every few seconds`],
      ['signer down', 'QUEUED', 'SIGNER_UNAVAILABLE', `${AT} failed: HTTP 403: access refused: token expired; it waits for the signer, looked at again every few seconds`],
      ['short of funds', 'QUEUED', 'INSUFFICIENT_FUNDS', 'balance too low'],
      ['failed refused', 'FAILED', 'SIGNER_REFUSED', `${AT} refused: Request denied (still so after 601 s)`],
      ['fresh', 'QUEUED', null, null],
    ]
    for (const [label, status, code, message] of rows)
      await sql`INSERT INTO transactions (chain_id, signer, status, error_code, error_message, idempotency_key, api_key_name, final_at)
                VALUES (31337, ${SIGNER}, ${status}, ${code}, ${message}, ${label}, 'test', ${status === 'FAILED' ? new Date() : null})`
    await migrateDatabase(db.url)
    const marked = await sql<{ label: string; refused_by: string | null }[]>`SELECT idempotency_key AS label, refused_by FROM transactions ORDER BY seq`
    expect(Object.fromEntries(marked.map((r) => [r.label, r.refused_by]))).toEqual({
      'refused, its own': SIGNER,
      'refused, not yet judged': SIGNER,
      'signer down': null,
      'short of funds': null,
      'failed refused': null,
      fresh: null,
    })
  } finally {
    await sql.end()
    await db.drop()
  }
})
