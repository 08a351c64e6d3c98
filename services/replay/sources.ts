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
import { Effect } from "effect"
import type { StreamRecord } from "../../contracts/change-event.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"
import { resolveClaimChecks } from "../lake/claims.ts"
import { listCompactedInputs, listParquetObjects, readParquetEvents } from "../lake/parquet-read.ts"
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
  readonly load: () => Promise<LoadedUnit>
}

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

/** Off the main thread: zlib's asynchronous gunzip runs in libuv's thread pool while the objects before it are decoded. */
const gunzipAsync = promisify(gunzip)

/** The records of a raw object (gzip NDJSON; multi-member gzip is fine), decoded as raw.ts's parseRawRecords would. */
const readRawRecords = async (lake: LakeStoreShape, key: string) => {
  const text = (await gunzipAsync(await run(lake.get(key)))).toString("utf8")
  return decodeRecordLines(text.split("\n").filter((line) => line.length > 0))
}

const rawUnit = (lake: LakeStoreShape, object: { key: string; size: number; lastModified: Date | undefined }): ReplayUnit => ({
  key: object.key,
  size: object.size,
  lastModified: object.lastModified,
  load: async () => {
    const { records, undecodable } = await readRawRecords(lake, object.key)
    const chunks = await expandSnapshotChunks(lake, records) // initial-snapshot chunks → their op "r" events
    const resolved = await resolveClaimChecks(lake, chunks.records)
    return { records: resolved.records, undecodable: undecodable.length, unresolved: [...chunks.unresolved, ...resolved.unresolved] }
  }
})

export const rawUnits = async (lake: LakeStoreShape, window: RawWindow): Promise<Array<ReplayUnit>> =>
  (await run(listRawObjects(lake, window))).map((object) => rawUnit(lake, object))

export const parquetUnits = async (
  lake: LakeStoreShape,
  window: RawWindow & { readonly tables?: ReadonlyArray<string> }
): Promise<Array<ReplayUnit>> => {
  const compacted = await listCompactedInputs(lake)
  const files = await listParquetObjects(lake, window)
  const raw = (await run(listRawObjects(lake, window))).filter((object) => !compacted.has(object.key))
  return [
    ...files.map(
      (file): ReplayUnit => ({
        key: file.key,
        size: file.size,
        lastModified: file.lastModified,
        load: async () => ({ records: await readParquetEvents(lake, file.key), undecodable: 0, unresolved: [] })
      })
    ),
    ...raw.map((object) => rawUnit(lake, object))
  ]
}
