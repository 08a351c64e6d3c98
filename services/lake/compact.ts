/**
 * Compaction: raw gzip NDJSON → Parquet per source table and UTC day of the commit,
 * `parquet/<table>/date=YYYY-MM-DD/<uuid>.parquet`, plus one manifest per run.
 *
 *   const report = yield* compactLake({ lake, from, to })
 *
 * Raw objects already listed by a manifest are skipped, so re-running changes nothing that exists
 * (and writes nothing when there is nothing new). Every write is a new key (`IfNoneMatch: *`). A
 * run holds at most `maxEventsPerRun` events in memory; a larger backlog becomes several runs,
 * each committed by its own manifest. Change events only: heartbeats stay in raw/. Within a run an
 * event delivered twice (Firehose is at-least-once) is written once; across runs it can appear
 * twice, as in raw/ (readers deduplicate by event_id, as replay does).
 *
 * An event whose claim check or snapshot chunk object is missing cannot be written: the manifest
 * records its id under its raw object (replay from Parquet reports it, as replay from raw does),
 * the report lists it and a warning is logged. The object still counts as compacted: its other
 * events are in the Parquet files, and compacting it again could not find the missing object
 * either.
 */
import { metrics } from "../shared/metrics.ts"
import { randomUUID } from "node:crypto"
import { Effect } from "effect"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { parquetManifestKey, parquetObjectKey } from "../../contracts/lake.ts"
import { lsnToBigInt } from "../../contracts/lsn.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"
import { resolveClaimChecks } from "./claims.ts"
import { expandSnapshotChunks } from "./snapshot-chunks.ts"
import { readManifests, type CompactionManifest, type ManifestInput, type ManifestOutput } from "./manifest.ts"
import { encodeEvents } from "./parquet-events.ts"
import { writeParquetColumns, type Compression } from "./parquet-writer.ts"
import { listRawObjects, RawObjectUnreadable, readRawObject, type RawObjectRef } from "./raw.ts"

export interface CompactOptions {
  readonly lake: LakeStoreShape
  /** Raw objects whose hour prefix is at or after this hour. */
  readonly from?: Date
  /** Raw objects whose hour prefix is at or before this hour. */
  readonly to?: Date
  readonly compression?: Compression
  readonly maxEventsPerRun?: number
  readonly onRun?: (manifest: CompactionManifest, ms: number) => void
}

export interface CompactReport {
  readonly runs: ReadonlyArray<string>
  readonly inputs: number
  /** Raw objects skipped because a manifest already lists them. */
  readonly alreadyCompacted: number
  readonly inputBytes: number
  readonly events: number
  readonly outputs: number
  readonly outputBytes: number
  readonly ms: number
  /** Raw objects with events that could not be written (claim check or snapshot chunk missing), and those events' ids. */
  readonly unresolved: ReadonlyArray<{ readonly key: string; readonly ids: ReadonlyArray<string> }>
  /** Raw objects that are not gzip NDJSON: left uncompacted (a replay over them refuses, naming them). */
  readonly unreadable: ReadonlyArray<{ readonly key: string; readonly reason: string }>
}

const HOUR = 3_600_000
const floorHour = (at: Date) => new Date(Math.floor(at.getTime() / HOUR) * HOUR)

/** `20240223T120000123Z-1a2b3c4d`: sortable by creation time, unique. */
const runId = () => `${new Date().toISOString().replace(/[-:.]/g, "")}-${randomUUID().slice(0, 8)}`

const byPosition = (a: ChangeEvent, b: ChangeEvent) => {
  const x = lsnToBigInt(a.source.commitLsn)
  const y = lsnToBigInt(b.source.commitLsn)
  return x < y ? -1 : x > y ? 1 : a.source.index - b.source.index
}

export const WRITER = "parquetjs-lite 0.8 page encoder, flat columns, one row group"

export const compactLake = Effect.fn("compactLake")(function* (options: CompactOptions) {
  const started = Date.now()
  const { lake } = options
  const compacted = new Set((yield* readManifests(lake)).flatMap((m) => m.inputs.map((i) => i.key)))
  const listed = yield* listRawObjects(lake, {})
  const from = options.from ? floorHour(options.from) : undefined
  const inWindow = listed.filter((o) => (!from || o.hour >= from) && (!options.to || o.hour <= options.to))
  const pending = inWindow.filter((o) => !compacted.has(o.key))
  const maxEvents = options.maxEventsPerRun ?? 250_000

  const runs: Array<string> = []
  let events = 0
  let outputs = 0
  let outputBytes = 0
  const unresolved: Array<{ key: string; ids: Array<string> }> = []
  const unreadable: Array<{ key: string; reason: string }> = []
  let cursor = 0
  while (cursor < pending.length) {
    const chunk: Array<RawObjectRef> = []
    const inputs: Array<ManifestInput> = []
    const byPartition = new Map<string, Array<ChangeEvent>>()
    const seen = new Set<string>()
    let buffered = 0
    let duplicates = 0
    let undecodable = 0
    const runStarted = Date.now()
    // Whole objects per run, until the run holds maxEvents events.
    while (cursor < pending.length && (chunk.length === 0 || buffered < maxEvents)) {
      const object = pending[cursor++]!
      const read = yield* readRawObject(lake, object.key).pipe(Effect.catchTag("RawObjectUnreadable", Effect.succeed))
      if (read instanceof RawObjectUnreadable) {
        // Left uncompacted (replay then refuses it, naming it), and reported: one bad object must not stop every run.
        unreadable.push({ key: object.key, reason: read.message })
        yield* Effect.logError("compaction skipped a raw object that is not gzip NDJSON").pipe(
          Effect.annotateLogs({ component: "lake", objectKey: object.key, reason: read.message })
        )
        continue
      }
      chunk.push(object)
      undecodable += read.undecodable.length
      const expanded = yield* expandSnapshotChunks(lake, read.records)
      const { records, unresolved: missingClaims } = yield* resolveClaimChecks(lake, expanded.records)
      const left = [...expanded.unresolved, ...missingClaims]
      if (left.length > 0) {
        unresolved.push({ key: object.key, ids: left })
        yield* Effect.logWarning("compaction left events out: their claim check or snapshot chunk object is missing").pipe(
          Effect.annotateLogs({ component: "lake", objectKey: object.key, events: left.length })
        )
      }
      let objectEvents = 0
      for (const record of records) {
        if (record.kind !== "change") continue
        objectEvents++
        if (seen.has(record.id)) {
          duplicates++
          continue
        }
        seen.add(record.id)
        const partition = `${record.source.table}\u0000${record.source.committedAt.slice(0, 10)}`
        let list = byPartition.get(partition)
        if (!list) byPartition.set(partition, (list = []))
        list.push(record)
        buffered++
      }
      inputs.push({
        key: object.key,
        size: object.size,
        records: read.records.length + read.undecodable.length,
        events: objectEvents,
        undecodable: read.undecodable.length,
        unresolved: left
      })
    }

    if (inputs.length === 0) continue // every object of this run was unreadable: no run
    const written: Array<ManifestOutput> = []
    for (const [partition, list] of [...byPartition.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const [table, date] = partition.split("\u0000") as [string, string]
      list.sort(byPosition)
      const encoded = encodeEvents(table, list)
      const body = yield* Effect.promise(() =>
        writeParquetColumns(encoded.columns, encoded.data, encoded.rows, {
          compression: options.compression ?? "GZIP",
          keyValues: { "totes.table": table, "totes.date": date }
        })
      )
      const key = parquetObjectKey(table, date, randomUUID())
      yield* lake.putNew(key, body, "application/vnd.apache.parquet")
      metrics.emit("lake", { LakeObjectsWritten: 1, LakeBytesWritten: body.byteLength })
      written.push({ key, table, date, rows: encoded.rows, bytes: body.byteLength })
    }

    const id = runId()
    const manifest: CompactionManifest = {
      version: 1,
      run: id,
      createdAt: new Date().toISOString(),
      window: { from: options.from?.toISOString() ?? null, to: options.to?.toISOString() ?? null },
      writer: `${WRITER}, ${options.compression ?? "GZIP"}`,
      inputs,
      outputs: written,
      duplicates,
      undecodable
    }
    yield* lake.putNew(parquetManifestKey(id), JSON.stringify(manifest, null, 1), "application/json")
    options.onRun?.(manifest, Date.now() - runStarted)
    runs.push(id)
    events += buffered
    outputs += written.length
    outputBytes += written.reduce((sum, o) => sum + o.bytes, 0)
  }

  const report: CompactReport = {
    runs,
    inputs: pending.length,
    alreadyCompacted: inWindow.length - pending.length,
    inputBytes: pending.reduce((sum, o) => sum + o.size, 0),
    events,
    outputs,
    outputBytes,
    ms: Date.now() - started,
    unresolved,
    unreadable
  }
  return report
})
