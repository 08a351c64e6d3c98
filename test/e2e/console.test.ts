/**
 * The live console in a real browser (headless Chromium through playwright-core): `totes dev`
 * serves it on 127.0.0.1; the page draws the pipeline with each stage's state, its charts advance
 * between two readings, and a record put on the stream that cannot be decoded shows up among the
 * dead letters with its reason (and without its data). The JSON endpoint answers what
 * `totes status --json` prints; the server refuses writes and foreign Host headers. The test saves
 * a screenshot (the README's docs/console.png with UPDATE_SCREENSHOTS=1). Ctrl-C then leaves no process and no port.
 */
import { spawn, spawnSync } from "node:child_process"
import { request } from "node:http"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { PutRecordsCommand } from "@aws-sdk/client-kinesis"
import chromium from "@sparticuz/chromium"
import { chromium as playwright, type Browser } from "playwright-core"
import { afterAll, describe, expect, it } from "vitest"
import { kinesisClient } from "../../services/shared/aws-clients.ts"
import { portOpen } from "../support/net.ts"
import { TOTES_BIN, waitFor } from "../support/processes.ts"

const ROOT = new URL("../..", import.meta.url).pathname
// The README's picture is rewritten only on request (UPDATE_SCREENSHOTS=1), so a test run leaves the checkout clean.
const SCREENSHOT = process.env.UPDATE_SCREENSHOTS === "1" ? join(ROOT, "docs/console.png") : join(tmpdir(), `totes-console-${process.pid}.png`)
const POISON = "{ not json: the console must never show this"

const startDev = (dir: string) => {
  // Its own process group, as in a terminal: SIGINT to the group stops it.
  const child = spawn(process.execPath, [TOTES_BIN, "dev", "--dir", dir, "--plain", "--days", "7"], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, TOTES_METRICS: "off" }
  })
  let output = ""
  child.stdout!.on("data", (d) => (output += d))
  child.stderr!.on("data", (d) => (output += d))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return { child, exited, output: () => output }
}

const readEnv = (dir: string) =>
  Object.fromEntries(
    readFileSync(join(dir, "stack.env"), "utf8")
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)])
  )

/** A raw HTTP request, so that the Host header can be anything. */
const raw = (url: string, options: { method?: string; host?: string }) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const target = new URL(url)
    const req = request({ host: target.hostname, port: target.port, path: target.pathname, method: options.method ?? "GET", headers: options.host ? { Host: options.host } : {} }, (res) => {
      let body = ""
      res.on("data", (d) => (body += d))
      res.on("end", () => resolve({ status: res.statusCode!, body }))
    })
    req.on("error", reject)
    req.end()
  })

/** The shape of a JSON value: its keys, recursively (arrays by their first element). */
const shape = (value: unknown): unknown =>
  Array.isArray(value) ? (value.length > 0 ? [shape(value[0])] : []) : value && typeof value === "object" ? Object.fromEntries(Object.keys(value).sort().map((k) => [k, shape((value as Record<string, unknown>)[k])])) : typeof value

// Functions below run in the page; this project's TypeScript has no DOM types.
declare const document: any
declare const window: any

let browser: Browser | undefined
afterAll(async () => {
  await browser?.close()
})

describe("the live console", () => {
  it("shows the pipeline, charts that advance and a dead letter with its reason, in a real browser", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "totes-console-")), ".totes")
    const dev = startDev(dir)
    const urlOf = () => /^console +(http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(dev.output())?.[1]
    const appliedLines = () => [...dev.output().matchAll(/consumer +([\d,]+) events applied/g)].map((m) => Number(m[1]!.replace(/,/g, "")))
    try {
      await waitFor(() => urlOf() !== undefined && appliedLines().some((n) => n > 0), 60_000, `totes dev with its console:\n${dev.output().slice(-2000)}`)
      const url = urlOf()!
      const env = readEnv(dir)

      browser = await playwright.launch({ executablePath: await chromium.executablePath(), args: chromium.args, headless: true })
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, locale: "en-GB", timezoneId: "UTC" })
      const problems: Array<string> = []
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
      page.on("console", (message) => message.type() === "error" && problems.push(`console error: ${message.text()}`))
      page.on("requestfailed", (failed) => problems.push(`request failed: ${failed.url()}`))
      const requested: Array<string> = []
      page.on("request", (sent) => requested.push(sent.url()))
      await page.goto(url)

      // The diagram: every stage with its state; the running pipeline's are running.
      await page.waitForFunction(() => document.querySelectorAll(".stage").length === 6, undefined, { timeout: 15_000 })
      const stages: Array<string> = await page.evaluate(() => [...document.querySelectorAll(".stage")].map((n: any) => n.dataset.stage))
      expect(stages.sort()).toEqual(["consumer", "lake", "reader", "source", "stream", "warehouse"])
      const inState = ({ ids, state }: { ids: Array<string>; state: string }) => ids.every((id) => document.querySelector(`.stage[data-stage="${id}"]`)?.dataset.state === state)
      await page.waitForFunction(inState, { ids: ["reader", "stream", "consumer", "warehouse"], state: "running" }, { timeout: 30_000 })

      // The charts advance: two reads a few seconds apart differ, and events are being applied.
      const read = (): Promise<Record<string, Array<Array<number | null>>>> =>
        page.evaluate(() => Object.fromEntries(Object.entries(window.totesConsole.charts).map(([id, chart]: [string, any]) => [id, chart.data.map((column: Array<number | null>) => [...column])])))
      const first = await read()
      await page.waitForTimeout(3_000)
      const second = await read()
      expect(Object.keys(second).sort()).toEqual(["events", "lag-bytes", "lag-seconds", "latency", "shards", "wal"])
      for (const id of Object.keys(second)) {
        const [before, after] = [first[id]![0]!, second[id]![0]!]
        expect(after.length, id).toBeGreaterThan(before.length)
        expect(after.at(-1)!, id).toBeGreaterThan(before.at(-1)!)
      }
      const applied = second.events![2]!.filter((v): v is number => v !== null)
      expect(Math.max(...applied)).toBeGreaterThan(0)
      expect(second.latency![1]!.some((v) => v !== null && v > 0)).toBe(true)
      expect(second.shards!.length).toBe(1 + 4) // time + the stack's 4 shards
      expect(JSON.stringify(second.latency)).not.toBe(JSON.stringify(first.latency))

      // A record that is not JSON, put on the stream with the real Kinesis client.
      const kinesis = kinesisClient(env)
      await kinesis.send(new PutRecordsCommand({ StreamName: env.TOTES_STREAM, Records: [{ PartitionKey: "console-test", Data: Buffer.from(POISON) }] }))
      kinesis.destroy()
      await page.waitForFunction(() => document.querySelector("#dead-letters tbody td.reason")?.textContent.includes("undecodable: not JSON"), undefined, { timeout: 30_000 })
      const row: Array<string> = await page.evaluate(() => [...document.querySelectorAll("#dead-letters tbody tr:first-child td")].map((td: any) => td.textContent))
      expect(row[1]).toMatch(/^shardId-\d{12}$/)
      expect(row[3]).toMatch(/^undecodable: not JSON/)
      expect(await page.textContent("#dead-summary")).toMatch(/^1 in the last 30 days/)
      await page.waitForFunction(inState, { ids: ["consumer"], state: "attention" }, { timeout: 10_000 })
      expect(await page.textContent('.stage[data-stage="consumer"] .detail')).toContain("1 dead letter in 30 days")
      expect(await page.textContent("body")).not.toContain("not json: the console")
      // The README's picture: with half a minute of history in its charts.
      await page.waitForFunction(() => window.totesConsole.charts.latency.data[0].length >= 30, undefined, { timeout: 30_000 })
      const picture = await page.screenshot({ path: SCREENSHOT, fullPage: true })
      expect(picture.subarray(1, 4).toString("latin1")).toBe("PNG")
      expect(problems).toEqual([])
      // Everything the page loaded came from the console itself: no CDN, no external network.
      expect(requested.length).toBeGreaterThan(5)
      expect(requested.filter((address) => !address.startsWith(url))).toEqual([])

      // The endpoint shares its data with `totes status --json`; the server is read-only and loopback-only.
      const status = JSON.parse(await (await fetch(new URL("api/status", url))).text())
      const cli = spawnSync(process.execPath, [TOTES_BIN, "status", "--json"], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 60_000 })
      expect(cli.status, cli.stderr).toBe(0)
      expect(shape(status)).toEqual(shape(JSON.parse(cli.stdout)))
      expect(status.lakeActivity.deadLetters.newest[0].reason).toMatch(/^undecodable: not JSON/)
      expect((await raw(new URL("api/status", url).href, { method: "POST" })).status).toBe(405)
      expect((await raw(url, { host: `attacker.example:${new URL(url).port}` })).status).toBe(421)
      expect(await portOpen(Number(new URL(url).port))).toBe(true)

      // Ctrl-C: everything stops, the console's port too.
      process.kill(-dev.child.pid!, "SIGINT")
      expect(await Promise.race([dev.exited, new Promise<string>((r) => setTimeout(() => r("timeout"), 30_000))])).not.toBe("timeout")
      const leftovers = () => spawnSync("ps", ["-eo", "pid,args"], { encoding: "utf8" }).stdout.split("\n").filter((l) => l.includes(dir) && !l.includes("ps -eo"))
      await waitFor(() => leftovers().length === 0, 30_000, `no process left: ${leftovers().join("; ")}`)
      expect(await portOpen(Number(new URL(url).port))).toBe(false)
    } finally {
      if (dev.child.exitCode === null) process.kill(-dev.child.pid!, "SIGKILL")
      rmSync(join(dir, ".."), { recursive: true, force: true })
    }
  }, 120_000)
})
