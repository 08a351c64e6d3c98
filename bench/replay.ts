/**
 * Replay throughput: a lake of synthetic events (BENCH_EVENTS, default 1,000,000, written straight
 * into the lake as raw gzip NDJSON objects of 5 MiB, as the archiver would) replayed into a fresh
 * warehouse through the consumer's apply — next to the same rows loaded with COPY into plain
 * tables of the source's shape (the floor for getting those rows into PostgreSQL at all).
 *
 *   node --import tsx bench/replay.ts          (BENCH_EVENTS=200000 for a quicker run; BENCH_BATCH=5000)
 *
 * Also printed: a dry run (list + read + gunzip + decode + project, no database), to show how
 * the time splits between reading the lake and the warehouse.
 */
import { Effect } from "effect"
import pg from "pg"
import { replay } from "../services/replay/replay.ts"
import { s3Client } from "../services/shared/aws-clients.ts"
import { CheckpointStore } from "../services/shared/checkpoint-store.ts"
import { makeLakeStore } from "../services/shared/lake-store.ts"
import { writeSyntheticLake } from "../test/support/synthetic-lake.ts"
import { copyReference, createDatabase, databaseUrl } from "./copy-reference.ts"
import { metrics, nullSink } from "../services/shared/metrics.ts"
import { perSecond, seconds, withStack } from "./support.ts"

metrics.setSink(nullSink) // the figures are printed below; no EMF lines in between

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000)
const BATCH = Number(process.env.BENCH_BATCH ?? 5_000)

await withStack(async (stack) => {
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

  // Read and project only.
  const checkpoints = Effect.runSync(CheckpointStore.make(env))
  const dryTarget = databaseUrl(env.WAREHOUSE_DATABASE_URL!, "unused")
  started = Date.now()
  const dry = await replay({ lake, targetUrl: dryTarget, checkpoints, name: "bench-dry", dryRun: true, batchSize: BATCH })
  const dryMs = Date.now() - started

  // Replay into a fresh warehouse.
  const target = await createDatabase(env.SOURCE_DATABASE_URL!, "bench_replay")
  let lastLine = 0
  started = Date.now()
  const report = await replay({
    lake,
    targetUrl: target,
    checkpoints,
    name: "bench",
    batchSize: BATCH,
    progressIntervalMs: 10_000,
    onProgress: (p) => {
      if (Date.now() - lastLine < 9_000) return
      lastLine = Date.now()
      console.log(`  … ${p.events.toLocaleString("en-GB")} events, ${p.eventsPerSecond.toLocaleString("en-GB")}/s, ETA ${p.etaSeconds ?? "?"} s`)
    }
  })
  const replayMs = Date.now() - started
  if (report.events !== EVENTS || dry.events !== EVENTS) throw new Error(`replayed ${report.events} (dry ${dry.events}) of ${EVENTS} events`)
  const check = new pg.Client({ connectionString: target })
  await check.connect()
  const facts = (await check.query("SELECT (SELECT count(*) FROM fact_sales_order) + (SELECT count(*) FROM fact_purchase_order) + (SELECT count(*) FROM fact_payment) AS n")).rows[0].n
  await check.end()

  console.log("")
  console.log(`| path | events | seconds | events/s |`)
  console.log(`|---|---:|---:|---:|`)
  console.log(`| COPY the same rows into plain tables (reference) | ${rows.toLocaleString("en-GB")} | ${seconds(copyMs)} | ${perSecond(rows, copyMs)} |`)
  console.log(`| replay dry run: list + read + decode + project | ${dry.events.toLocaleString("en-GB")} | ${seconds(dryMs)} | ${perSecond(dry.events, dryMs)} |`)
  console.log(`| replay into a fresh warehouse (batches of ${BATCH}) | ${report.events.toLocaleString("en-GB")} | ${seconds(replayMs)} | ${perSecond(report.events, replayMs)} |`)
  console.log("")
  console.log(`replay / COPY throughput: ${((report.events / replayMs) / (rows / copyMs)).toFixed(3)} (${report.batches} transactions; ${Number(facts).toLocaleString("en-GB")} fact rows, ${report.warehouse.mirrorRows.toLocaleString("en-GB")} mirror rows written)`)
})
