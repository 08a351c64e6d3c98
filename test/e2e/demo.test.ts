/**
 * The demo a new user sees: `npm start` reaches a live dashboard with a non-zero applied count and
 * an advancing consistent_through within 60 s; Ctrl-C (SIGINT to the process group, as a terminal
 * sends it) leaves no process and no open port; a second start works too.
 */
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { portOpen } from "../support/net.ts"
import { waitFor } from "../support/processes.ts"

const ROOT = new URL("../..", import.meta.url).pathname

const startDemo = (dir: string) => {
  // detached: its own process group, so a group SIGINT reaches npm and everything under it.
  const child = spawn("npm", ["start", "--silent", "--", "--dir", dir, "--plain"], { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TOTES_METRICS: "off" } })
  let output = ""
  child.stdout!.on("data", (d) => (output += d))
  child.stderr!.on("data", (d) => (output += d))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return { child, exited, output: () => output }
}

const runOnce = async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "totes-demo-")), ".totes")
  const demo = startDemo(dir)
  const started = Date.now()
  const applied = () => [...demo.output().matchAll(/consumer +([\d,]+) events applied/g)].map((m) => Number(m[1]!.replace(/,/g, "")))
  const through = () => [...demo.output().matchAll(/consistent through ([0-9A-F]+\/[0-9A-F]+)/g)].map((m) => m[1]!)
  await waitFor(() => applied().some((n) => n > 0) && new Set(through()).size >= 2, 60_000, `a live dashboard:\n${demo.output().slice(-2000)}`)
  const reachedMs = Date.now() - started
  const env = Object.fromEntries(readFileSync(join(dir, "stack.env"), "utf8").trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]))
  const ports = ["SOURCE_DATABASE_URL", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3"].map((k) => Number(new URL(env[k]!).port))

  process.kill(-demo.child.pid!, "SIGINT")
  const code = await Promise.race([demo.exited, new Promise<string>((r) => setTimeout(() => r("timeout"), 30_000))])
  expect(code, demo.output().slice(-1500)).not.toBe("timeout")
  // npm may return before its child has finished shutting down: give the pipeline time to stop.
  const leftovers = () =>
    spawnSync("ps", ["-eo", "pid,args"], { encoding: "utf8" }).stdout.split("\n").filter((l) => (l.includes(dir) || l.includes(`dev --dir ${dir}`)) && !l.includes("ps -eo"))
  await waitFor(() => leftovers().length === 0, 30_000, `no process left: ${leftovers().join("; ")}`)
  expect(demo.output()).toContain("stopped: nothing left running")
  for (const port of ports) expect(await portOpen(port), `port ${port}`).toBe(false)
  expect(existsSync(dir)).toBe(false)
  rmSync(join(dir, ".."), { recursive: true, force: true })
  return reachedMs
}

describe("npm start", () => {
  it("shows a live dashboard within 60 s, and Ctrl-C leaves nothing running; twice", async () => {
    const first = await runOnce()
    const second = await runOnce()
    expect(first).toBeLessThan(60_000)
    expect(second).toBeLessThan(60_000)
  }, 240_000)
})
