/**
 * Runs the benchmarks one after the other, each in its own process (each starts its own local
 * stack and prints its figures beside the reference it measured in the same run):
 *
 *   npm run bench                      every benchmark (about an hour on 2 cores)
 *   npm run bench -- replay snapshot   only these (names as in bench/<name>.ts)
 *
 * A benchmark that fails is reported and the others still run; the exit code is 1 if any failed.
 */
import { spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { fileURLToPath } from "node:url"

const HERE = fileURLToPath(new URL(".", import.meta.url))
/** Modules of bench/ that are not benchmarks. */
const HELPERS = new Set(["run-all", "support", "copy-reference"])

const available = readdirSync(HERE)
  .filter((file) => file.endsWith(".ts"))
  .map((file) => file.slice(0, -3))
  .filter((name) => !HELPERS.has(name))
  .sort()
const asked = process.argv.slice(2)
const unknown = asked.filter((name) => !available.includes(name))
if (unknown.length > 0) {
  process.stderr.write(`npm run bench: no benchmark ${unknown.join(", ")} (there are: ${available.join(", ")})\n`)
  process.exit(2)
}

const failed: Array<string> = []
for (const name of asked.length > 0 ? asked : available) {
  process.stdout.write(`\n=== bench/${name}.ts (${new Date().toISOString()})\n`)
  const run = spawnSync(process.execPath, ["--import", "tsx", `${HERE}${name}.ts`], { stdio: "inherit" })
  if (run.status !== 0) failed.push(`${name} (${run.signal ?? `exit ${run.status}`})`)
}
if (failed.length > 0) {
  process.stderr.write(`\nfailed: ${failed.join(", ")}\n`)
  process.exit(1)
}
