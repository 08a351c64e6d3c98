/**
 * Start-up time of the `totes` CLI: `totes --help` and `totes status` (against a local stack, so
 * status really connects and reads), next to `node -e 0` (the floor: starting Node itself) and
 * the same CLI started the former way, its TypeScript compiled by tsx at every start, in the
 * same run. Each command runs BENCH_RUNS times (default 9), one after another; the median and the
 * fastest are printed.
 *
 *   node --import tsx bench/cli-startup.ts
 */
import { spawn } from "node:child_process"
import { withStack } from "./support.ts"

const RUNS = Number(process.env.BENCH_RUNS ?? 9)
const ROOT = new URL("..", import.meta.url).pathname
const BIN = `${ROOT}bin/totes.mjs`
const MAIN = `${ROOT}services/cli/main.ts`

/** Milliseconds from spawn to exit. Asynchronous: the local stack's servers run in this process. */
const time = (args: ReadonlyArray<string>, env: Record<string, string>): Promise<number> =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.on("error", reject)
    child.on("exit", (code) => (code === 0 ? resolve(performance.now() - started) : reject(new Error(`${args.join(" ")} failed (${code}): ${stderr}`))))
  })

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

await withStack(async (stack) => {
  const env = { ...stack.env }
  // A first start builds dist/ if the sources changed since the last build: not part of the measure.
  await time([BIN, "--help"], env)
  const cases: Array<[string, ReadonlyArray<string>]> = [
    ["node -e 0 (reference)", ["-e", "0"]],
    ["totes --help", [BIN, "--help"]],
    ["totes status", [BIN, "status"]],
    ["totes --help, TypeScript compiled by tsx at start", ["--import", "tsx", MAIN, "--help"]],
    ["totes status, TypeScript compiled by tsx at start", ["--import", "tsx", MAIN, "status"]]
  ]
  const results: Array<{ name: string; median: number; fastest: number }> = []
  for (const [name, args] of cases) {
    const samples: Array<number> = []
    for (let run = 0; run < RUNS; run++) samples.push(await time(args, env))
    results.push({ name, median: median(samples), fastest: Math.min(...samples) })
  }
  const reference = results[0]!.median
  console.log(`CLI start-up, ${RUNS} runs each (median, fastest), node ${process.version}`)
  console.log("| command | median | fastest | × node -e 0 |")
  console.log("|---|---:|---:|---:|")
  for (const r of results) console.log(`| ${r.name} | ${(r.median / 1000).toFixed(3)} s | ${(r.fastest / 1000).toFixed(3)} s | ${(r.median / reference).toFixed(1)} |`)
  const help = results[1]!.median
  console.log(`\ntotes --help: ${(help / 1000).toFixed(3)} s median, target < 0.5 s: ${help < 500 ? "met" : "NOT met"}`)
})
