/**
 * A loopback TCP proxy that a test can cut: `down()` drops every connection and refuses new
 * ones (what a database outage looks like to a client), `up()` lets traffic through again.
 */
import { createServer, connect, type Socket } from "node:net"

export interface TcpProxy {
  readonly port: number
  readonly down: () => void
  readonly up: () => void
  readonly close: () => Promise<void>
}

export const startTcpProxy = async (targetPort: number): Promise<TcpProxy> => {
  let open = true
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    if (!open) return client.destroy()
    const upstream = connect(targetPort, "127.0.0.1")
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
