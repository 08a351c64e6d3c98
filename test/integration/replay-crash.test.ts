/**
 * Replay killed at random moments: a replay runs as a child process and is SIGKILLed after a random
 * number of applied batches (so mid-transaction, mid-COPY, between a commit and its checkpoint, or
 * while reading), six times; each restart resumes from the DynamoDB checkpoint. The final warehouse
 * must equal the live one, and the restarts must have skipped what earlier runs finished. Both ways
 * of writing: bulk (into the empty target, a segment committed every 4 batches here) and row by row.
 */
import { spawn } from "node:child_process"
import type pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ReplayReport } from "../../services/replay/replay.ts"
import { DEFAULT_MIX, simulate } from "../../tools/source/simulate.ts"
import { seededRandom } from "../fixtures/events.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { dumpOf, lakeOf, startArchiver, waitLakeHolds, type RunningArchiver } from "../support/lake.ts"
import { startPipeline, type RunningPipeline } from "../support/pipeline.ts"
import { februaryEnv, freshDatabase, waitNoSessions } from "../support/stack.ts"

const CHILD = new URL("../support/replay-child.ts", import.meta.url).pathname

interface ChildRun {
  readonly batches: number
  readonly killed: boolean
  readonly report: ReplayReport | undefined
  readonly output: string
}

/**
 * Runs the replay child; kills it (SIGKILL) once it has printed `killAfter` batches and checkpointed
 * at least `minObjects` whole objects, if it gets that far.
 */
const runChild = (config: object, killAfter: number | undefined, minObjects = 0): Promise<ChildRun> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD], {
      env: { ...process.env, REPLAY_CHILD: JSON.stringify(config) },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    let batches = 0
    let killed = false
    let report: ReplayReport | undefined
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      const lines = output.split("\n")
      const batchLines = lines.filter((l) => l.startsWith("batch "))
      batches = batchLines.length
      const objectsCheckpointed = Math.max(0, ...lines.filter((l) => l.startsWith("checkpoint ")).map((l) => Number(l.split(" ")[1])))
      const done = lines.find((l) => l.startsWith("done "))
      if (done) report = JSON.parse(done.slice(5)) as ReplayReport
      if (killAfter !== undefined && batches >= killAfter && objectsCheckpointed >= minObjects && !killed) {
        killed = true
        child.kill("SIGKILL")
      }
    })
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000)
    child.on("error", reject)
    child.on("exit", () => {
      clearTimeout(timer)
      resolve({ batches, killed, report, output })
    })
  })

describe("replay killed at random moments and restarted", { timeout: 300_000 }, () => {
  let env: Record<string, string>
  let pipeline: RunningPipeline
  let archiver: RunningArchiver
  let source: pg.Client

  beforeAll(async () => {
    ;({ env, source } = await februaryEnv({ shards: 2 }))
    pipeline = await startPipeline(env)
    archiver = startArchiver(env, { flushMs: 300, flushBytes: 128 * 1024 })
    await simulate(source, { seed: 31, rate: Infinity, maxTransactions: 120, mix: DEFAULT_MIX })
    await pipeline.caughtUp(120_000)
    await waitLakeHolds(lakeOf(env), (await readWholeStream(env, { chunks: true })).map((r) => r.record.id), 120_000)
    await archiver.stop()
  })

  afterAll(async () => {
    await archiver?.stop()
    await pipeline?.stop()
    await source?.end()
  })

  for (const way of [
    { mode: "bulk", options: { segmentSize: 600 } },
    { mode: "row-by-row", options: { rowByRow: true } }
  ] as const) {
    it(`ends with the live warehouse, resuming from its checkpoint after every kill (${way.mode})`, async () => {
      const target = await freshDatabase("crash")
      const config = { env, target, name: `crash-${way.mode}`, batchSize: 150, listingMarginMs: 200, ...way.options }
      const random = seededRandom(Date.now() % 100_000)
      const runs: Array<ChildRun> = []
      // The first run may be killed before its first checkpoint: the target then holds data but the
      // replay's initial checkpoint names it as its own, so the restart is accepted.
      for (let kill = 0; kill < 6; kill++) {
        // One run is killed only after it has checkpointed a whole object: otherwise, on a slow
        // machine (or with bulk's segments committing behind the reading), every kill could come before one.
        runs.push(await runChild(config, 1 + Math.floor(random() * 12), kill === 2 ? 1 : 0))
        // The killed run's server sessions end when PostgreSQL notices the dead client: the next run starts after that.
        await waitNoSessions(target)
      }
      const last = await runChild(config, undefined)
      expect(last.report, last.output).toBeDefined()
      const killed = runs.filter((r) => r.killed)
      expect(killed.length, runs.map((r) => r.output).join("\n---\n")).toBeGreaterThanOrEqual(5)
      // Progress was kept: the final run skipped objects earlier runs had applied.
      expect(last.report!.resumed).toBe(true)
      expect(last.report!.mode).toBe(way.mode)
      expect(last.report!.objectsSkipped).toBeGreaterThan(0)
      expect(last.report!.objectsTotal).toBeGreaterThan(last.report!.objectsDone)

      const live = await dumpOf(env.WAREHOUSE_DATABASE_URL!)
      const rebuilt = await dumpOf(target)
      for (const table of Object.keys(live)) expect(rebuilt[table], table).toEqual(live[table])
    })
  }
})
