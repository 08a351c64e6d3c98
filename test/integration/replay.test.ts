/**
 * Replay on the real local stack: a simulated workload on the February snapshot runs through
 * reader → Kinesis → consumer (the live warehouse) and → archiver (the lake). Rebuilding a fresh
 * warehouse from the lake must give the live warehouse (every table, every column but record ids
 * and applied_at/updated_at), time travel must give the live warehouse as it was at that moment.
 */
import { Effect, Option } from "effect"
import type pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { replayCheckpointKey } from "../../contracts/checkpoint.ts"
import { compactLake } from "../../services/lake/compact.ts"
import { replay, type ReplayOptions } from "../../services/replay/replay.ts"
import { inspectTarget } from "../../services/replay/target.ts"
import { parseBound } from "../../services/replay/window.ts"
import { CheckpointStore } from "../../services/shared/checkpoint-store.ts"
import { DEFAULT_MIX, simulate } from "../../tools/source/simulate.ts"
import type { Rows } from "../fixtures/derive-star-schema.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { dumpOf, lakeOf, readRawLake, runLakeCli, startArchiver, waitLakeHolds, type RunningArchiver } from "../support/lake.ts"
import { startPipeline, type RunningPipeline } from "../support/pipeline.ts"
import { waitFor } from "../support/processes.ts"
import { connect, februaryEnv, freshDatabase } from "../support/stack.ts"

const expectSameWarehouse = (actual: Record<string, Rows>, expected: Record<string, Rows>) => {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort())
  for (const table of Object.keys(expected)) {
    expect(actual[table]!.length, `${table} rows`).toBe(expected[table]!.length)
    expect(actual[table], table).toEqual(expected[table])
  }
}

describe("replay from the lake", { timeout: 300_000 }, () => {
  let env: Record<string, string>
  let pipeline: RunningPipeline
  let archiver: RunningArchiver
  let source: pg.Client
  let atT: Record<string, Rows>
  let timeT: Date
  let lsnT: string
  let final: Record<string, Rows>
  const options = (targetUrl: string, name: string, more: Partial<ReplayOptions> = {}): ReplayOptions => ({
    lake: lakeOf(env),
    targetUrl,
    checkpoints: Effect.runSync(CheckpointStore.make(env)),
    name,
    batchSize: 700,
    ...more
  })

  beforeAll(async () => {
    ;({ env, source } = await februaryEnv({ shards: 3 }))
    pipeline = await startPipeline(env)
    archiver = startArchiver(env, { flushMs: 300 })
    await simulate(source, { seed: 21, rate: Infinity, maxTransactions: 150, mix: DEFAULT_MIX })
    await pipeline.caughtUp(120_000)
    // The moment T: the warehouse as it is now, with everything committed so far applied.
    atT = await dumpOf(env.WAREHOUSE_DATABASE_URL!)
    const warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
    lsnT = (await warehouse.query("SELECT consistent_through_lsn::text AS lsn FROM pipeline_freshness")).rows[0].lsn
    await warehouse.end()
    timeT = new Date()
    // Commit times come from the source's clock: once it is past T, every later commit is after T.
    await waitFor(async () => (await source.query("SELECT clock_timestamp() > $1::timestamptz AS past", [timeT])).rows[0].past === true, 5_000, `the source's clock past ${timeT.toISOString()}`)
    await simulate(source, { seed: 22, rate: Infinity, maxTransactions: 150, mix: DEFAULT_MIX })
    await pipeline.caughtUp(120_000)
    final = await dumpOf(env.WAREHOUSE_DATABASE_URL!)
    await waitLakeHolds(lakeOf(env), (await readWholeStream(env, { chunks: true })).map((r) => r.record.id), 120_000)
  }, 300_000) // two workloads through the pipeline and the lake: minutes on a busy 2-core machine

  afterAll(async () => {
    await archiver?.stop()
    await pipeline?.stop()
    await source?.end()
  })

  it("rebuilds a fresh warehouse equal to the live one", async () => {
    const target = await freshDatabase("replay")
    const progress: Array<number> = []
    const report = await Effect.runPromise(replay(options(target, "rebuild", { onProgress: (p) => progress.push(p.events), progressIntervalMs: 0 })))
    expect(report.events).toBeGreaterThan(5_000)
    expect(report.batches).toBeGreaterThan(5)
    expect(report.undecodable).toBe(0)
    expect(progress.length).toBeGreaterThan(3)
    expect(atT.fact_sales_order!.length).toBeLessThan(final.fact_sales_order!.length)
    expectSameWarehouse(await dumpOf(target), final)
    // The live warehouse got the February rows as snapshot chunks (merged set-wise); replay read the same chunks back as events.
    const chunks = (await readRawLake(lakeOf(env))).records.filter((r) => r.kind === "snapshot-chunk")
    expect(new Set(chunks.map((c) => c.kind === "snapshot-chunk" && c.source.table)).size).toBe(11)
    expect(final.fact_sales_order!.filter((row) => String(row.row).includes(":snapshot:sales_order:")).length).toBeGreaterThan(1_000)
  })

  it("time travel: --to T (a time, or the LSN the warehouse was consistent through) gives the warehouse as it was at T", async () => {
    const byTime = await freshDatabase("replay")
    await Effect.runPromise(replay(options(byTime, "to-time", { to: parseBound(timeT.toISOString()) })))
    expectSameWarehouse(await dumpOf(byTime), atT)
    const byLsn = await freshDatabase("replay")
    await Effect.runPromise(replay(options(byLsn, "to-lsn", { to: parseBound(lsnT) })))
    expectSameWarehouse(await dumpOf(byLsn), atT)
  })

  it("--from T with catch-up on the warehouse as of T gives the final warehouse", async () => {
    const target = await freshDatabase("replay")
    await Effect.runPromise(replay(options(target, "until-t", { to: parseBound(timeT.toISOString()) })))
    const report = await Effect.runPromise(replay(options(target, "since-t", { from: parseBound(timeT.toISOString()), catchUp: true })))
    expect(report.events).toBeLessThan(final.mirror!.length + final.fact_sales_order!.length + final.fact_payment!.length + final.fact_purchase_order!.length)
    expectSameWarehouse(await dumpOf(target), final)
  })

  it("rebuilds from the compacted Parquet files (plus raw objects compacted later) equally", async () => {
    const compacted = await Effect.runPromise(compactLake({ lake: lakeOf(env) }))
    expect(compacted.outputs).toBeGreaterThan(3)
    const target = await freshDatabase("replay")
    const report = await Effect.runPromise(replay(options(target, "from-parquet", { source: "parquet" })))
    expect(report.objectsTotal).toBeLessThan(compacted.inputs + 20)
    expectSameWarehouse(await dumpOf(target), final)
  })

  it("dry run reads and projects everything but writes nothing", async () => {
    const target = await freshDatabase("replay")
    const full = await Effect.runPromise(replay(options(target, "dry", { dryRun: true })))
    expect(full.dryRun).toBe(true)
    expect(full.events).toBeGreaterThan(5_000)
    expect(full.warehouse.factRows).toBeGreaterThan(1_000)
    const client = await connect(target)
    expect(await inspectTarget(client)).toEqual({ migrated: false, rows: 0 })
    await client.end()
    const checkpoint = await Effect.runPromise(Effect.runSync(CheckpointStore.make(env)).get(replayCheckpointKey("dry")))
    expect(Option.isNone(checkpoint)).toBe(true)
  })

  it("refuses a target that holds data unless catch-up, which then changes nothing", async () => {
    await expect(Effect.runPromise(replay(options(env.WAREHOUSE_DATABASE_URL!, "into-live")))).rejects.toThrow(/already holds data.*--catch-up/)
    const report = await Effect.runPromise(replay(options(env.WAREHOUSE_DATABASE_URL!, "into-live", { catchUp: true })))
    expect(report.events).toBeGreaterThan(5_000)
    expectSameWarehouse(await dumpOf(env.WAREHOUSE_DATABASE_URL!), final)
  })

  it("a finished replay run again applies nothing; other options under the same name are refused", async () => {
    const target = await freshDatabase("replay")
    await Effect.runPromise(replay(options(target, "twice", { listingMarginMs: 500 })))
    const again = await Effect.runPromise(replay(options(target, "twice", { listingMarginMs: 500 })))
    expect(again.resumed).toBe(true)
    expect(again.objectsSkipped).toBeGreaterThan(0)
    expect(again.events).toBe(0)
    await expect(Effect.runPromise(replay(options(target, "twice", { tables: ["address"] })))).rejects.toThrow(/other options/)
  })

  it("the replay command: dry run, then time travel into --target, with progress", async () => {
    const dry = await runLakeCli(["replay", "--dry-run", "--name", "cli-dry"], env)
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toMatch(/dry run: would apply \d+ events/)
    const target = await freshDatabase("replay")
    const run = await runLakeCli(["replay", "--to", timeT.toISOString(), "--target", target, "--name", "cli", "--batch-size", "500"], env)
    expect(run.code, run.stderr).toBe(0)
    expect(run.stderr).toMatch(/objects \d+\/\d+, events [\d,]+ \([\d,]+\/s\), ETA/)
    expect(run.stdout).toMatch(/^lake watermark [0-9A-F]+\/[0-9A-F]+ \(committed .*\): the lake holds every change committed before it$/m)
    expect(run.stdout).toContain(`rebuilt up to --to ${timeT.toISOString()} (within the lake watermark)`)
    expect(run.stdout).toMatch(/^target pipeline_freshness: consistent through [0-9A-F]+\/[0-9A-F]+ \(/m)
    expectSameWarehouse(await dumpOf(target), atT)
    const refused = await runLakeCli(["replay", "--target", env.WAREHOUSE_DATABASE_URL!, "--name", "cli-live"], env)
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(/already holds data/)
  })
})
