/**
 * `totes stack up|status|down` as a user runs them: the background stack starts, `stack.env`
 * configures psql, and `down` leaves no process and no open port behind.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { portOpen } from "../support/net.ts"
import { runTotes } from "../support/processes.ts"

const processesUsing = (dir: string) => {
  const out = spawnSync("ps", ["-eo", "pid,args"], { encoding: "utf8" }).stdout
  return out.split("\n").filter((line) => line.includes(dir) && !line.includes("ps -eo"))
}

describe("totes stack", () => {
  it("starts in the background, configures psql through stack.env, and stops leaving nothing behind", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "totes-cli-")), ".totes")
    const up = await runTotes(["stack", "up", "--dir", dir], {})
    expect(up.code, up.output).toBe(0)
    expect(up.output).toContain(`set -a; . ${join(dir, "stack.env")}; set +a`)

    const env = Object.fromEntries(
      readFileSync(join(dir, "stack.env"), "utf8").trim().split("\n").map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)])
    )
    for (const name of ["SOURCE_DATABASE_URL", "WAREHOUSE_DATABASE_URL", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "TOTES_STREAM", "TOTES_LAKE_BUCKET", "TOTES_CHECKPOINT_TABLE", "TOTES_SLOT", "TOTES_PUBLICATION"]) {
      expect(env[name], name).toBeTruthy()
    }
    // Exactly what the README tells a user to type.
    const psql = execFileSync("bash", ["-c", `set -a; . ${join(dir, "stack.env")}; psql "$SOURCE_DATABASE_URL" -Atc 'show wal_level'`], { encoding: "utf8" })
    expect(psql.trim()).toBe("logical")

    const status = await runTotes(["stack", "status", "--dir", dir], {})
    expect(status.output).toMatch(/local stack: running \(pid \d+\)/)
    expect(status.output).not.toContain("totes-local") // the password is masked

    const ports = ["SOURCE_DATABASE_URL", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3"].map((k) => Number(new URL(env[k]!).port))
    for (const port of ports) expect(await portOpen(port), `port ${port} before down`).toBe(true)
    expect(processesUsing(dir).length).toBeGreaterThan(0)

    const down = await runTotes(["stack", "down", "--dir", dir], {})
    expect(down.code, down.output).toBe(0)
    expect(down.output).toContain("local stack stopped")
    for (const port of ports) expect(await portOpen(port), `port ${port} after down`).toBe(false)
    expect(processesUsing(dir)).toEqual([])
    expect(existsSync(dir)).toBe(false)
    rmSync(join(dir, ".."), { recursive: true, force: true })
  })

  it("says clearly when a command needs configuration that is missing", async () => {
    const result = await runTotes(["source", "init"], { SOURCE_DATABASE_URL: "", WAREHOUSE_DATABASE_URL: "" })
    expect(result.code).not.toBe(0)
    expect(result.output).toContain("SOURCE_DATABASE_URL")
  })
})
