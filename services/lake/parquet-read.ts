/**
 * Reading a compacted Parquet file's change events. Which files are committed (listed by a
 * manifest) and in which order a replay reads them: services/replay/parquet-order.ts.
 */
import { Effect, Schema } from "effect"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"
import { decodeEvents } from "./parquet-events.ts"
import { readParquetFile } from "./parquet-file-reader.ts"

/** A key that is not a compacted Parquet file's, or a file that does not decode. */
export class ParquetReadError extends Schema.TaggedError<ParquetReadError>()("ParquetReadError", {
  key: Schema.String,
  message: Schema.String
}) {}

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
