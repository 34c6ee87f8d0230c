import { describe, expect, it } from 'vitest'
import { deliveryTarget } from './webhooks.ts'

const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString('base64')}`

describe('deliveryTarget', () => {
  it('leaves a url without credentials as it is', () => {
    expect(deliveryTarget('https://hooks.example.com/in?x=1')).toEqual({ url: 'https://hooks.example.com/in?x=1', authorization: null })
  })
  it('moves credentials into an HTTP Basic header (fetch refuses a url with them), percent-decoded', () => {
    expect(deliveryTarget('https://hook:s%3Acret%40@hooks.example.com/in')).toEqual({ url: 'https://hooks.example.com/in', authorization: basic('hook:s:cret@') })
    expect(deliveryTarget('https://token@hooks.example.com/')).toEqual({ url: 'https://hooks.example.com/', authorization: basic('token:') })
  })
  it('takes a raw "%" that is no escape as it is (it threw, and the service did not start)', () => {
    expect(deliveryTarget('https://u:50%off@hooks.example.com/in').authorization).toBe(basic('u:50%off'))
  })
})
