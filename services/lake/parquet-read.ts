/**
 * Reading the compacted lake: which raw objects are compacted, which Parquet files are committed
 * (listed by a manifest) for a window, and a file's change events.
 */
import { Effect } from "effect"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"
import { readManifests, type ManifestOutput } from "./manifest.ts"
import { decodeEvents } from "./parquet-events.ts"
import { readParquetFile } from "./parquet-file-reader.ts"

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

/** Raw object keys some committed compaction run has read. */
export const listCompactedInputs = async (lake: LakeStoreShape): Promise<Set<string>> =>
  new Set((await run(readManifests(lake))).flatMap((m) => m.inputs.map((input) => input.key)))

export interface ParquetObjectRef extends ManifestOutput {
  readonly size: number
  readonly lastModified: Date | undefined
}

/**
 * Committed Parquet files whose day can hold events of the window (files are partitioned by the
 * UTC day of the commit time), of the chosen tables.
 */
export const listParquetObjects = async (
  lake: LakeStoreShape,
  window: { readonly from?: Date; readonly to?: Date; readonly tables?: ReadonlyArray<string> } = {}
): Promise<Array<ParquetObjectRef>> => {
  const manifests = await run(readManifests(lake))
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
}

/** The change events stored in one compacted file (the table is in its key). */
export const readParquetEvents = async (lake: LakeStoreShape, key: string): Promise<Array<ChangeEvent>> => {
  const table = /^parquet\/([^/]+)\/date=/.exec(key)?.[1]
  if (!table) throw new Error(`not a compacted Parquet key: ${key}`)
  const body = await run(lake.get(key))
  return decodeEvents(table, readParquetFile(body))
}
