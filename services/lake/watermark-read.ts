/**
 * Reads the lake watermark from the raw objects themselves (watermark.ts folds what they hold).
 *
 *   const lakeWatermarks = makeLakeWatermarkReader(lake)
 *   const { watermark } = yield* lakeWatermarks.read()                 // or Effect.runPromise(...)
 *   const later = yield* lakeWatermarks.changesBetween(since, fromLsn, belowLsn)
 *
 * Cheap enough to call every second: only the objects written since shortly before the newest
 * heartbeat's retirement horizon are read (an object cannot hold a heartbeat emitted after it was
 * written), newest first; objects never change, so each one is read once per reader and its
 * summary kept while it stays inside that window. No index is written anywhere: the objects are
 * the only source of truth.
 *
 * Listing assumes an object's key hour (the arrival of its oldest record) is at most
 * `listingSlackMs` (default 6 hours) before it was written: longer only for an archiver catching up
 * a backlog of hours. A lake without any heartbeat in the
 * last `maxLookbackMs` (default 35 days, before lifecycle rules move objects to Glacier) has no
 * watermark.
 */
import { Effect } from "effect"
import { lsnToBigInt } from "../../contracts/lsn.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"
import { listRawObjects, readRawLines, type RawObjectRef } from "./raw.ts"
import {
  changePositionsOf,
  countInRange,
  foldHeartbeats,
  heartbeatsOf,
  lakeWatermark,
  newestEmission,
  SHARD_RETIREMENT_MS,
  type LakeWatermark,
  type NewestByShard
} from "./watermark.ts"

export interface LakeWatermarkReaderOptions {
  readonly retirementMs?: number
  /** How far clocks (reader, Kinesis, S3) may disagree. Default 2 minutes. */
  readonly clockSkewMs?: number
  readonly listingSlackMs?: number
  readonly maxLookbackMs?: number
  readonly now?: () => number
}

export interface LakeWatermarkReading {
  readonly watermark: LakeWatermark | null
  /** Raw objects listed, and read from the lake by this call (the others came from the cache). */
  readonly objectsListed: number
  readonly objectsRead: number
}

export interface LaterChanges {
  /** Change events in the lake with a commit position in [from, below). */
  readonly count: number
  readonly objectsRead: number
}

export interface LakeWatermarkReader {
  readonly read: () => Effect.Effect<LakeWatermarkReading, LakeError>
  /** Counts the lake's changes committed in [fromLsn, belowLsn), looking at objects written since `since`. */
  readonly changesBetween: (since: Date, fromLsn: string, belowLsn: string) => Effect.Effect<LaterChanges, LakeError>
}

const HOUR = 3_600_000
const DAY = 24 * HOUR

export const makeLakeWatermarkReader = (lake: LakeStoreShape, options: LakeWatermarkReaderOptions = {}): LakeWatermarkReader => {
  const retirement = options.retirementMs ?? SHARD_RETIREMENT_MS
  const skew = options.clockSkewMs ?? 120_000
  const slack = options.listingSlackMs ?? 6 * HOUR
  const maxLookback = options.maxLookbackMs ?? 35 * DAY
  const now = options.now ?? Date.now
  /** What each object read so far holds (objects never change). */
  const cache = new Map<string, { heartbeats?: NewestByShard; changes?: BigUint64Array }>()
  let fetched = 0

  /** Objects whose hour key allows them to have been written at or after `writtenSince`, newest first. */
  const listWrittenSince = (writtenSince: number) =>
    Effect.map(listRawObjects(lake, { from: new Date(writtenSince - slack) }), (objects) =>
      objects.sort((a, b) => written(b) - written(a))
    )

  const summary = Effect.fnUntraced(function* (object: RawObjectRef, part: "heartbeats" | "changes") {
    const entry = cache.get(object.key) ?? {}
    if (entry[part] === undefined) {
      // An object that is not gzip holds no heartbeat anyone can read: counted as empty, and said
      // once (objects never change); compaction and replay refuse it by name.
      const lines = yield* readRawLines(lake, object.key).pipe(
        Effect.catchTag("RawObjectUnreadable", (error) =>
          Effect.as(Effect.logWarning("the lake watermark skipped an unreadable raw object").pipe(Effect.annotateLogs({ component: "lake", objectKey: object.key, reason: error.message })), [])
        )
      )
      fetched++
      entry.heartbeats ??= heartbeatsOf(lines)
      if (part === "changes") entry.changes = changePositionsOf(lines)
      cache.set(object.key, entry)
    }
    return entry
  })

  /** Folds the heartbeats of every object written since `cutoff(newest emission so far)`; undefined cutoff reads on. */
  const scan = Effect.fnUntraced(function* (objects: ReadonlyArray<RawObjectRef>) {
    let newest: NewestByShard = new Map()
    const kept = new Set<string>()
    for (const object of objects) {
      const latest = newestEmission(newest)
      if (latest !== undefined && written(object) < latest - retirement - skew) break
      const found = yield* summary(object, "heartbeats")
      kept.add(object.key)
      newest = foldHeartbeats(newest, found.heartbeats!.values())
    }
    return { newest, kept }
  })

  const read = Effect.fn("LakeWatermarkReader.read")(function* (): Effect.fn.Return<LakeWatermarkReading, LakeError> {
    const start = fetched
    const at = now()
    // Listing horizon: first the last hour before the retirement window; further back only when the lake is stale.
    let horizon = at - retirement - skew - HOUR
    for (;;) {
      const objects = yield* listWrittenSince(horizon)
      const { newest, kept } = yield* scan(objects)
      const latest = newestEmission(newest)
      const complete = latest !== undefined && latest - retirement - skew >= horizon
      if (complete || at - horizon >= maxLookback) {
        for (const key of cache.keys()) if (!kept.has(key)) cache.delete(key)
        return { watermark: lakeWatermark(newest, { retirementMs: retirement }), objectsListed: objects.length, objectsRead: fetched - start }
      }
      horizon = latest !== undefined ? latest - retirement - skew : Math.max(at - maxLookback, horizon - 2 * (at - horizon))
    }
  })

  const changesBetween = Effect.fn("LakeWatermarkReader.changesBetween")(function* (
    since: Date,
    fromLsn: string,
    belowLsn: string
  ): Effect.fn.Return<LaterChanges, LakeError> {
    const start = fetched
    const from = lsnToBigInt(fromLsn)
    const below = lsnToBigInt(belowLsn)
    let count = 0
    for (const object of yield* listWrittenSince(since.getTime() - skew)) {
      if (written(object) < since.getTime() - skew) break
      count += countInRange((yield* summary(object, "changes")).changes!, from, below)
    }
    return { count, objectsRead: fetched - start }
  })

  return { read, changesBetween }
}

/** A reader that answers `read` from its last reading while it is younger than `maxAgeMs` (for screens that refresh every second). */
export const throttledLakeWatermarkReader = (reader: LakeWatermarkReader, maxAgeMs: number, now: () => number = Date.now): LakeWatermarkReader => {
  let last: { at: number; reading: LakeWatermarkReading } | undefined
  return {
    read: () =>
      Effect.suspend(() =>
        last && now() - last.at < maxAgeMs
          ? Effect.succeed(last.reading)
          : Effect.tap(reader.read(), (reading) => Effect.sync(() => (last = { at: now(), reading })))
      ),
    changesBetween: reader.changesBetween
  }
}

/** When an object was written; unknown counts as now (it must be read). */
const written = (object: RawObjectRef) => object.lastModified?.getTime() ?? Number.POSITIVE_INFINITY
