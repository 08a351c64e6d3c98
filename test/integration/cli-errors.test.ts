/**
 * What a user sees when something is wrong: every documented configuration variable with an
 * invalid value, every command with bad arguments, and databases that cannot be reached each
 * give one line naming the variable, argument or database, a non-zero exit code (2 for usage,
 * 1 for a failure) and no stack trace. Signals stop a running command with 128 + the signal's
 * number. The CLI runs as a child process, as a user runs it.
 */
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { spawnTotes, waitFor } from "../support/processes.ts"
import { isolatedPipelineEnv, stackEnv } from "../support/stack.ts"

const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8")
/** A folder without .totes/: the CLI must not pick up a local stack's configuration. */
const CWD = mkdtempSync(join(tmpdir(), "totes-cli-"))
/** Unreachable but valid: commands that get past the checks fail fast and predictably. */
const BASE_ENV: Record<string, string> = {
  SOURCE_DATABASE_URL: "postgres://totes@127.0.0.1:1/totesys",
  WAREHOUSE_DATABASE_URL: "postgres://totes@127.0.0.1:1/warehouse",
  TOTES_METRICS: "off"
}

const runCli = async (args: ReadonlyArray<string>, env: Record<string, string>) => {
  const spawned = spawnTotes(args, { ...env, PWD: CWD })
  const timer = setTimeout(() => spawned.child.kill("SIGKILL"), 60_000)
  const code = await spawned.exited
  clearTimeout(timer)
  return { code, output: spawned.output() }
}

/** Runs rows two at a time (each is a process start; the machine is shared with other tests). */
const inParallel = async <A, B>(rows: ReadonlyArray<A>, work: (row: A) => Promise<B>, width = 2): Promise<Array<B>> => {
  const results: Array<B> = []
  let next = 0
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < rows.length) {
        const i = next++
        results[i] = await work(rows[i]!)
      }
    })
  )
  return results
}

const expectOneLine = (output: string, code: number | null, expected: { code: number; names: ReadonlyArray<string> }, what: string) => {
  const lines = output.trim().split("\n")
  expect(lines, `${what}: ${output}`).toHaveLength(1)
  expect(code, `${what}: ${output}`).toBe(expected.code)
  for (const name of expected.names) expect(lines[0], what).toContain(name)
  expect(output, what).not.toMatch(/^\s+at |node:internal|Error: .*\n\s+at /m)
}

/** Invalid values for every variable of the README's configuration table. */
const INVALID: Record<string, ReadonlyArray<string>> = {
  SOURCE_DATABASE_URL: ["garbage", "http://example.com", "postgres:///no-host"],
  WAREHOUSE_DATABASE_URL: ["mysql://u:hunter2@db/x"],
  TOTES_WAREHOUSE_SECRET_ARN: ["warehouse-url"],
  AWS_REGION: ["Europe"],
  AWS_ENDPOINT_URL_KINESIS: ["localhost:4567"],
  AWS_ENDPOINT_URL_DYNAMODB: ["ftp://127.0.0.1"],
  AWS_ENDPOINT_URL_S3: ["not a url"],
  TOTES_STREAM: ["has space"],
  TOTES_LAKE_BUCKET: ["Upper_Case"],
  TOTES_CHECKPOINT_TABLE: ["x"],
  TOTES_SLOT: ['x"; drop table payment; --'],
  TOTES_PUBLICATION: ["Pub"],
  TOTES_TABLES: ["sales_order,nope", " , "],
  TOTES_WAREHOUSE_SCHEMA: ["1abc"],
  TOTES_PIPELINE_SCHEMA: ["totes-pipeline"],
  TOTES_MAX_RECORD_BYTES: ["1000", "11MiB"],
  TOTES_HEARTBEAT_MS: ["0"],
  TOTES_FAILOVER_SLOT: ["yes"],
  TOTES_ARCHIVER_FLUSH_BYTES: ["-5", "lots"],
  TOTES_ARCHIVER_FLUSH_MS: ["0"],
  TOTES_METRICS: ["file"],
  TOTES_STAGE: ["prod\u00e9"],
  TOTES_LOG_LEVEL: ["verbose"]
}

const documentedVariables = () => {
  const section = README.slice(README.indexOf("## Configuration"), README.indexOf("\n## ", README.indexOf("## Configuration") + 5))
  return [...section.matchAll(/^\| (`[A-Z0-9_]+`(?:, `[A-Z0-9_]+`)*) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`([A-Z0-9_]+)`/g)].map((v) => v[1]!))
}

/** [arguments, names the line must contain]: every command, with an argument that cannot be right. */
const BAD_ARGUMENTS: ReadonlyArray<readonly [ReadonlyArray<string>, ReadonlyArray<string>]> = [
  [["bogus"], ["bogus"]],
  [["dev", "--rate", "0"], ["--rate"]],
  [["stack", "up", "--dir", ""], ["--dir"]],
  [["stack", "serve", "--owner-pid", "0"], ["--owner-pid"]],
  [["stack", "down", "--bogus"], ["--bogus"]],
  [["stack", "status", "extra"], ["extra"]],
  [["source", "init", "--bogus"], ["--bogus"]],
  [["source", "load", "/nonexistent-folder"], ["csv-dir"]],
  [["source", "generate", "--days", "0"], ["--days"]],
  [["source", "generate", "--until", "someday"], ["--until"]],
  [["source", "simulate", "--rate", "-1"], ["--rate"]],
  [["source", "simulate", "--transactions", "0"], ["--transactions"]],
  [["source", "simulate", "--mix", "weird"], ["--mix"]],
  [["warehouse", "migrate", "--bogus"], ["--bogus"]],
  [["run", "--components", "bogus"], ["--components", "bogus"]],
  [["status", "--timeout", "-1"], ["--timeout"]],
  [["console", "--port", "70000"], ["--port"]],
  [["status", "--timeout", "abc"], ["--timeout"]],
  [["lake", "ls", "--bogus"], ["--bogus"]],
  [["lake", "cat", ""], ["key"]],
  [["lake", "compact", "--from", "0/16B3748"], ["--from"]],
  [["lake", "compact", "--from", "2024-02-02", "--to", "2024-02-01"], ["--to", "--from"]],
  [["replay", "--tables", "nope"], ["--tables", "nope"]],
  [["replay", "--from", "2024-02-02T00:00:00Z", "--to", "2024-02-01T00:00:00Z"], ["--to", "--from"]],
  [["replay", "--from", "yesterday"], ["--from"]],
  [["replay", "--target", "garbage"], ["--target"]],
  [["replay", "--name", "a b"], ["--name"]],
  [["resnapshot", "--tables", "nope"], ["--tables", "nope"]],
  [["resnapshot"], ["--tables"]],
  [["resnapshot", "--tables", "design", "--chunk", "0"], ["--chunk"]],
  [["resnapshot", "--tables", "design", "--cancel"], ["--cancel", "--tables"]],
  [["verify", "--tables", "nope"], ["--tables", "nope"]],
  [["verify", "--wait", "-5"], ["--wait"]]
]

describe("configuration errors", () => {
  it("covers every variable of the README's configuration table", () => {
    expect(documentedVariables().sort()).toEqual(Object.keys(INVALID).sort())
  })

  it("refuse every invalid value at start: one line per variable naming it, exit 2, no stack, no password", async () => {
    // one process per round, every variable invalid at once: each refused on its own line
    const rounds = Math.max(...Object.values(INVALID).map((values) => values.length))
    const environments = Array.from({ length: rounds }, (_, round) =>
      Object.fromEntries(Object.entries(INVALID).map(([variable, values]) => [variable, values[round % values.length]!]))
    )
    const results = await inParallel(environments, (invalid) => runCli(["status"], { ...BASE_ENV, ...invalid }))
    results.forEach(({ code, output }, round) => {
      expect(code, output).toBe(2)
      expect(output, `round ${round}`).not.toMatch(/^\s+at |node:internal/m)
      expect(output).not.toContain("hunter2")
      const lines = output.trim().split("\n")
      expect(lines, output).toHaveLength(Object.keys(INVALID).length)
      for (const [variable, values] of Object.entries(INVALID)) {
        const line = lines.filter((l) => l.startsWith(`totes status: ${variable}: `))
        expect(line, `${variable}=${values[round % values.length]}`).toHaveLength(1)
      }
    })
    // alone, each refusal is the one line of its command
    const single = await runCli(["status"], { ...BASE_ENV, TOTES_TABLES: "sales_order,nope" })
    expectOneLine(single.output, single.code, { code: 2, names: ["TOTES_TABLES", "nope"] }, "TOTES_TABLES")
  }, 240_000)

  it("name a required variable that is missing", async () => {
    const { SOURCE_DATABASE_URL: _, ...env } = BASE_ENV
    const { code, output } = await runCli(["status"], { ...env, SOURCE_DATABASE_URL: "" })
    expectOneLine(output, code, { code: 2, names: ["SOURCE_DATABASE_URL", "is not set"] }, "unset SOURCE_DATABASE_URL")
  })
})

describe("argument errors", () => {
  it("are usage errors for every command: one line naming the argument, exit 2, no stack", async () => {
    const results = await inParallel(BAD_ARGUMENTS, ([args]) => runCli(args, BASE_ENV))
    BAD_ARGUMENTS.forEach(([args, names], i) => expectOneLine(results[i]!.output, results[i]!.code, { code: 2, names }, `totes ${args.join(" ")}`))
    const covered = new Set(BAD_ARGUMENTS.map(([args]) => args[0]))
    for (const command of [...README.matchAll(/^\| `totes ([a-z]+)/gm)].map((m) => m[1]!)) expect(covered.has(command), command).toBe(true)
  }, 240_000)
})

describe("databases that cannot be reached", () => {
  it("say which database, where and why, without the password: exit 1, one line", async () => {
    const env = stackEnv()
    const wrongPassword = (url: string) => {
      const parsed = new URL(url)
      parsed.password = "not-the-password"
      return parsed.toString()
    }
    const rows = [
      [["status"], { SOURCE_DATABASE_URL: "postgres://totes:pw@127.0.0.1:1/totesys" }, ["source database", "connection refused", "SOURCE_DATABASE_URL"]],
      [["status"], { SOURCE_DATABASE_URL: "postgres://totes:pw@no-such-host.invalid/totesys" }, ["source database", "host not found", "SOURCE_DATABASE_URL"]],
      [["status"], { SOURCE_DATABASE_URL: env.SOURCE_DATABASE_URL!, WAREHOUSE_DATABASE_URL: wrongPassword(env.WAREHOUSE_DATABASE_URL!) }, ["warehouse database", "authentication failed", "WAREHOUSE_DATABASE_URL"]],
      [["status"], { SOURCE_DATABASE_URL: `${env.SOURCE_DATABASE_URL!.replace(/\/[^/]*$/, "/no_such_db")}` }, ["source database", "database does not exist"]],
      [["warehouse", "migrate"], { WAREHOUSE_DATABASE_URL: `${env.WAREHOUSE_DATABASE_URL!}?sslmode=verify-full` }, ["warehouse database", "TLS"]],
      [["replay", "--target", wrongPassword(env.WAREHOUSE_DATABASE_URL!), "--name", "unreachable"], { ...env }, ["replay target database", "authentication failed", "--target"]],
      [["source", "init"], { SOURCE_DATABASE_URL: wrongPassword(env.SOURCE_DATABASE_URL!) }, ["source database", "authentication failed"]],
      [["verify"], { SOURCE_DATABASE_URL: "postgres://totes:pw@127.0.0.1:1/totesys" }, ["source database", "connection refused"]],
      [["console"], { SOURCE_DATABASE_URL: env.SOURCE_DATABASE_URL!, WAREHOUSE_DATABASE_URL: wrongPassword(env.WAREHOUSE_DATABASE_URL!) }, ["warehouse database", "authentication failed", "WAREHOUSE_DATABASE_URL"]]
    ] as const
    const results = await inParallel(rows, ([args, extra]) => runCli(args, { ...env, ...BASE_ENV, ...extra }))
    rows.forEach(([args, , names], i) => {
      expectOneLine(results[i]!.output.replace(/^\(node:\d+\) Warning: SECURITY WARNING[\s\S]*?node --trace-warnings[^\n]*\n/, ""), results[i]!.code, { code: 1, names }, `totes ${args.join(" ")}`)
      expect(results[i]!.output).not.toContain("not-the-password")
      expect(results[i]!.output).not.toContain("totes-local")
    })
  }, 180_000)
})

describe("signals", () => {
  it.each([
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129]
  ] as const)("%s stops totes run in order, exit %i", async (signal, expected) => {
    const env = await isolatedPipelineEnv()
    const run = spawnTotes(["run", "--components", "archiver"], { ...env, TOTES_METRICS: "off" })
    await waitFor(() => run.output().includes("running: archiver"), 30_000, `totes run started:\n${run.output()}`)
    run.child.kill(signal)
    expect(await run.exited, run.output()).toBe(expected)
    expect(run.output()).not.toMatch(/^\s+at /m)
  }, 60_000)
})
