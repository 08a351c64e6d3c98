/**
 * Reading the compacted lake: which raw objects are compacted, which Parquet files are committed
 * (listed by a manifest) for a window, and a file's change events.
 */
import { Effect, Schema } from "effect"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"
import { readManifests, type ManifestOutput } from "./manifest.ts"
import { decodeEvents } from "./parquet-events.ts"
import { readParquetFile } from "./parquet-file-reader.ts"

/** A key that is not a compacted Parquet file's, or a file that does not decode. */
export class ParquetReadError extends Schema.TaggedError<ParquetReadError>()("ParquetReadError", {
  key: Schema.String,
  message: Schema.String
}) {}

/** Raw object keys some committed compaction run has read. */
export const listCompactedInputs = (lake: LakeStoreShape): Effect.Effect<Set<string>, LakeError> =>
  Effect.map(readManifests(lake), (manifests) => new Set(manifests.flatMap((m) => m.inputs.map((input) => input.key))))

export interface ParquetObjectRef extends ManifestOutput {
  readonly size: number
  readonly lastModified: Date | undefined
}

/**
 * Committed Parquet files whose day can hold events of the window (files are partitioned by the
 * UTC day of the commit time), of the chosen tables.
 */
export const listParquetObjects = (
  lake: LakeStoreShape,
  window: { readonly from?: Date; readonly to?: Date; readonly tables?: ReadonlyArray<string> } = {}
): Effect.Effect<Array<ParquetObjectRef>, LakeError> =>
  Effect.map(readManifests(lake), (manifests) => {
    const fromDay = window.from?.toISOString().slice(0, 10)
    const toDay = window.to?.toISOString().slice(0, 10)
    const tables = window.tables && window.tables.length > 0 ? new Set(window.tables) : undefined
    const out: Array<ParquetObjectRef> = []
    for (const manifest of manifests) {
      for (const output of manifest.outputs) {
        if (fromDay && output.date < fromDay) continue
        if (toDay && output.date > toDay) continue
        if (tables && !tables.has(output.table)) continue
        out.push({ ...output, size: output.bytes, lastModified: new Date(manifest.createdAt) })
      }
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  })

/** The change events stored in one compacted file (the table is in its key). */
export const readParquetEvents = Effect.fn("readParquetEvents")(function* (lake: LakeStoreShape, key: string) {
  const table = /^parquet\/([^/]+)\/date=/.exec(key)?.[1]
  if (!table) return yield* new ParquetReadError({ key, message: `not a compacted Parquet key: ${key}` })
  const body = yield* lake.get(key)
  return yield* Effect.try({
    try: (): Array<ChangeEvent> => decodeEvents(table, readParquetFile(body)),
    catch: (error) => new ParquetReadError({ key, message: `Parquet file ${key}: ${error instanceof Error ? error.message : String(error)}` })
  })
})
