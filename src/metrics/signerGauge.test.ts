import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMigratedTestDatabase } from '../../tests/helpers/database.ts'
import { createMetrics, registerDatabaseGauges } from './metrics.ts'

const A = '0x00000000000000000000000000000000000000aA'
const B = '0x00000000000000000000000000000000000000bB'
const GONE = '0x00000000000000000000000000000000000000cC'

/** txb_signer_short_of_funds against a real Postgres: one series per configured signer, none for one since removed. */
describe('txb_signer_short_of_funds', () => {
  let db: Awaited<ReturnType<typeof createMigratedTestDatabase>>
  beforeAll(async () => {
    db = await createMigratedTestDatabase()
    await db.conn.sql`
      INSERT INTO signer_nonces (chain_id, signer, next_nonce, short_of_funds_at)
      VALUES (31337, ${A}, 0, now()), (31337, ${B}, 3, NULL), (31337, ${GONE}, 0, now())`
  })
  afterAll(async () => {
    await db?.drop()
  })

  it('is 1 for a signer flagged short, 0 for one that is not, and leaves out a signer no longer configured', async () => {
    const metrics = createMetrics({ defaultMetrics: false })
    registerDatabaseGauges(metrics, db.conn.sql, [31337], [], new Set([`31337:${A}`, `31337:${B}`]))
    const text = await metrics.registry.metrics()
    expect(text).toContain(`txb_signer_short_of_funds{chain_id="31337",signer="${A}"} 1`)
    expect(text).toContain(`txb_signer_short_of_funds{chain_id="31337",signer="${B}"} 0`)
    expect(text).not.toContain(GONE)
  })
})
