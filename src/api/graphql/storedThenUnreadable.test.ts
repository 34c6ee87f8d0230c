import { describe, expect, it } from 'vitest'
import { storedThenUnreadable } from './createYoga.ts'
import { PartlyStoredError } from './submissions.ts'
import { InputError } from '../../core/errors.ts'

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
const failing = async (): Promise<string[]> => {
  throw refused
}

describe('storedThenUnreadable', () => {
  it('a read failing for an unreachable database after this request stored a transaction names what was stored', async () => {
    const stored = [{ field: 'broadcastTransaction', id: '7b1f0c3e-0000-4000-8000-000000000001' }]
    const err = await storedThenUnreadable(failing, () => stored)(['x']).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PartlyStoredError)
    expect((err as PartlyStoredError).extensions).toMatchObject({ code: 'UNAVAILABLE', retryAfterSeconds: 5, stored })
    expect((err as Error).message).toContain('broadcastTransaction = 7b1f0c3e-0000-4000-8000-000000000001')
  })

  it('any other failure of the read (a connection lost in a failover) names what was stored too, as an internal error', async () => {
    const lost = Object.assign(new Error('write CONNECTION_CLOSED'), { code: 'CONNECTION_CLOSED' })
    const stored = [{ field: 'a', id: '1' }]
    const err = await storedThenUnreadable(() => Promise.reject(lost), () => stored)(['x']).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PartlyStoredError)
    expect((err as PartlyStoredError).extensions).toMatchObject({ code: 'INTERNAL', stored })
  })

  it('with nothing stored (a query), or a refusal of ours (too much calldata), the error is left as it is', async () => {
    expect(await storedThenUnreadable(failing, () => undefined)(['x']).catch((e: unknown) => e)).toBe(refused)
    const ours = new InputError('QUERY_TOO_COMPLEX', 'too much calldata')
    expect(await storedThenUnreadable(() => Promise.reject(ours), () => [{ field: 'a', id: '1' }])(['x']).catch((e: unknown) => e)).toBe(ours)
  })
})
