/**
 * The lake-watermark Lambda, run every minute by a schedule (infra/lake-watermark.ts): computes the
 * lake watermark from the raw objects and emits LakeWatermarkAgeSeconds, which the
 * `firehose-freshness` alarm watches. Its reader lives as long as the warm container, so an
 * invocation reads only the objects delivered since the previous one. It reads raw/ and writes
 * nothing.
 */
import { Effect } from "effect"
import { s3Client } from "../shared/aws-clients.ts"
import { LakeBucket, readConfig } from "../shared/config.ts"
import { makeLakeStore, type LakeError } from "../shared/lake-store.ts"
import { loggerLayer } from "../shared/logger.ts"
import { metrics } from "../shared/metrics.ts"
import { makeLakeWatermarkReader, type LakeWatermarkReader } from "./watermark-read.ts"

export interface LakeWatermarkReport {
  readonly lsn: string | null
  readonly committedAt: string | null
  readonly ageSeconds: number | null
  readonly objectsRead: number
}

/** Reads the watermark and emits its age (nothing when the lake holds no heartbeat: the alarm treats silence as breaching). */
export const publishLakeWatermark = Effect.fn("publishLakeWatermark")(function* (reader: LakeWatermarkReader, now = Date.now()): Effect.fn.Return<LakeWatermarkReport, LakeError> {
  const { watermark, objectsRead } = yield* reader.read()
  if (!watermark) {
    yield* Effect.logWarning("the lake holds no heartbeat: no watermark").pipe(Effect.annotateLogs({ component: "lake", objects: objectsRead }))
    return { lsn: null, committedAt: null, ageSeconds: null, objectsRead }
  }
  const ageSeconds = Math.max(0, (now - Date.parse(watermark.committedAt)) / 1000)
  metrics.emit("lake", { LakeWatermarkAgeSeconds: ageSeconds })
  yield* Effect.logInfo("lake watermark").pipe(
    Effect.annotateLogs({ component: "lake", lsn: watermark.lsn, ageSeconds, shardCount: watermark.shards.filter((s) => s.counted).length, objects: objectsRead })
  )
  return { lsn: watermark.lsn, committedAt: watermark.committedAt, ageSeconds, objectsRead }
})

let reader: LakeWatermarkReader | undefined
const logging = loggerLayer()

/** The Lambda's entry: the one place this function leaves Effect. */
export const handler = async (): Promise<LakeWatermarkReport> => {
  reader ??= makeLakeWatermarkReader(makeLakeStore(readConfig(LakeBucket), s3Client()))
  return Effect.runPromise(publishLakeWatermark(reader).pipe(Effect.provide(logging)))
}
