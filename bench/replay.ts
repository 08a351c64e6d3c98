/**
 * Replay throughput: a lake of synthetic events (BENCH_EVENTS, default 1,000,000, written straight
 * into the lake as raw gzip NDJSON objects of 5 MiB, as the archiver would) replayed into a fresh
 * warehouse — next to the same rows loaded with COPY into plain tables of the source's shape (the
 * floor for getting those rows into PostgreSQL at all), measured in the same run.
 *
 *   node --import tsx bench/replay.ts          (BENCH_EVENTS=200000 for a quicker run)
 *
 * Rows printed:
 * - COPY reference;
 * - the warehouse's own rows (mirror, facts, dimensions, as the bulk run wrote them) loaded with
 *   COPY into a fresh warehouse: what writing that warehouse costs PostgreSQL at least;
 * - dry run (list + read + gunzip + decode + project, no database): the reading side alone;
 * - bulk replay into an empty warehouse (what `totes replay` does there): COPY and set-based;
 * - row-by-row replay (applyRecords per batch of BENCH_BATCH, what `--catch-up` does) when
 *   BENCH_ROW_BY_ROW=1 (default when BENCH_EVENTS ≤ 200,000: it takes minutes beyond), then the
 *   two warehouses are compared row for row.
 */
import { Effect } from "effect"
import { replay, type ReplayReport } from "../services/replay/replay.ts"
import { s3Client } from "../services/shared/aws-clients.ts"
import { CheckpointStore } from "../services/shared/checkpoint-store.ts"
import { makeLakeStore } from "../services/shared/lake-store.ts"
import { dumpOf } from "../test/support/lake.ts"
import { writeSyntheticLake } from "../test/support/synthetic-lake.ts"
import { copyReference, copyWarehouseRows, createDatabase, databaseUrl } from "./copy-reference.ts"
import { metrics, nullSink } from "../services/shared/metrics.ts"
import { availableParallelism } from "node:os"
import { perSecond, postgresCpuMs, processCpuMs, seconds, withStack } from "./support.ts"

metrics.setSink(nullSink) // the figures are printed below; no EMF lines in between

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000)
const BATCH = Number(process.env.BENCH_BATCH ?? 5_000)
const ROW_BY_ROW = process.env.BENCH_ROW_BY_ROW ? process.env.BENCH_ROW_BY_ROW === "1" : EVENTS <= 200_000


interface Cpu {
  readonly nodeMs: number
  readonly postgresMs: number | undefined
}

await withStack(async (stack) => {
  /** CPU used from now on, by this process and by the stack's PostgreSQL (every database of it). */
  const cpuMeter = async () => {
    const [node0, pg0] = [processCpuMs(), await postgresCpuMs(stack.env.SOURCE_DATABASE_URL!)]
    return {
      read: async (): Promise<Cpu> => {
        const pg1 = await postgresCpuMs(stack.env.SOURCE_DATABASE_URL!)
        return { nodeMs: processCpuMs() - node0, postgresMs: pg0 === undefined || pg1 === undefined ? undefined : pg1 - pg0 }
      }
    }
  }

  const env = { ...stack.env }
  const lake = makeLakeStore(env.TOTES_LAKE_BUCKET!, s3Client(env))
  console.log(`writing ${EVENTS.toLocaleString("en-GB")} synthetic events into the lake…`)
  let started = Date.now()
  const written = await writeSyntheticLake(lake, { count: EVENTS })
  console.log(
    `lake: ${written.objects} objects, ${(written.bytes / 1048576).toFixed(1)} MiB gzip (${(written.uncompressedBytes / 1048576).toFixed(1)} MiB NDJSON), written in ${seconds(Date.now() - started)} s`
  )

  // Reference: the same rows, COPY into plain tables of the source's shape (no keys, no indexes).
  const { rows, ms: copyMs } = await copyReference(env.SOURCE_DATABASE_URL!, EVENTS)
  const ratio = (events: number, ms: number) => ((events / ms) / (rows / copyMs)).toFixed(3)

  // Read and project only.
  const checkpoints = Effect.runSync(CheckpointStore.make(env))
  const dryTarget = databaseUrl(env.WAREHOUSE_DATABASE_URL!, "unused")
  started = Date.now()
  const dry = await Effect.runPromise(replay({ lake, targetUrl: dryTarget, checkpoints, name: "bench-dry", dryRun: true, batchSize: BATCH }))
  const dryMs = Date.now() - started

  const timed = async (name: string, options: { rowByRow?: boolean }): Promise<{ report: ReplayReport; ms: number; url: string; cpu: Cpu }> => {
    const url = await createDatabase(env.SOURCE_DATABASE_URL!, `bench_${name}`)
    let lastLine = 0
    const cpu = await cpuMeter()
    const t0 = Date.now()
    const report = await Effect.runPromise(replay({
      lake,
      targetUrl: url,
      checkpoints,
      name: `bench-${name}`,
      batchSize: BATCH,
      ...options,
      progressIntervalMs: 10_000,
      onProgress: (p) => {
        if (Date.now() - lastLine < 9_000) return
        lastLine = Date.now()
        console.log(`  … ${p.mode}: ${p.events.toLocaleString("en-GB")} events, ${p.eventsPerSecond.toLocaleString("en-GB")}/s, ETA ${p.etaSeconds ?? "?"} s`)
      }
    }))
    const ms = Date.now() - t0
    if (report.events !== EVENTS) throw new Error(`${name}: replayed ${report.events} of ${EVENTS} events`)
    return { report, ms, url, cpu: await cpu.read() }
  }

  const bulk = await timed("bulk", {})
  if (bulk.report.mode !== "bulk" || dry.events !== EVENTS) throw new Error(`expected a bulk run of ${EVENTS} events (got ${bulk.report.mode}, dry ${dry.events})`)
  const rowByRow = ROW_BY_ROW ? await timed("rows", { rowByRow: true }) : undefined
  const floorCpu = await cpuMeter()
  const floor = await copyWarehouseRows(bulk.url, env.SOURCE_DATABASE_URL!)
  const floorPostgresMs = (await floorCpu.read()).postgresMs

  let same = "not compared (BENCH_ROW_BY_ROW=1 runs the row-by-row path too)"
  if (rowByRow) {
    const [a, b] = await Promise.all([dumpOf(bulk.url), dumpOf(rowByRow.url)])
    const differing = Object.keys(b).filter((table) => JSON.stringify(a[table]) !== JSON.stringify(b[table]))
    same = differing.length === 0 ? `equal, every table row for row (${Object.values(b).reduce((n, t) => n + t.length, 0).toLocaleString("en-GB")} rows)` : `DIFFERENT: ${differing.join(", ")}`
    if (differing.length > 0) process.exitCode = 1
  }

  console.log("")
  console.log(`| path | events | seconds | events/s | / COPY |`)
  console.log(`|---|---:|---:|---:|---:|`)
  console.log(`| COPY the same rows into plain tables (reference) | ${rows.toLocaleString("en-GB")} | ${seconds(copyMs)} | ${perSecond(rows, copyMs)} | 1 |`)
  console.log(`| COPY of the warehouse rows the bulk replay wrote (${floor.rows.toLocaleString("en-GB")} mirror and fact rows, indexes, jsonb) into a fresh warehouse | ${EVENTS.toLocaleString("en-GB")} | ${seconds(floor.ms)} | ${perSecond(EVENTS, floor.ms)} | ${ratio(EVENTS, floor.ms)} |`)
  console.log(`| replay dry run: list + read + decode + project | ${dry.events.toLocaleString("en-GB")} | ${seconds(dryMs)} | ${perSecond(dry.events, dryMs)} | ${ratio(dry.events, dryMs)} |`)
  console.log(`| bulk replay into an empty warehouse | ${bulk.report.events.toLocaleString("en-GB")} | ${seconds(bulk.ms)} | ${perSecond(bulk.report.events, bulk.ms)} | ${ratio(bulk.report.events, bulk.ms)} |`)
  if (rowByRow) {
    console.log(`| row-by-row replay (batches of ${BATCH}) | ${rowByRow.report.events.toLocaleString("en-GB")} | ${seconds(rowByRow.ms)} | ${perSecond(rowByRow.report.events, rowByRow.ms)} | ${ratio(rowByRow.report.events, rowByRow.ms)} |`)
  }
  console.log("")
  const w = bulk.report.warehouse
  console.log(`bulk replay / COPY throughput: ${ratio(bulk.report.events, bulk.ms)} (${w.factRows.toLocaleString("en-GB")} fact rows, ${w.mirrorRows.toLocaleString("en-GB")} mirror rows, ${w.dimensionRows.toLocaleString("en-GB")} dimension rows written)`)
  const waits = bulk.report.bulkWaits
  if (waits) {
    console.log(
      `bulk replay: ${seconds(waits.factCopyMs)} s waiting for the fact COPYs to take more rows, ${seconds(waits.segmentCommitMs)} s in segment commits (in the background while the next segment is read, but for the last), ${seconds(waits.finishMs)} s deriving dimensions at the end`
    )
  }
  const b = bulk.cpu
  if (b.postgresMs !== undefined) {
    console.log(
      `bulk replay CPU: Node ${seconds(b.nodeMs)} s + PostgreSQL ${seconds(b.postgresMs)} s in ${seconds(bulk.ms)} s = ${((b.nodeMs + b.postgresMs) / bulk.ms).toFixed(2)} of ${availableParallelism()} cores busy` +
        (floorPostgresMs !== undefined ? ` (the second reference's COPY, reading and writing, took PostgreSQL ${seconds(floorPostgresMs)} s)` : "")
    )
  }
  console.log(`bulk and row-by-row warehouses: ${same}`)
})
