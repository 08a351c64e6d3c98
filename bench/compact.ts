/**
 * Parquet: the writer choice and compaction throughput, in one run.
 *
 *   node --import tsx bench/compact.ts         (BENCH_EVENTS=1000000 lake events; BENCH_WRITER_ROWS=100000)
 *
 * 1. Writers on the same BENCH_WRITER_ROWS sales_order events (27 columns: change metadata and the
 *    source row): parquetjs-lite's row API (its Dremel shredder) and its page encoder fed whole
 *    columns (services/lake/parquet-writer.ts), each UNCOMPRESSED / SNAPPY / GZIP; next to the
 *    gzip NDJSON of the same events (what raw/ holds) and Arrow IPC from apache-arrow (which has no
 *    Parquet writer in JS: shown for its speed and size only).
 * 2. compactLake over a synthetic lake of BENCH_EVENTS events (written straight into the local S3):
 *    events/s, input MiB/s, and the size of the Parquet output next to the raw objects it replaces.
 */
import { gzipSync } from "node:zlib"
import { Bool, Float64, Int32, Table, tableToIPC, Utf8, vectorFromArray, type Vector } from "apache-arrow"
import { Effect } from "effect"
import { compactLake } from "../services/lake/compact.ts"
import { encodeEvents } from "../services/lake/parquet-events.ts"
import { writeParquetColumns, writeParquetRows, type ColumnSpec, type ColumnValue, type Compression } from "../services/lake/parquet-writer.ts"
import { s3Client } from "../services/shared/aws-clients.ts"
import { makeLakeStore } from "../services/shared/lake-store.ts"
import { syntheticEvents, writeSyntheticLake } from "../test/support/synthetic-lake.ts"
import type { ChangeEvent } from "../contracts/change-event.ts"
import { copyReference } from "./copy-reference.ts"
import { metrics, nullSink } from "../services/shared/metrics.ts"
import { perSecond, seconds, withStack } from "./support.ts"

metrics.setSink(nullSink) // the figures are printed below; no EMF lines in between

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000)
const WRITER_ROWS = Number(process.env.BENCH_WRITER_ROWS ?? 100_000)
const MiB = 1_048_576

const mib = (bytes: number) => (bytes / MiB).toFixed(2)

const timed = async <A>(work: () => Promise<A> | A): Promise<{ value: A; ms: number }> => {
  const started = performance.now()
  const value = await work()
  return { value, ms: performance.now() - started }
}

const salesEvents = (count: number): Array<ChangeEvent> => {
  const out: Array<ChangeEvent> = []
  for (const event of syntheticEvents(count * 5, 7)) {
    if (event.source.table === "sales_order") out.push(event)
    if (out.length === count) break
  }
  return out
}

const arrowTable = (columns: ReadonlyArray<ColumnSpec>, data: Record<string, ReadonlyArray<ColumnValue>>): Table => {
  const vectors: Record<string, Vector> = {}
  for (const column of columns) {
    const values = data[column.name]!
    const kind = column.type.kind
    vectors[column.name] =
      kind === "utf8"
        ? vectorFromArray(values as Array<string | null>, new Utf8())
        : kind === "int32"
          ? vectorFromArray(values as Array<number | null>, new Int32())
          : kind === "boolean"
            ? vectorFromArray(values as Array<boolean | null>, new Bool())
            : vectorFromArray(values as Array<number | null>, new Float64())
  }
  return new Table(vectors)
}

console.log(`## 1. Writers: ${WRITER_ROWS.toLocaleString("en-GB")} sales_order events`)
const events = salesEvents(WRITER_ROWS)
const encoded = encodeEvents("sales_order", events)
const rows = Array.from({ length: encoded.rows }, (_, i) => Object.fromEntries(encoded.columns.map((c) => [c.name, encoded.data[c.name]![i] ?? null])))
console.log(`(${encoded.columns.length} columns)`)
console.log("")
console.log("| writer | codec | write s | rows/s | size MiB |")
console.log("|---|---|---:|---:|---:|")
const ndjson = await timed(() => gzipSync(events.map((e) => JSON.stringify(e)).join("\n")))
console.log(`| gzip NDJSON (raw/, reference) | gzip | ${seconds(ndjson.ms)} | ${perSecond(WRITER_ROWS, ndjson.ms)} | ${mib(ndjson.value.byteLength)} |`)
const arrow = await timed(() => tableToIPC(arrowTable(encoded.columns, encoded.data), "file"))
console.log(`| apache-arrow IPC file (not Parquet) | none | ${seconds(arrow.ms)} | ${perSecond(WRITER_ROWS, arrow.ms)} | ${mib(arrow.value.byteLength)} |`)
const results: Array<{ name: string; compression: Compression; ms: number; bytes: number }> = []
for (const compression of ["UNCOMPRESSED", "SNAPPY", "GZIP"] as const) {
  const columnar = await timed(() => writeParquetColumns(encoded.columns, encoded.data, encoded.rows, { compression }))
  results.push({ name: "parquetjs-lite page encoder, whole columns", compression, ms: columnar.ms, bytes: columnar.value.byteLength })
}
for (const compression of ["SNAPPY", "GZIP"] as const) {
  const byRow = await timed(() => writeParquetRows(encoded.columns, rows, { compression }))
  results.push({ name: "parquetjs-lite row API (appendRow)", compression, ms: byRow.ms, bytes: byRow.value.byteLength })
}
for (const r of results) console.log(`| ${r.name} | ${r.compression} | ${seconds(r.ms)} | ${perSecond(WRITER_ROWS, r.ms)} | ${mib(r.bytes)} |`)
const chosen = results.find((r) => r.name.startsWith("parquetjs-lite page") && r.compression === "GZIP")!
const rowApi = results.find((r) => r.name.startsWith("parquetjs-lite row") && r.compression === "GZIP")!
console.log("")
console.log(`chosen: page encoder + GZIP — ${(rowApi.ms / chosen.ms).toFixed(1)}× faster than the row API, ${(chosen.bytes / ndjson.value.byteLength).toFixed(2)}× the gzip NDJSON size`)

await withStack(async (stack) => {
  const env = { ...stack.env }
  const lake = makeLakeStore(env.TOTES_LAKE_BUCKET!, s3Client(env))
  console.log("")
  console.log(`## 2. Compaction of a lake of ${EVENTS.toLocaleString("en-GB")} events`)
  const written = await writeSyntheticLake(lake, { count: EVENTS })
  const report = await Effect.runPromise(compactLake({ lake }))
  if (report.events !== EVENTS) throw new Error(`compacted ${report.events} of ${EVENTS} events`)
  console.log("")
  console.log("| measure | value |")
  console.log("|---|---:|")
  console.log(`| raw objects in (gzip NDJSON) | ${written.objects} objects, ${mib(written.bytes)} MiB (${mib(written.uncompressedBytes)} MiB uncompressed) |`)
  console.log(`| Parquet out (GZIP) | ${report.outputs} files in ${report.runs.length} runs, ${mib(report.outputBytes)} MiB |`)
  console.log(`| time | ${seconds(report.ms)} s |`)
  console.log(`| throughput | ${perSecond(report.events, report.ms)} events/s, ${(written.uncompressedBytes / MiB / (report.ms / 1000)).toFixed(1)} MiB/s of NDJSON |`)
  console.log(`| Parquet / raw gzip size | ${(report.outputBytes / written.bytes).toFixed(2)} |`)
  const again = await Effect.runPromise(compactLake({ lake }))
  console.log(`| re-run | ${again.runs.length} runs, ${again.alreadyCompacted} objects already compacted, ${seconds(again.ms)} s |`)
  const copy = await copyReference(env.SOURCE_DATABASE_URL!, EVENTS)
  console.log(`| reference: the same ${copy.rows.toLocaleString("en-GB")} rows loaded with COPY into plain tables | ${seconds(copy.ms)} s, ${perSecond(copy.rows, copy.ms)} rows/s, ${mib(copy.bytes)} MiB on disk |`)
  console.log(`| compaction / COPY | ${(copy.ms / report.ms).toFixed(2)}× the throughput; Parquet is ${(report.outputBytes / copy.bytes).toFixed(2)}× the table size |`)
})
