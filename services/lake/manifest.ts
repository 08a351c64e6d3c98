/**
 * Compaction manifests (`parquet/_manifests/<run>.json`): what one compaction run read and wrote.
 * A manifest is written last, so it is the run's commit: Parquet files no manifest lists (a run
 * that crashed before its manifest) are ignored by readers and their inputs compacted again.
 */
import { Effect } from "effect"
import { PARQUET_MANIFEST_PREFIX } from "../../contracts/lake.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"

export interface ManifestInput {
  readonly key: string
  readonly size: number
  readonly records: number
  readonly events: number
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
