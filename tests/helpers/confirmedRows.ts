import postgres from 'postgres'

/**
 * Inserts `count` CONFIRMED transfers of `signer` (one the service does not hold, so no stage touches them), each
 * with its own nonce, block and hashes (`seed` keeps them apart from another call's), as the dashboard lists them.
 */
export async function insertConfirmedRows(databaseUrl: string, opts: { signer: string; to: string; count: number; firstBlock: number; seed: string; apiKeyName: string }): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  try {
    await sql`
      INSERT INTO transactions (chain_id, signer, "to", value, status, nonce, block_number, block_hash, mined_hash, receipt_status,
                                api_key_name, first_sent_at, included_at, final_at)
      SELECT 31337, ${opts.signer}, ${opts.to}, g, 'CONFIRMED', g, ${opts.firstBlock} + g,
             '0x' || md5(${opts.seed + 'a'} || g) || md5(${opts.seed + 'b'} || g), '0x' || md5(${opts.seed + 'c'} || g) || md5(${opts.seed + 'd'} || g), 'success',
             ${opts.apiKeyName}, now(), now(), now()
      FROM generate_series(1, ${opts.count}::int) AS g`
  } finally {
    await sql.end()
  }
}
