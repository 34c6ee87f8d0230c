import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { signWebhook, verifyWebhook } from './signWebhook.ts'

describe('webhook signatures', () => {
  const secret = 'whsec-0123456789abcdef'
  const body = '{"id":"evt_1","toStatus":"CONFIRMED"}'

  it('is HMAC-SHA256 of "<timestamp>.<body>", hex, Stripe-style', () => {
    const expected = createHmac('sha256', secret).update(`1700000000.${body}`).digest('hex')
    expect(signWebhook(secret, body, 1_700_000_000)).toBe(`t=1700000000,v1=${expected}`)
  })

  it('verifies its own signature; refuses another secret, a changed body, a stale timestamp or garbage', () => {
    const header = signWebhook(secret, body, 1_700_000_000)
    expect(verifyWebhook(secret, body, header, 1_700_000_100)).toBe(true)
    expect(verifyWebhook('whsec-other-000000000', body, header, 1_700_000_100)).toBe(false)
    expect(verifyWebhook(secret, body.replace('1', '2'), header, 1_700_000_100)).toBe(false)
    expect(verifyWebhook(secret, body, header, 1_700_001_000)).toBe(false)
    expect(verifyWebhook(secret, body, 'v1=abc', 1_700_000_000)).toBe(false)
  })
})
