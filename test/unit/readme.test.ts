/** The README must tell the truth: every metric, alarm, variable and command it documents exists, and vice versa. */
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { alarmSpecs } from "../../infra/alarms-spec.ts"
import { stageConfig } from "../../infra/stage-config.ts"
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

  it("documents every configuration variable the code reads", () => {
    const config = readFileSync(new URL("../../services/shared/config.ts", import.meta.url), "utf8")
    const variables = [...config.matchAll(/Config\.\w+\("([A-Z0-9_]+)"\)|identifier\("([A-Z0-9_]+)"\)/g)].map((m) => m[1] ?? m[2])
    expect(variables.length).toBeGreaterThan(8)
    for (const variable of variables) expect(README, variable).toContain(`\`${variable}\``)
    for (const variable of ["TOTES_METRICS", "TOTES_STAGE", "TOTES_LOG_LEVEL"]) expect(README).toContain(`\`${variable}\``)
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
