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
import { Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { Effect } from "effect"
import pg from "pg"
import { from as copyFrom } from "pg-copy-streams"
import { TOTESYS_TABLES } from "../contracts/totesys.ts"
import { SOURCE_COLUMNS } from "../services/consumer/projection.ts"
import { replay } from "../services/replay/replay.ts"
import { s3Client } from "../services/shared/aws-clients.ts"
import { CheckpointStore } from "../services/shared/checkpoint-store.ts"
import { makeLakeStore } from "../services/shared/lake-store.ts"
import { initSourceSchema } from "../services/source/totesys-db.ts"
import { syntheticEvents, writeSyntheticLake } from "../test/support/synthetic-lake.ts"
import { perSecond, seconds, withStack } from "./support.ts"

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000)
const BATCH = Number(process.env.BENCH_BATCH ?? 5_000)

const databaseUrl = (base: string, name: string) => {
  const url = new URL(base)
  url.pathname = `/${name}`
  return url.toString()
}

const createDatabase = async (base: string, name: string) => {
  const admin = new pg.Client({ connectionString: databaseUrl(base, "postgres") })
  await admin.connect()
  await admin.query(`CREATE DATABASE "${name}"`)
  await admin.end()
  return databaseUrl(base, name)
}

const csvValue = (value: unknown): string => {
  if (value === null || value === undefined) return ""
  if (typeof value === "boolean") return value ? "t" : "f"
  const text = typeof value === "string" ? value : JSON.stringify(value)
  return `"${text.replace(/"/g, '""')}"`
}

/** Every event's row image as CSV, per table (prepared before the clock starts). */
const csvByTable = (count: number): Map<string, Array<string>> => {
  const out = new Map<string, Array<string>>(TOTESYS_TABLES.map((t) => [t, []]))
  for (const event of syntheticEvents(count)) {
    const table = event.source.table as (typeof TOTESYS_TABLES)[number]
    const image = event.after ?? event.before
    if (!image) continue
    out.get(table)!.push(`${SOURCE_COLUMNS[table].map((c) => csvValue(image[c])).join(",")}\n`)
  }
  return out
}

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
  const copyUrl = await createDatabase(env.SOURCE_DATABASE_URL!, "bench_copy")
  const copyClient = new pg.Client({ connectionString: copyUrl })
  await copyClient.connect()
  await initSourceSchema(copyClient)
  for (const table of TOTESYS_TABLES) await copyClient.query(`CREATE TABLE "copy_${table}" (LIKE "${table}")`)
  const csv = csvByTable(EVENTS)
  const rows = [...csv.values()].reduce((n, lines) => n + lines.length, 0)
  started = Date.now()
  for (const [table, lines] of csv) {
    if (lines.length === 0) continue
    const copy = copyClient.query(copyFrom(`COPY "copy_${table}" (${SOURCE_COLUMNS[table as (typeof TOTESYS_TABLES)[number]].map((c) => `"${c}"`).join(", ")}) FROM STDIN WITH (FORMAT csv)`))
    const source = async function* () {
      for (let i = 0; i < lines.length; i += 1_000) yield lines.slice(i, i + 1_000).join("")
    }
    await pipeline(source, copy as unknown as Writable)
  }
  const copyMs = Date.now() - started
  await copyClient.end()
  csv.clear()

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
