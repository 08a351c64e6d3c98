/**
 * Where a replay reads events from: units (lake objects) in key order, each loaded on demand.
 *
 *   rawUnits      the raw/ objects that can hold events of the window (Firehose's output)
 *   parquetUnits  the compacted Parquet files of the window's days, plus every raw object that no
 *                 compaction manifest lists yet (so nothing delivered since the last compaction is
 *                 missed)
 */
import { promisify } from "node:util"
import { gunzip } from "node:zlib"
import { Effect, Schema } from "effect"
import type { StreamRecord } from "../../contracts/change-event.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"
import { resolveClaimChecks } from "../lake/claims.ts"
import { listCompactedInputs, listParquetObjects, readParquetEvents, type ParquetReadError } from "../lake/parquet-read.ts"
import { listRawObjects, type RawWindow } from "../lake/raw.ts"
import { expandSnapshotChunks } from "../lake/snapshot-chunks.ts"
import { decodeRecordLines } from "./decode-records.ts"

export interface LoadedUnit {
  readonly records: ReadonlyArray<StreamRecord>
  /** Lines that are not valid stream records (reported, never applied). */
  readonly undecodable: number
  /** Oversize events whose stored images could not be read. */
  readonly unresolved: ReadonlyArray<string>
}

export interface ReplayUnit {
  readonly key: string
  readonly size: number
  readonly lastModified: Date | undefined
  readonly load: Effect.Effect<LoadedUnit, ReplayReadError>
}

/** A raw object that is not gzip. */
export class RawObjectUnreadable extends Schema.TaggedError<RawObjectUnreadable>()("RawObjectUnreadable", {
  key: Schema.String,
  message: Schema.String
}) {}

/** Why a unit could not be read: the lake failed (retry), or an object is not what its key says. */
export type ReplayReadError = LakeError | ParquetReadError | RawObjectUnreadable

/** Off the main thread: zlib's asynchronous gunzip runs in libuv's thread pool while the objects before it are decoded. */
const gunzipAsync = promisify(gunzip)

/** The records of a raw object (gzip NDJSON; multi-member gzip is fine), decoded as raw.ts's parseRawRecords would. */
const readRawRecords = (lake: LakeStoreShape, key: string) =>
  lake.get(key).pipe(
    Effect.flatMap((body) =>
      Effect.tryPromise({
        try: () => gunzipAsync(body),
        catch: (error) => new RawObjectUnreadable({ key, message: `raw object ${key}: ${error instanceof Error ? error.message : String(error)}` })
      })
    ),
    Effect.map((text) => decodeRecordLines(text.toString("utf8").split("\n").filter((line) => line.length > 0)))
  )

const rawUnit = (lake: LakeStoreShape, object: { key: string; size: number; lastModified: Date | undefined }): ReplayUnit => ({
  key: object.key,
  size: object.size,
  lastModified: object.lastModified,
  load: Effect.gen(function* () {
    const { records, undecodable } = yield* readRawRecords(lake, object.key)
    const chunks = yield* expandSnapshotChunks(lake, records) // initial-snapshot chunks → their op "r" events
    const resolved = yield* resolveClaimChecks(lake, chunks.records)
    return { records: resolved.records, undecodable: undecodable.length, unresolved: [...chunks.unresolved, ...resolved.unresolved] }
  })
})

export const rawUnits = (lake: LakeStoreShape, window: RawWindow): Effect.Effect<Array<ReplayUnit>, LakeError> =>
  Effect.map(listRawObjects(lake, window), (objects) => objects.map((object) => rawUnit(lake, object)))

export const parquetUnits = Effect.fn("parquetUnits")(function* (
  lake: LakeStoreShape,
  window: RawWindow & { readonly tables?: ReadonlyArray<string> }
): Effect.fn.Return<Array<ReplayUnit>, LakeError> {
  const compacted = yield* listCompactedInputs(lake)
  const files = yield* listParquetObjects(lake, window)
  const raw = (yield* listRawObjects(lake, window)).filter((object) => !compacted.has(object.key))
  return [
    ...files.map(
      (file): ReplayUnit => ({
        key: file.key,
        size: file.size,
        lastModified: file.lastModified,
        load: Effect.map(readParquetEvents(lake, file.key), (records): LoadedUnit => ({ records, undecodable: 0, unresolved: [] }))
      })
    ),
    ...raw.map((object) => rawUnit(lake, object))
  ]
})
