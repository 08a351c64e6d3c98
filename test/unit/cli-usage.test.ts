/** An unknown command is a usage error (exit status 2) naming it, also when asked for --help. */
import { spawnSync } from "node:child_process"
import { Command } from "effect/cli"
import { describe, expect, it } from "vitest"
import { unknownSubcommand } from "../../services/cli/usage.ts"

const BIN = new URL("../../bin/totes.mjs", import.meta.url).pathname
const totes = (...args: Array<string>) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, SOURCE_DATABASE_URL: "", WAREHOUSE_DATABASE_URL: "" } })

describe("unknown commands", () => {
  const leaf = Command.make("ls")
  const root = Command.make("totes").pipe(Command.withSubcommands([Command.make("lake").pipe(Command.withSubcommands([leaf])), Command.make("status")]))

  it("finds the first name that is not a subcommand where one is expected", () => {
    expect(unknownSubcommand(root, ["foo", "--help"])).toEqual({ path: ["totes"], name: "foo", known: ["lake", "status"] })
    expect(unknownSubcommand(root, ["lake", "rm"])).toEqual({ path: ["totes", "lake"], name: "rm", known: ["ls"] })
    expect(unknownSubcommand(root, ["--log-level", "debug", "nope"])).toMatchObject({ name: "nope" })
    for (const valid of [[], ["--help"], ["lake", "ls", "--prefix", "raw/"], ["status", "--json"], ["lake", "ls", "extra"], ["--", "foo"]]) {
      expect(unknownSubcommand(root, valid), valid.join(" ")).toBeUndefined()
    }
  })

  it("`totes <unknown> --help` exits 2 and names the command; real help still exits 0", () => {
    const unknown = totes("frobnicate", "--help")
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toContain('unknown command "frobnicate"')
    expect(unknown.stdout).toBe("")
    const nested = totes("lake", "frobnicate", "--help")
    expect(nested.status).toBe(2)
    expect(nested.stderr).toContain('totes lake: unknown command "frobnicate" (commands: ls, cat, compact, pull, query)')
    const help = totes("replay", "--help")
    expect(help.status).toBe(0)
    expect(help.stdout).toContain("--wait")
  }, 60_000)
})
