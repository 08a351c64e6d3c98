/** The README must tell the truth: every metric, alarm, variable and command it documents exists, and vice versa. */
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { alarmSpecs } from "../../infra/alarms-spec.ts"
import { stageConfig } from "../../infra/stage-config.ts"
import { EXIT_CODES, SIGNAL_EXIT_CODES } from "../../services/cli/outcome.ts"
import { CONFIGURATION } from "../../services/shared/config.ts"
import { METRIC_NAMES } from "../../services/shared/metrics.ts"

const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8")
const BIN = new URL("../../bin/totes.mjs", import.meta.url).pathname
const help = (...args: Array<string>) => spawnSync(process.execPath, [BIN, ...args, "--help"], { encoding: "utf8" })

describe("README", () => {
  it("lists every metric of the catalogue", () => {
    for (const name of METRIC_NAMES) expect(README, name).toContain(`\`${name}\``)
  })

  it("lists every alarm with what to do", () => {
    const config = stageConfig("production", {})
    const specs = alarmSpecs("production", config.alarms, { consumerFunctionName: "f", failureQueueName: "q", deliveryStreamName: "d", sourceDbInstanceId: "i" })
    for (const spec of specs) expect(README, spec.id).toContain(`\`${spec.id}\``)
  })

  it("documents every configuration variable as the code declares it (default, accepted values, purpose), and no other", () => {
    for (const v of CONFIGURATION) expect(README, v.name).toContain(`| \`${v.name}\` | ${v.defaultText} | ${v.accepted} | ${v.purpose} |`)
    const section = README.slice(README.indexOf("## Configuration"), README.indexOf("## CLI"))
    const documented = [...section.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1])
    expect(documented).toEqual(CONFIGURATION.map((v) => v.name))
  })

  it("documents the exit codes the CLI uses", () => {
    for (const code of [...Object.values(EXIT_CODES), ...Object.values(SIGNAL_EXIT_CODES)]) expect(README).toMatch(new RegExp(`^\\| [0-9, ]*\\b${code}\\b[0-9, ]* \\|`, "m"))
  })

  it("documents exactly the CLI's commands", () => {
    const documented = new Set([...README.matchAll(/^\| `totes ([a-z]+)/gm)].map((m) => m[1]))
    const top = help()
    expect(top.status).toBe(0)
    const section = top.stdout.slice(top.stdout.indexOf("SUBCOMMANDS"))
    const actual = new Set([...section.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]))
    expect([...documented].sort()).toEqual([...actual].sort())
    for (const [group, subs] of [["stack", ["up", "down", "status"]], ["source", ["init", "load", "generate", "simulate"]], ["warehouse", ["migrate"]]] as const) {
      const out = help(group).stdout
      for (const sub of subs) expect(out, `${group} ${sub}`).toMatch(new RegExp(`^ {2}${sub} `, "m"))
    }
  }, 60_000)
})
