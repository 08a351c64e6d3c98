/**
 * Where a replay reads events from: units in key order, each loaded on demand.
 *
 *   rawUnits      the raw/ objects that can hold events of the window (Firehose's output), one
 *                 unit each
 *   parquetUnits  the compacted Parquet files of the window's days, plus every raw object that no
 *                 compaction manifest lists yet (so nothing delivered since the last compaction is
 *                 missed), in the units and order parquet-order.ts plans: a run's files of one
 *                 table, a raw object, or overlapping ones merged; each row's changes in the order
 *                 raw replay applies them
 */
import { promisify } from "node:util"
import { gunzip } from "node:zlib"
import { Effect } from "effect"
import type { StreamRecord } from "../../contracts/change-event.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"
import { resolveClaimChecks } from "../lake/claims.ts"
import { readManifests } from "../lake/manifest.ts"
import { readParquetEvents, type ParquetReadError } from "../lake/parquet-read.ts"
import { listRawObjects, unreadable, type RawObjectRef, type RawObjectUnreadable, type RawWindow } from "../lake/raw.ts"
import { expandSnapshotChunks } from "../lake/snapshot-chunks.ts"
import { decodeRecordLines } from "./decode-records.ts"
import { inPositionOrder, planParquetReplay, type ParquetFileRef, type ParquetReplayStep } from "./parquet-order.ts"

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
        catch: (error) => unreadable(key, error)
      })
    ),
    Effect.map((text) => decodeRecordLines(text.toString("utf8").split("\n").filter((line) => line.length > 0)))
  )

/** A raw object's records with snapshot chunks and claim checks resolved (what cannot be is reported). */
const loadRaw = (lake: LakeStoreShape, key: string): Effect.Effect<LoadedUnit, ReplayReadError> =>
  Effect.gen(function* () {
    const { records, undecodable } = yield* readRawRecords(lake, key)
    const chunks = yield* expandSnapshotChunks(lake, records) // initial-snapshot chunks → their op "r" events
    const resolved = yield* resolveClaimChecks(lake, chunks.records)
    return { records: resolved.records, undecodable: undecodable.length, unresolved: [...chunks.unresolved, ...resolved.unresolved] }
  })

const rawUnit = (lake: LakeStoreShape, object: RawObjectRef): ReplayUnit => ({
  key: object.key,
  size: object.size,
  lastModified: object.lastModified,
  load: loadRaw(lake, object.key)
})

export const rawUnits = (lake: LakeStoreShape, window: RawWindow): Effect.Effect<Array<ReplayUnit>, LakeError> =>
  Effect.map(listRawObjects(lake, window), (objects) => objects.map((object) => rawUnit(lake, object)))

/** The change events of Parquet files, in position order. */
const loadFiles = (lake: LakeStoreShape, files: ReadonlyArray<ParquetFileRef>) =>
  Effect.map(
    Effect.forEach(files, (file) => readParquetEvents(lake, file.key)),
    (events) => inPositionOrder(events.flat())
  )

const loadStep = (lake: LakeStoreShape, step: ParquetReplayStep): Effect.Effect<LoadedUnit, ReplayReadError> => {
  switch (step.kind) {
    case "raw":
      return loadRaw(lake, step.object.key)
    case "table":
      return Effect.map(loadFiles(lake, step.files), (records) => ({ records, undecodable: 0, unresolved: [] }))
    case "report":
      return Effect.succeed({ records: [], undecodable: step.undecodable, unresolved: step.unresolved })
    case "group":
      return Effect.gen(function* () {
        const compacted = yield* loadFiles(lake, step.files)
        const raw = yield* Effect.forEach(step.raw, (object) => loadRaw(lake, object.key))
        return {
          records: inPositionOrder([...compacted, ...raw.flatMap((r) => r.records)]),
          undecodable: step.undecodable + raw.reduce((n, r) => n + r.undecodable, 0),
          unresolved: [...step.unresolved, ...raw.flatMap((r) => r.unresolved)]
        }
      })
  }
}

export const parquetUnits = Effect.fn("parquetUnits")(function* (
  lake: LakeStoreShape,
  window: RawWindow & { readonly tables?: ReadonlyArray<string> }
): Effect.fn.Return<Array<ReplayUnit>, LakeError> {
  const manifests = yield* readManifests(lake)
  const raw = yield* listRawObjects(lake, window)
  return planParquetReplay(manifests, raw, window).map(
    (step): ReplayUnit => ({ key: step.key, size: step.size, lastModified: step.lastModified, load: loadStep(lake, step) })
  )
})
