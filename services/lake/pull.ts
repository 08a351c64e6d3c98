/**
 * Copies lake objects under a prefix into a local folder, keeping their keys as paths
 * (`<dir>/parquet/sales_order/date=2024-02-26/<uuid>.parquet`), so that tools without S3 access
 * (DuckDB here: its httpfs extension cannot be installed offline) read the same files Athena
 * reads in AWS.
 *
 *   const report = yield* pullLake(lake, { prefix: "parquet/", dir: ".totes/lake" })
 *
 * Lake objects are written once and never changed, so a file already present with the object's
 * size is skipped: pulling again fetches only what is new. Each file is written under a
 * temporary name and renamed, so a reader never sees half a file.
 */
import { randomUUID } from "node:crypto"
import { mkdirSync, renameSync, statSync, writeFileSync } from "node:fs"
import { dirname, join, resolve, sep } from "node:path"
import { Effect } from "effect"
import type { LakeStoreShape } from "../shared/lake-store.ts"

export interface PullOptions {
  readonly prefix: string
  readonly dir: string
  readonly concurrency?: number
}

export interface PullReport {
  readonly dir: string
  readonly listed: number
  readonly downloaded: number
  /** Already present with the same size. */
  readonly skipped: number
  readonly bytes: number
}

/** The local path of a key, refusing keys that would leave the folder (`..`, absolute). */
export const localPath = (dir: string, key: string): string => {
  const root = resolve(dir)
  const path = resolve(root, key)
  if (key.split("/").includes("..") || !path.startsWith(root + sep)) throw new Error(`lake key ${JSON.stringify(key)} does not stay inside ${root}`)
  return path
}

const sizeOnDisk = (path: string): number | undefined => statSync(path, { throwIfNoEntry: false })?.size

export const pullLake = Effect.fn("pullLake")(function* (lake: LakeStoreShape, options: PullOptions) {
  const dir = resolve(options.dir)
  const objects = yield* lake.list(options.prefix)
  const wanted = objects.filter((object) => !object.key.endsWith("/") && sizeOnDisk(localPath(dir, object.key)) !== object.size)
  yield* Effect.forEach(
    wanted,
    (object) =>
      Effect.map(lake.get(object.key), (body) => {
        const path = localPath(dir, object.key)
        mkdirSync(dirname(path), { recursive: true })
        const temporary = join(dirname(path), `.${randomUUID()}.part`)
        writeFileSync(temporary, body)
        renameSync(temporary, path)
      }),
    { concurrency: options.concurrency ?? 8, discard: true }
  )
  return {
    dir,
    listed: objects.length,
    downloaded: wanted.length,
    skipped: objects.length - wanted.length,
    bytes: wanted.reduce((sum, object) => sum + object.size, 0)
  } satisfies PullReport
})
