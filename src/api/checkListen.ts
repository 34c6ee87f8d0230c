import { createServer } from 'node:net'
import { ConfigError } from '../config/loadConfig.ts'

/** A listen error as the operator's to fix: which of PORT or HOST, and what to change. Other errors as they are. */
export function explainListenError(err: unknown, port: number, host: string): Error {
  const code = (err as NodeJS.ErrnoException | null)?.code
  if (code === 'EADDRINUSE') return new ConfigError(`PORT ${port} on HOST ${host} is in use: stop what listens there, or set PORT to a free port`)
  if (code === 'EADDRNOTAVAIL') return new ConfigError(`HOST ${host} is not an address of this machine: set HOST to one of its addresses (0.0.0.0 for all)`)
  if (code === 'EACCES') return new ConfigError(`PORT ${port} needs privileges this process lacks: set PORT to 1024 or above`)
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new ConfigError(`HOST ${host} does not resolve to an address: set HOST to an address of this machine`)
  return err as Error
}

/**
 * Whether the API can listen where it is told, asked before anything else starts: the service listens only once
 * its migrations, job queues and stages run, so a port in use failed after all of that, with two stack traces
 * (one from the WebSocket server), the stages already signing. Port 0 (any free port) needs no check.
 */
export async function checkListen(port: number, host: string): Promise<void> {
  if (port === 0) return
  const probe = createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err) => reject(explainListenError(err, port, host)))
    probe.listen(port, host, () => probe.close(() => resolve()))
  })
}
