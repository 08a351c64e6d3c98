/**
 * Compaction manifests (`parquet/_manifests/<run>.json`): what one compaction run read and wrote.
 * A manifest is written last, so it is the run's commit: Parquet files no manifest lists (a run
 * that crashed before its manifest) are ignored by readers and their inputs compacted again. The
 * raw keys a run read are also what places its files in a replay's order (replay/parquet-order.ts).
 */
import { Effect } from "effect"
import { PARQUET_MANIFEST_PREFIX } from "../../contracts/lake.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"

export interface ManifestInput {
  readonly key: string
  readonly size: number
  /** Lines of the object (stream records, and lines that are not). */
  readonly records: number
  /** Change events written from it (a snapshot chunk counts as its rows). */
  readonly events: number
  /** Lines that were not valid stream records (absent in manifests written before it was recorded). */
  readonly undecodable?: number
  /**
   * Ids of events compaction could not write: a claim check or snapshot chunk whose object is
   * missing or not what it should be. Replay from Parquet reports them as replay from raw does.
   * Absent in manifests written before it was recorded (such events were dropped unsaid).
   */
  readonly unresolved?: ReadonlyArray<string>
}

export interface ManifestOutput {
  readonly key: string
  readonly table: string
  readonly date: string
  readonly rows: number
  readonly bytes: number
}

export interface CompactionManifest {
  readonly version: 1
  readonly run: string
  readonly createdAt: string
  readonly window: { readonly from: string | null; readonly to: string | null }
  readonly writer: string
  readonly inputs: ReadonlyArray<ManifestInput>
  readonly outputs: ReadonlyArray<ManifestOutput>
  /** Events skipped in this run because an earlier input of the same run had the same id. */
  readonly duplicates: number
  /** Lines that were not valid stream records (left in raw/ only). */
  readonly undecodable: number
}

export const readManifests = (lake: LakeStoreShape): Effect.Effect<Array<CompactionManifest>, LakeError> =>
  Effect.gen(function* () {
    const objects = yield* lake.list(PARQUET_MANIFEST_PREFIX)
    const manifests: Array<CompactionManifest> = []
    for (const object of objects) {
      if (!object.key.endsWith(".json")) continue
      const body = yield* lake.get(object.key)
      manifests.push(JSON.parse(Buffer.from(body).toString("utf8")) as CompactionManifest)
    }
    return manifests
  })
