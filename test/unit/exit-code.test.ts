/**
 * Guards the exit code of every process that starts PostgreSQL: a dependency's exit hook once
 * turned failing runs into exit 0. A child process loads the local Postgres module and fails.
 */
import { spawnSync } from "node:child_process"
import { describe, expect, it } from "vitest"

describe("process exit code", () => {
  it("stays non-zero after loading the embedded PostgreSQL module", () => {
    const script = `
      const { loadEmbeddedPostgres } = await import(${JSON.stringify(new URL("../../tools/local/postgres.ts", import.meta.url).pathname)})
      await loadEmbeddedPostgres()
      process.exitCode = 3
    `
    const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", env: process.env })
    expect(result.stderr).not.toMatch(/Error/)
    expect(result.status).toBe(3)
  })
})
