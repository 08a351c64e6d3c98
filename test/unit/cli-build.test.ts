/**
 * The prebuilt CLI (scripts/build.mjs, bin/totes.mjs):
 * - the production build, made as the Dockerfile's build stage makes it (no tools/), bundles
 *   nothing of tools/ and needs no development dependency at run time; laid out as in the image
 *   (dist/, bin/, package.json, the migrations; no TypeScript sources) it answers `--help`, and
 *   a development command says it is not part of the build;
 * - a development checkout whose sources changed since the build is rebuilt on the next start,
 *   and an unchanged one is not.
 */
import { spawnSync } from "node:child_process"
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync } from "node:fs"
import { builtinModules } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"

const ROOT = new URL("../..", import.meta.url).pathname
const temporary: Array<string> = []
afterAll(() => temporary.forEach((dir) => rmSync(dir, { recursive: true, force: true })))

/** A copy of the checkout's build inputs (what the Dockerfile's build stage copies), sharing node_modules. */
const checkoutCopy = (options: { tools: boolean }) => {
  const root = mkdtempSync(join(tmpdir(), "totes-build-"))
  temporary.push(root)
  for (const path of ["package.json", "package-lock.json", "bin", "contracts", "services", ...(options.tools ? ["tools"] : [])]) cpSync(join(ROOT, path), join(root, path), { recursive: true })
  mkdirSync(join(root, "scripts"))
  cpSync(join(ROOT, "scripts/build.mjs"), join(root, "scripts/build.mjs"))
  symlinkSync(join(ROOT, "node_modules"), join(root, "node_modules"))
  return root
}

interface Built {
  readonly entry: string
  readonly production: boolean
  readonly sourcesMtimeMs: number
  readonly metafile: { inputs: Record<string, unknown>; outputs: Record<string, { imports: Array<{ path: string; external?: boolean }> }> }
}

/** scripts/build.mjs run in the copy, as its own process (as in the Dockerfile's build stage). */
const buildIn = (root: string, production: boolean): Built => {
  const script = `import { buildCli } from "./scripts/build.mjs"; console.log(JSON.stringify(await buildCli({ production: ${production} })))`
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: root, encoding: "utf8", timeout: 60_000, maxBuffer: 256 * 1024 * 1024 })
  expect(result.stderr).toBe("")
  expect(result.status).toBe(0)
  return JSON.parse(result.stdout) as Built
}

const totes = (root: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [join(root, "bin/totes.mjs"), ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env }
  })

/** Packages the lockfile installs with `npm ci --omit=dev`. */
const productionPackages = (): Set<string> => {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> }
  return new Set(
    Object.entries(lock.packages)
      .filter(([path, entry]) => path.startsWith("node_modules/") && !entry.dev && !entry.devOptional)
      .map(([path]) => path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length))
  )
}

const packageOf = (specifier: string) => (specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]!)

describe("production build", () => {
  it("leaves tools/ out, needs only production dependencies, and runs as laid out in the image", () => {
    const root = checkoutCopy({ tools: false })
    const built = buildIn(root, true)
    expect(built.production).toBe(true)

    const inputs = Object.keys(built.metafile.inputs)
    expect(inputs.filter((path) => path.startsWith("tools/"))).toEqual([])
    // The development commands are there only as the placeholders that throw.
    expect(inputs.filter((path) => path.startsWith("absent-tools:")).sort()).toEqual(["absent-tools:tools/cli/console.ts", "absent-tools:tools/cli/dev.ts", "absent-tools:tools/cli/source.ts", "absent-tools:tools/cli/stack.ts", "absent-tools:tools/lake/duckdb.ts"])
    const production = productionPackages()
    const bundled = inputs.filter((path) => path.includes("node_modules/")).map((path) => packageOf(path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length)))
    expect([...new Set(bundled.filter((name) => !production.has(name)))]).toEqual([])
    const outputs = Object.values(built.metafile.outputs)
    const externals = new Set(outputs.flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path)))
    const builtins = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)])
    // Optional requires inside try/catch of bundled packages, for features the pipeline does not use:
    // pg's native client and pg-logical-replication's decoderbufs plugin.
    const optional = new Set(["pg-native", "protobufjs"])
    const unresolvable = [...externals].filter((path) => !builtins.has(path) && !path.startsWith("node:") && !production.has(packageOf(path)) && !optional.has(path))
    expect(unresolvable).toEqual([])

    // The image: no TypeScript sources, only the migrations read at run time.
    for (const path of ["services", "contracts", "scripts"]) rmSync(join(root, path), { recursive: true })
    mkdirSync(join(root, "services/warehouse"), { recursive: true })
    cpSync(join(ROOT, "services/warehouse/migrations"), join(root, "services/warehouse/migrations"), { recursive: true })
    const env = { NODE_ENV: "production" }

    const help = totes(root, ["--help"], env)
    expect(help.stderr).toBe("")
    expect(help.status).toBe(0)
    expect(help.stdout).toMatch(/^ {2}status {2,}Show the reader's/m)
    expect(totes(root, ["lake", "--help"], env).stdout).toMatch(/^ {2}compact {2,}/m)

    const stack = totes(root, ["stack", "up"], env)
    expect(stack.status).toBe(1)
    expect(stack.stderr).toContain("totes stack is development tooling (tools/)")
    const consoleRun = totes(root, ["console"], env)
    expect(consoleRun.status).toBe(1)
    expect(consoleRun.stderr).toContain("totes console is development tooling (tools/)")
    const query = totes(root, ["lake", "query", "--named", "sales-order-history", "--param", "1"], env)
    expect(query.status).toBe(1)
    expect(query.stdout + query.stderr).toContain("tools/lake/duckdb.ts: tools/ (development tooling) is not part of this production build")
  }, 120_000)
})

describe("development build", () => {
  it("is rebuilt on start when a source changed since, and reused when not", () => {
    const root = checkoutCopy({ tools: true })
    const first = buildIn(root, false)
    const current = () => JSON.parse(readFileSync(join(root, "dist/current.json"), "utf8")) as { entry: string; sourcesMtimeMs: number }
    expect(current().entry).toBe(first.entry)

    const unchanged = totes(root, ["--help"])
    expect(unchanged.status).toBe(0)
    expect(current().entry).toBe(first.entry)

    // An edit: a source file newer than the build.
    const later = new Date(first.sourcesMtimeMs + 5_000)
    utimesSync(join(root, "services/status/status.ts"), later, later)
    const edited = totes(root, ["--help"])
    expect(edited.status).toBe(0)
    expect(edited.stdout).toContain("SUBCOMMANDS")
    expect(current().entry).not.toBe(first.entry)
    expect(current().sourcesMtimeMs).toBeGreaterThan(first.sourcesMtimeMs)

    const again = current().entry
    expect(totes(root, ["stack", "--help"]).stdout).toMatch(/^ {2}up {2,}/m)
    expect(current().entry).toBe(again)
  }, 120_000)
})
