import { createServer, connect, type Server, type Socket } from 'node:net'

/** A TCP proxy on 127.0.0.1 whose link can be cut and restored: a database outage, for tests. */
export type TcpProxy = { port: number; cut: () => void; restore: () => void; close: () => Promise<void> }

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let up = true
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    if (!up) return void client.destroy()
    const upstream = connect(targetPort, targetHost)
    sockets.add(client).add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    port,
    /** Open connections are cut and new ones refused (ECONNREFUSED), as with a database that is down. */
    cut() {
      up = false
      for (const s of sockets) s.destroy()
      sockets.clear()
      server.close()
    },
    restore() {
      up = true
      // The port is taken again (another process took it while cut): the test's requests fail and say so, not a crash.
      if (!server.listening) server.once('error', (err) => console.error(`tcp proxy: cannot listen on ${port} again: ${err.message}`)).listen(port, '127.0.0.1')
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        if (!server.listening) return resolve()
        server.close(() => resolve())
      }),
  }
}
