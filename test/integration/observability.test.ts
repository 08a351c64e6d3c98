/**
 * A real local run of `totes run --components reader,consumer`: every line it prints is either a
 * valid CloudWatch EMF document or a structured JSON log line; each component emits its metrics
 * with the catalogue's names, units and dimensions; no secret and no row value is ever printed.
 */
import { describe, expect, it } from "vitest"
import pg from "pg"
import { METRICS, parseEmfLine, type EmfDocument, type MetricName } from "../../services/shared/metrics.ts"
import { generateTotesys } from "../../tools/source/generate.ts"
import { DEFAULT_MIX, simulate } from "../../tools/source/simulate.ts"
import { waitCaughtUp } from "../../services/status/status.ts"
import { migrateFromEnv } from "../../services/consumer/main.ts"
import { runTotes, spawnTotes, waitFor } from "../support/processes.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"

const MARKER = "marker-7d1c9e@row-value.example"

describe("observability of a real run", () => {
  it("emits valid EMF metrics per component and logs no secret and no row value", async () => {
    const env = await isolatedPipelineEnv({ shards: 2 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await generateTotesys(source, { seed: "observe", days: 10 })
    await source.query("UPDATE staff SET email_address = $1, last_updated = now() WHERE staff_id = 1", [MARKER])
    await migrateFromEnv(env)
    const run = spawnTotes(["run", "--components", "reader,consumer,archiver"], { ...env, TOTES_METRICS: "stdout", TOTES_LOG_LEVEL: "debug", TOTES_ARCHIVER_FLUSH_MS: "300" })
    await waitFor(() => run.output().includes("streaming slot"), 60_000, `reader streaming: ${run.output()}`)
    await simulate(source, { seed: "observe", rate: Infinity, maxTransactions: 60, mix: DEFAULT_MIX })
    await source.query("UPDATE staff SET email_address = $1, last_updated = now() WHERE staff_id = 2", [MARKER])
    const warehouse = new pg.Client({ connectionString: env.WAREHOUSE_DATABASE_URL })
    await warehouse.connect()
    await waitCaughtUp({ source, warehouse }, { timeoutMs: 60_000 })
    await warehouse.end()
    run.child.kill("SIGTERM")
    expect(await run.exited).not.toBeNull()
    // Replay reports its own figures (a dry run reads the lake the archiver just wrote).
    const replay = await runTotes(["replay", "--dry-run", "--name", "observe"], { ...env, TOTES_METRICS: "stdout" })
    expect(replay.code, replay.output).toBe(0)

    const lines = [...run.output().split("\n"), ...replay.output.split("\n").filter((l) => l.startsWith("{"))].filter((l) => l.trim() !== "")
    const emf: Array<EmfDocument> = []
    const logs: Array<Record<string, unknown>> = []
    for (const line of lines) {
      const doc = parseEmfLine(line)
      if (doc) {
        emf.push(doc)
        continue
      }
      const log = JSON.parse(line) as Record<string, unknown> // every other line is a JSON log line
      expect(Object.keys(log)).toEqual(expect.arrayContaining(["level", "time", "component", "message"]))
      logs.push(log)
    }

    // EMF: namespace, declared metrics present with the catalogue's unit, dimension sets resolvable.
    const seen = new Map<string, Set<string>>()
    for (const doc of emf) {
      for (const directive of doc._aws.CloudWatchMetrics) {
        expect(directive.Namespace).toBe("TotesCdc")
        for (const set of directive.Dimensions) for (const name of set) expect(typeof doc[name], `dimension ${name}`).toBe("string")
        for (const metric of directive.Metrics) {
          const definition = METRICS[metric.Name as MetricName]
          expect(definition, metric.Name).toBeDefined()
          expect(metric.Unit, metric.Name).toBe(definition.unit)
          expect(doc[metric.Name], metric.Name).toBeDefined()
          const component = String(doc.Component)
          seen.set(component, (seen.get(component) ?? new Set()).add(metric.Name))
        }
      }
    }
    expect([...(seen.get("reader") ?? [])]).toEqual(expect.arrayContaining(["EventsPublished", "PublishLatency", "PublishBatchSize", "ReplicationLagBytes", "SnapshotRows"]))
    expect([...(seen.get("consumer") ?? [])]).toEqual(expect.arrayContaining(["EventsApplied", "EndToEndLatency", "BatchDuration", "ConsistentThroughAgeSeconds"]))
    expect([...(seen.get("lake") ?? [])]).toEqual(expect.arrayContaining(["LakeObjectsWritten", "LakeBytesWritten"]))
    expect([...(seen.get("replay") ?? [])]).toEqual(expect.arrayContaining(["EventsReplayed", "ReplayEventsPerSecond"]))
    const published = emf.filter((d) => d.EventsPublished !== undefined)
    expect(published.every((d) => typeof d.Table === "string" && typeof d.Operation === "string")).toBe(true)

    // Logs: correlation fields, and nothing secret or from a row.
    expect(logs.some((l) => l.component === "reader" && l.slot === env.TOTES_SLOT)).toBe(true)
    const everything = run.output() + replay.output
    expect(everything).not.toContain(new URL(env.SOURCE_DATABASE_URL!).password)
    expect(everything).not.toContain(MARKER)
    await source.end()
  })
})
