/**
 * The console's server: every asset from this process (no external network), read-only, bound to
 * 127.0.0.1, and deaf to requests that name another host (DNS rebinding).
 */
import { request } from "node:http"
import { afterAll, describe, expect, it } from "vitest"
import { CONSOLE_HOST, startConsoleServer, type ConsoleServer, type ConsoleSnapshot } from "../../tools/console/server.ts"
import { ConsoleState } from "../../tools/console/state.ts"
import { pipelineStatus } from "../fixtures/status.ts"

const get = (url: string, options: { method?: string; host?: string } = {}) =>
  new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const target = new URL(url)
    const req = request({ host: target.hostname, port: target.port, path: target.pathname, method: options.method ?? "GET", headers: options.host ? { Host: options.host } : {} }, (res) => {
      let body = ""
      res.on("data", (d) => (body += d))
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    req.on("error", reject)
    req.end()
  })

const servers: Array<ConsoleServer> = []
afterAll(async () => {
  for (const server of servers) await server.close()
})

describe("console server", () => {
  it("serves the page, its script, style and the chart library, each from this process, on 127.0.0.1", async () => {
    const state = new ConsoleState({ mode: "stage", title: "totes console · stage test", intervalMs: 1_000 })
    const server = await startConsoleServer({ port: 0, snapshot: () => state.snapshot() })
    servers.push(server)
    expect(server.url).toBe(`http://${CONSOLE_HOST}:${server.port}/`)

    const page = await get(server.url)
    expect(page.status).toBe(200)
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8")
    expect(page.headers["content-security-policy"]).toContain("default-src 'self'")
    // Every script and stylesheet the page names is served here: no external network at run time.
    const references = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((ref) => !ref.startsWith("/api/"))
    expect(references.sort()).toEqual(["/console.css", "/console.js", "/vendor/uPlot.iife.min.js", "/vendor/uPlot.min.css"])
    for (const ref of references) {
      const asset = await get(new URL(ref, server.url).href)
      expect(asset.status, ref).toBe(200)
      expect(asset.body.length, ref).toBeGreaterThan(1_000)
    }
    expect((await get(new URL("/vendor/uPlot.iife.min.js", server.url).href)).body).toContain("uPlot")
    expect((await get(new URL("/nope", server.url).href)).status).toBe(404)
    expect((await get(`http://localhost:${server.port}/`)).status).toBe(200)
  })

  it("answers the status only once there is one, and the console snapshot always", async () => {
    let snapshot: ConsoleSnapshot | undefined
    const state = new ConsoleState({ mode: "dev", title: "totes dev", intervalMs: 1_000, otherErrors: () => ["reader: boom"] })
    const server = await startConsoleServer({ port: 0, snapshot: () => (snapshot = state.snapshot()) })
    servers.push(server)
    const api = (path: string) => get(new URL(path, server.url).href)
    expect((await api("/api/status")).status).toBe(503)
    const empty = JSON.parse((await api("/api/console")).body)
    expect(empty).toMatchObject({ mode: "dev", title: "totes dev", status: null, stages: [], errors: ["reader: boom"] })

    const status = pipelineStatus()
    state.record({ at: Date.parse(status.at), status, published: 10, applied: 9, latenciesMs: [120] })
    const answered = await api("/api/status")
    expect(answered.status).toBe(200)
    expect(answered.headers["cache-control"]).toBe("no-store")
    expect(JSON.parse(answered.body)).toEqual(status)
    const full = JSON.parse((await api("/api/console")).body)
    expect(full).toEqual(JSON.parse(JSON.stringify(snapshot)))
    expect(full.updatedAt).toBe(status.at)
    expect(full.stages.map((s: { id: string }) => s.id)).toEqual(["source", "reader", "stream", "lake", "consumer", "warehouse"])
    expect(full.history.t).toEqual([Date.parse(status.at) / 1000])
    expect(full.history.series.latencyP50Ms).toEqual([120])
  })

  it("is read-only and refuses requests naming another host", async () => {
    const state = new ConsoleState({ mode: "stage", title: "t", intervalMs: 1_000 })
    const server = await startConsoleServer({ port: 0, snapshot: () => state.snapshot() })
    servers.push(server)
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const refused = await get(new URL("/api/status", server.url).href, { method })
      expect(refused.status, method).toBe(405)
      expect(refused.headers.allow).toBe("GET, HEAD")
    }
    expect((await get(server.url, { host: `rebound.example:${server.port}` })).status).toBe(421)
    expect((await get(server.url, { host: "127.0.0.1:1" })).status).toBe(421)
    expect((await get(server.url, { method: "HEAD" })).body).toBe("")
  })

  it("a port in use is refused with what to do", async () => {
    const state = new ConsoleState({ mode: "stage", title: "t", intervalMs: 1_000 })
    const first = await startConsoleServer({ port: 0, snapshot: () => state.snapshot() })
    servers.push(first)
    await expect(startConsoleServer({ port: first.port, snapshot: () => state.snapshot() })).rejects.toThrow(
      `cannot serve the console on 127.0.0.1:${first.port} (the port is in use): choose another with --port, or --port 0 for a free one`
    )
  })
})
