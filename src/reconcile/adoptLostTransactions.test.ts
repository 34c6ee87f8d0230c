import { Writable } from 'node:stream'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ChainClients } from '../chain/createChainClients.ts'
import { createLogger } from '../common/logger.ts'
import type { ServiceContext } from '../context.ts'
import { adoptLostTransactions, SEARCH_PATIENCE_MS } from './adoptLostTransactions.ts'

describe('adoptLostTransactions', () => {
  afterEach(() => void vi.useRealTimers())

  it('a search a provider keeps failing is asked again, and given up after its patience: the signer does not wait for ever', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const lines: Array<Record<string, unknown>> = []
    const log = createLogger({ level: 'info', pretty: false, destination: new Writable({ write: (c, _e, done) => (lines.push(JSON.parse(c.toString())), done()) }) })
    // A provider that refuses counts at past blocks in words nobody knows.
    const read = {
      getBlockNumber: async () => 1_000n,
      getTransactionCount: async ({ blockNumber }: { blockNumber: bigint }) => {
        if (blockNumber === 1_000n) return 5
        throw new Error('this endpoint only answers for the latest block')
      },
    }
    const ctx = { log, db: { sql: null } } as unknown as ServiceContext
    const chain = { chainId: 1, read } as unknown as ChainClients
    const adopt = () => adoptLostTransactions(ctx, chain, '0x00000000000000000000000000000000000000aa', 3, 5, new Date())
    await expect(adopt()).rejects.toThrow(/latest block/)
    vi.setSystemTime(Date.now() + SEARCH_PATIENCE_MS - 1_000)
    await expect(adopt()).rejects.toThrow(/latest block/)
    expect(lines).toHaveLength(0)
    vi.setSystemTime(Date.now() + 2_000)
    expect((await adopt()).adopted).toBe(0)
    expect(lines.map((l) => l.msg)).toEqual([expect.stringMatching(/failed for 10 minutes/), expect.stringMatching(/handed on unchecked/)])
    // Given up once: the next failure starts its patience again.
    await expect(adopt()).rejects.toThrow(/latest block/)
  })
})
