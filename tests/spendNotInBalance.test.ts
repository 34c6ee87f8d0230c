/**
 * What a signer's signed, unmined transactions may spend, which the sign stage keeps out of the balance it signs
 * against (sign/signerState.ts), read from a real Postgres.
 */
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spendNotInBalance } from '../src/sign/signerState.ts'
import { createMigratedTestDatabase } from './helpers/database.ts'

const SIGNER = '0x1111111111111111111111111111111111111111'

describe('spendNotInBalance', () => {
  let db: Awaited<ReturnType<typeof createMigratedTestDatabase>>
  let sql: postgres.Sql
  beforeAll(async () => {
    db = await createMigratedTestDatabase()
    sql = postgres(db.url, { max: 1, onnotice: () => {} })
  })
  afterAll(async () => {
    await sql?.end()
    await db?.drop()
  })

  /** A PENDING transaction at `nonce` worth `value`, with attempts [purpose, gas, max fee, status]. */
  async function pending(nonce: number, value: number, attempts: [string, number, number, string][]): Promise<void> {
    const [t] = await sql<{ id: string }[]>`
      INSERT INTO transactions (chain_id, signer, "to", value, status, nonce, api_key_name)
      VALUES (31337, ${SIGNER}, ${SIGNER}, ${value}, 'PENDING', ${nonce}, 'test') RETURNING id`
    for (const [i, [purpose, gas, fee, status]] of attempts.entries())
      await sql`
        INSERT INTO attempts (transaction_id, execution, chain_id, signer, nonce, hash, raw, gas_limit, max_fee_per_gas, max_priority_fee_per_gas, purpose, status)
        VALUES (${t!.id}, 1, 31337, ${SIGNER}, ${nonce}, ${`0x${nonce}${i}`.padEnd(66, 'a')}, '0x', ${gas}, ${fee}, 1, ${purpose}, ${status})`
  }

  it('counts the most any attempt a node may hold could cost: a request replaced by a cancel nodes refused still costs its own gas and value', async () => {
    // Past its deadline at the fee cap: the latest attempt is a 21000-gas cancel the nodes refused (they hold the
    // request). Before: only the cancel counted, 21000 × 200 + 5, and a later request was signed on money the held
    // request may still spend.
    await pending(0, 5, [
      ['REQUEST', 1_000_000, 100, 'SENT'],
      ['CANCEL', 21_000, 200, 'SIGNED'],
    ])
    // A bump: its raised fees count, once.
    await pending(1, 7, [
      ['REQUEST', 50_000, 100, 'REPLACED'],
      ['REQUEST', 50_000, 120, 'SENT'],
    ])
    // Refused as never valid by every node: no node may hold it, so it spends nothing.
    await pending(2, 9, [['REQUEST', 30_000, 100, 'REJECTED']])
    expect(await spendNotInBalance(sql, 31337, SIGNER, 0)).toBe(1_000_000n * 100n + 5n + (50_000n * 120n + 7n))
    // Mined nonces are in the balance already.
    expect(await spendNotInBalance(sql, 31337, SIGNER, 1)).toBe(50_000n * 120n + 7n)
  })
})
