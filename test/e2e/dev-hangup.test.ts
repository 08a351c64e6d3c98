/**
 * Closing the terminal of `totes dev`: the terminal sends SIGHUP to the foreground process group.
 * Everything `totes dev` started (the local stack's PostgreSQL and AWS servers in their own
 * background process, the pipeline, the simulator) stops: no process, no port, no folder left,
 * and the exit code says SIGHUP (129).
 */
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { portOpen } from "../support/net.ts"
import { TOTES_BIN, waitFor } from "../support/processes.ts"

const appliedSome = (output: string) => [...output.matchAll(/consumer +([\d,]+) events applied/g)].some((m) => Number(m[1]!.replace(/,/g, "")) > 0)

describe("totes dev", () => {
  it.each([
    ["while the pipeline runs", appliedSome],
    ["while it is still starting (snapshot, migrations)", (output: string) => output.includes("rows in ")]
  ])("stops the whole local stack when its terminal closes (SIGHUP to its process group) %s", async (_when, ready) => {
    const dir = join(mkdtempSync(join(tmpdir(), "totes-hup-")), ".totes")
    // detached: its own process group, as a terminal's foreground job has.
    const child = spawn(process.execPath, [TOTES_BIN, "dev", "--dir", dir, "--plain", "--days", "5"], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TOTES_METRICS: "off" }
    })
    let output = ""
    child.stdout!.on("data", (d) => (output += d))
    child.stderr!.on("data", (d) => (output += d))
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    await waitFor(() => ready(output), 90_000, `the dashboard:\n${output.slice(-2000)}`)
    const env = Object.fromEntries(readFileSync(join(dir, "stack.env"), "utf8").trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]))
    const ports = ["SOURCE_DATABASE_URL", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3"].map((k) => Number(new URL(env[k]!).port))
    for (const port of ports) expect(await portOpen(port), `port ${port} before`).toBe(true)

    process.kill(-child.pid!, "SIGHUP")
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("timeout"), 60_000))])
    expect(code, output.slice(-1500)).toBe(129)
    const leftovers = () => spawnSync("ps", ["-eo", "pid,args"], { encoding: "utf8" }).stdout.split("\n").filter((l) => l.includes(dir) && !l.includes("ps -eo"))
    await waitFor(() => leftovers().length === 0, 30_000, `no process left: ${leftovers().join("; ")}`)
    expect(output).toContain("stopped: nothing left running")
    for (const port of ports) expect(await portOpen(port), `port ${port} after`).toBe(false)
    expect(existsSync(dir)).toBe(false)
    rmSync(join(dir, ".."), { recursive: true, force: true })
  }, 180_000)

  it("leaves no stack behind even when it is killed outright (kill -9): the stack watches its owner", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "totes-kill-")), ".totes")
    const child = spawn(process.execPath, [TOTES_BIN, "dev", "--dir", dir, "--plain", "--days", "5"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TOTES_METRICS: "off" } })
    let output = ""
    child.stdout!.on("data", (d) => (output += d))
    child.stderr!.on("data", (d) => (output += d))
    await waitFor(() => output.includes("rows in "), 90_000, `generation:\n${output.slice(-2000)}`)
    const env = Object.fromEntries(readFileSync(join(dir, "stack.env"), "utf8").trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]))
    const ports = ["SOURCE_DATABASE_URL", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3"].map((k) => Number(new URL(env[k]!).port))
    child.kill("SIGKILL")
    const leftovers = () => spawnSync("ps", ["-eo", "pid,args"], { encoding: "utf8" }).stdout.split("\n").filter((l) => l.includes(dir) && !l.includes("ps -eo"))
    await waitFor(() => leftovers().length === 0, 30_000, `no process left: ${leftovers().join("; ")}`)
    for (const port of ports) expect(await portOpen(port), `port ${port} after`).toBe(false)
    expect(readFileSync(join(dir, "stack.log"), "utf8")).toContain(`owner process ${child.pid} is gone`)
    rmSync(join(dir, ".."), { recursive: true, force: true })
  }, 180_000)
})
