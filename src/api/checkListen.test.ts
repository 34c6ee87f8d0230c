import { createServer, type Server } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkListen } from './checkListen.ts'

describe('checkListen', () => {
  let held: Server
  let port: number
  beforeAll(async () => {
    held = createServer()
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', () => r()))
    port = (held.address() as { port: number }).port
  })
  afterAll(() => new Promise<void>((r) => held.close(() => r())))

  it('a port in use is a ConfigError naming PORT and HOST', async () => {
    const err = await checkListen(port, '127.0.0.1').catch((e: Error) => e)
    expect(err).toMatchObject({ name: 'ConfigError', message: `PORT ${port} on HOST 127.0.0.1 is in use: stop what listens there, or set PORT to a free port` })
  })

  it('a HOST that is not an address of this machine is a ConfigError naming HOST', async () => {
    const err = await checkListen(port, '10.255.255.1').catch((e: Error) => e)
    expect(err).toMatchObject({ name: 'ConfigError', message: expect.stringMatching(/^HOST 10\.255\.255\.1 is not an address of this machine/) })
  })

  it('a free port passes, and is free again after the check', async () => {
    const probe = createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()))
    const free = (probe.address() as { port: number }).port
    await new Promise<void>((r) => probe.close(() => r()))
    await expect(checkListen(free, '127.0.0.1')).resolves.toBeUndefined()
    await expect(checkListen(free, '127.0.0.1')).resolves.toBeUndefined()
  })
})
