/**
 * The console's web server: one page, its script and style, the chart library from node_modules,
 * and two JSON endpoints. Bound to 127.0.0.1 only, GET/HEAD only (nothing it serves changes
 * anything), no external network: every asset comes from this process.
 *
 *   GET /                 the page (tools/console/page/)
 *   GET /api/status       the latest status reading: what `totes status --json` prints
 *   GET /api/console      the status, the pipeline's stages, the time series and recent errors
 *
 * Requests whose Host is not this server's own loopback address are refused, so a web page
 * elsewhere cannot read the console through a DNS name that points at 127.0.0.1 (DNS rebinding).
 */
import { readFileSync } from "node:fs"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { createRequire } from "node:module"
import type { PipelineStage } from "../../services/status/stages.ts"
import type { LoadProgress } from "../../services/status/load-progress.ts"
import type { PipelineStatus } from "../../services/status/status.ts"
import type { HistoryColumns } from "./history.ts"

export const CONSOLE_HOST = "127.0.0.1"

export interface ConsoleSnapshot {
  /** dev: `totes dev` (figures from the components' EMF lines); stage: `totes console` (figures from status samples). */
  readonly mode: "dev" | "stage"
  readonly title: string
  readonly startedAt: string
  /** When the newest status reading was taken. */
  readonly updatedAt: string | null
  readonly intervalMs: number
  readonly status: PipelineStatus | null
  readonly stages: ReadonlyArray<PipelineStage>
  readonly history: HistoryColumns
  /** The initial snapshot while it runs and the newest repair, table by table (empty: neither). */
  readonly loads: ReadonlyArray<LoadProgress>
  /** Recent failures (reading the status; in `totes dev` also the components'), newest last; no secrets, no row values. */
  readonly errors: ReadonlyArray<string>
}

export interface ConsoleServer {
  readonly url: string
  readonly port: number
  readonly close: () => Promise<void>
}

const require = createRequire(import.meta.url)
const page = (name: string) => readFileSync(new URL(`./page/${name}`, import.meta.url))

/** Path → [content type, body], read once at start. */
const assets = (): Map<string, readonly [string, Buffer]> =>
  new Map([
    ["/", ["text/html; charset=utf-8", page("index.html")]],
    ["/console.js", ["text/javascript; charset=utf-8", page("console.js")]],
    ["/console.css", ["text/css; charset=utf-8", page("console.css")]],
    ["/vendor/uPlot.iife.min.js", ["text/javascript; charset=utf-8", readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js"))]],
    ["/vendor/uPlot.min.css", ["text/css; charset=utf-8", readFileSync(require.resolve("uplot/dist/uPlot.min.css"))]]
  ])

const SECURITY_HEADERS = {
  "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Resource-Policy": "same-origin"
}

export const startConsoleServer = async (options: { readonly port: number; readonly snapshot: () => ConsoleSnapshot }): Promise<ConsoleServer> => {
  const files = assets()
  let allowedHosts = new Set<string>()

  const send = (request: IncomingMessage, response: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}) => {
    response.writeHead(status, { ...SECURITY_HEADERS, "Content-Type": type, "Content-Length": String(Buffer.byteLength(body)), ...headers })
    response.end(request.method === "HEAD" ? undefined : body)
  }
  const json = (request: IncomingMessage, response: ServerResponse, status: number, value: unknown) =>
    send(request, response, status, "application/json; charset=utf-8", JSON.stringify(value), { "Cache-Control": "no-store" })

  const server = createServer((request, response) => {
    if (!allowedHosts.has(request.headers.host ?? "")) return send(request, response, 421, "text/plain; charset=utf-8", "this console answers only on its loopback address\n")
    if (request.method !== "GET" && request.method !== "HEAD") return send(request, response, 405, "text/plain; charset=utf-8", "read-only: GET only\n", { Allow: "GET, HEAD" })
    const path = new URL(request.url ?? "/", "http://console").pathname
    if (path === "/api/console") return json(request, response, 200, options.snapshot())
    if (path === "/api/status") {
      const { status } = options.snapshot()
      return status ? json(request, response, 200, status) : json(request, response, 503, { error: "no status read yet" })
    }
    const file = files.get(path)
    if (file) return send(request, response, 200, file[0], file[1], { "Cache-Control": "no-cache" })
    send(request, response, 404, "text/plain; charset=utf-8", "not found\n")
  })
  await new Promise<void>((resolve, reject) => {
    const refuse = (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE" || error.code === "EACCES"
          ? new Error(`cannot serve the console on ${CONSOLE_HOST}:${options.port} (${error.code === "EADDRINUSE" ? "the port is in use" : "not allowed"}): choose another with --port, or --port 0 for a free one`)
          : error
      )
    server.once("error", refuse)
    server.listen(options.port, CONSOLE_HOST, () => {
      server.off("error", refuse)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  allowedHosts = new Set([`${CONSOLE_HOST}:${port}`, `localhost:${port}`])
  return {
    url: `http://${CONSOLE_HOST}:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        // Open keep-alive connections (a browser tab) would hold close() back.
        server.closeAllConnections()
      })
  }
}
