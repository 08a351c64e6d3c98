/**
 * A loopback TCP proxy that a test can cut: `down()` drops every connection and refuses new
 * ones (what a database outage looks like to a client), `up()` lets traffic through again.
 * `retarget(port)` sends new connections elsewhere: with `down()` before it, a failover as a
 * client behind a DNS name or a virtual IP sees it.
 */
import { createServer, connect, type Socket } from "node:net"

export interface TcpProxy {
  readonly port: number
  readonly down: () => void
  readonly up: () => void
  readonly retarget: (port: number) => void
  readonly close: () => Promise<void>
}

export const startTcpProxy = async (targetPort: number): Promise<TcpProxy> => {
  let open = true
  let target = targetPort
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    if (!open) return client.destroy()
    const upstream = connect(target, "127.0.0.1")
    sockets.add(client).add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on("error", drop).on("close", drop)
    upstream.on("error", drop).on("close", drop)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as { port: number }).port
  return {
    port,
    down: () => {
      open = false
      for (const socket of sockets) socket.destroy()
      sockets.clear()
    },
    up: () => {
      open = true
    },
    retarget: (port) => {
      target = port
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

/** The same URL with host and port replaced by the proxy's. */
export const viaProxy = (url: string, proxy: TcpProxy) => {
  const parsed = new URL(url)
  parsed.hostname = "127.0.0.1"
  parsed.port = String(proxy.port)
  return parsed.toString()
}
