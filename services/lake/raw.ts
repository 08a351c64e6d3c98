/**
 * Raw lake objects: gzip NDJSON, one stream record (its JSON exactly as on the stream) a line.
 *
 *   encodeRawObject(lines)            → gzip bytes to put under rawObjectKey(...)
 *   decodeRawLines(body)              → the lines of an object (multi-member gzip is fine)
 *   parseRawRecords(lines)            → validated StreamRecords and the lines that are not
 *   listRawObjects(lake, window)      → the raw objects that can hold events of a time window
 */
import { gunzipSync, gzipSync } from "node:zlib"
import { Effect, Result, Schema } from "effect"
import { decodeFailureReason, decodeStreamRecordResult, type StreamRecord } from "../../contracts/change-event.ts"
import { parseRawObjectKey, RAW_PREFIX } from "../../contracts/lake.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"

export const encodeRawObject = (lines: ReadonlyArray<string>): Uint8Array => gzipSync(`${lines.join("\n")}\n`)

/** A raw object that is not gzip NDJSON (truncated, corrupted, or not written by Firehose or the archiver). */
export class RawObjectUnreadable extends Schema.TaggedError<RawObjectUnreadable>()("RawObjectUnreadable", {
  key: Schema.String,
  message: Schema.String
}) {}

export const unreadable = (key: string, error: unknown) =>
  new RawObjectUnreadable({ key, message: `raw object ${key}: ${error instanceof Error ? error.message : String(error)}` })

/** The lines of an object; throws on a body that is not gzip (readRawLines is the Effect form). */
export const decodeRawLines = (body: Uint8Array): Array<string> =>
  gunzipSync(body)
    .toString("utf8")
    .split("\n")
    .filter((line) => line.length > 0)

export interface UndecodableLine {
  readonly line: number
  readonly reason: string
}

/** Validates every line with the contract's decoder (the consumer's); bad lines are reported, never dropped silently. */
export const parseRawRecords = (lines: ReadonlyArray<string>): { records: Array<StreamRecord>; undecodable: Array<UndecodableLine> } => {
  const records: Array<StreamRecord> = []
  const undecodable: Array<UndecodableLine> = []
  lines.forEach((text, index) => {
    const result = decodeStreamRecordResult(text)
    if (Result.isSuccess(result)) records.push(result.success)
    else undecodable.push({ line: index + 1, reason: decodeFailureReason(result.failure) })
  })
  return { records, undecodable }
}

/** The lines of the object under `key`: a body that is not gzip fails with RawObjectUnreadable, not a defect. */
export const readRawLines = (lake: LakeStoreShape, key: string): Effect.Effect<Array<string>, LakeError | RawObjectUnreadable> =>
  Effect.flatMap(lake.get(key), (body) => Effect.try({ try: () => decodeRawLines(body), catch: (error) => unreadable(key, error) }))

export const readRawObject = (lake: LakeStoreShape, key: string) => Effect.map(readRawLines(lake, key), parseRawRecords)

export interface RawObjectRef {
  readonly key: string
  readonly size: number
  readonly hour: Date
  readonly lastModified: Date | undefined
}

export interface RawWindow {
  /** Events committed at or after this time are wanted. */
  readonly from?: Date
  /** Events committed at or before this time are wanted. */
  readonly to?: Date
  /**
   * How much later than its commit an event can reach the lake (stream lag + buffering). Unbounded
   * by default: an object keyed hours after `to` may still hold events committed before it.
   */
  readonly maxDeliveryDelayMs?: number
}

const HOUR = 3_600_000
/**
 * An object's hour is the arrival time of its OLDEST record; later records of the same object
 * arrived up to one buffer interval later (Firehose: at most 15 min), and clocks may disagree a
 * little: objects keyed up to an hour before `from` are read too.
 */
const EARLY_SLACK_MS = HOUR

const hourPrefix = (at: Date) => `${RAW_PREFIX}${at.toISOString().slice(0, 13).replace(/[-T]/g, "/")}`

/** The raw objects that can hold events committed inside the window, in key (≈ time) order. */
export const listRawObjects = (lake: LakeStoreShape, window: RawWindow = {}): Effect.Effect<Array<RawObjectRef>, LakeError> =>
  Effect.gen(function* () {
    const earliest = window.from ? new Date(Math.floor((window.from.getTime() - EARLY_SLACK_MS) / HOUR) * HOUR) : undefined
    const latest =
      window.to && window.maxDeliveryDelayMs !== undefined && Number.isFinite(window.maxDeliveryDelayMs)
        ? new Date(window.to.getTime() + window.maxDeliveryDelayMs)
        : undefined
    // StartAfter "raw/YYYY/MM/DD/HH" (no slash) sorts just before every key of that hour.
    const listed = yield* lake.list(RAW_PREFIX, earliest ? hourPrefix(earliest) : undefined)
    const out: Array<RawObjectRef> = []
    for (const object of listed) {
      const parsed = parseRawObjectKey(object.key)
      if (!parsed) continue
      if (earliest && parsed.hour < earliest) continue
      if (latest && parsed.hour.getTime() > latest.getTime()) continue
      out.push({ key: object.key, size: object.size, hour: parsed.hour, lastModified: object.lastModified })
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  })
