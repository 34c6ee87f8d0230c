import { describe, expect, it } from 'vitest'
import { storedThenUnreadable } from './createYoga.ts'
import { PartlyStoredError } from './submissions.ts'

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

  it('with nothing stored (a query), or another failure, the error is left as it is', async () => {
    expect(await storedThenUnreadable(failing, () => undefined)(['x']).catch((e: unknown) => e)).toBe(refused)
    const other = new Error('syntax error')
    const stored = [{ field: 'a', id: '1' }]
    expect(await storedThenUnreadable(() => Promise.reject(other), () => stored)(['x']).catch((e: unknown) => e)).toBe(other)
  })
})
