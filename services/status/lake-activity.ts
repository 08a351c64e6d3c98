/**
 * What the lake shows an operator beside its watermark: the dead letters (records the consumer set
 * aside, newest first, with their reason) and the newest raw objects. Read-only; used by
 * `totes status` and the console.
 *
 * Keys begin with their arrival hour (contracts/lake.ts), so a listing that starts at the hour of
 * `now − lookback` reads only recent keys. A dead letter's body holds the record itself (row
 * values): only its position and reason are taken from it, and the reason is scrubbed of quoted
 * values as a log line is. Objects never change: each body is read once per reader.
 */
import { Effect } from "effect"
import { DEAD_LETTER_PREFIX, hourListingStart } from "../../contracts/lake.ts"
import { TOTESYS_TABLES } from "../../contracts/totesys.ts"
import { listRawObjects } from "../lake/raw.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"
import { redact, scrubValues } from "../shared/logger.ts"

export interface DeadLetterSummary {
  readonly key: string
  /** When the consumer set it aside. */
  readonly at: string | null
  readonly shardId: string | null
  readonly sequenceNumber: string | null
  readonly subSequenceNumber: number | null
  readonly reason: string
}

export interface LakeObjectSummary {
  readonly key: string
  readonly size: number
  readonly lastModified: string | null
}

export interface LakeActivity {
  readonly deadLetters: {
    /** Dead letters that arrived within the lookback. */
    readonly count: number
    readonly lookbackDays: number
    /** The newest ones, newest first. */
    readonly newest: ReadonlyArray<DeadLetterSummary>
  }
  /** Raw objects written in the last hour, and the newest of them, newest first. */
  readonly rawLastHour: { readonly objects: number; readonly bytes: number }
  readonly newestRawObjects: ReadonlyArray<LakeObjectSummary>
}

export interface LakeActivityReader {
  readonly read: () => Effect.Effect<LakeActivity, LakeError>
}

export interface LakeActivityOptions {
  readonly lookbackDays?: number
  /** How many dead letters and raw objects to show. */
  readonly newest?: number
  readonly now?: () => number
}

const HOUR = 3_600_000

/** A dead letter as the consumer wrote it (services/consumer/process-batch.ts), without its data. */
export const summarizeDeadLetter = (key: string, body: string, lastModified: Date | undefined): DeadLetterSummary => {
  let parsed: Record<string, unknown> = {}
  try {
    const value: unknown = JSON.parse(body)
    if (value && typeof value === "object" && !Array.isArray(value)) parsed = value as Record<string, unknown>
  } catch {}
  const text = (name: string) => (typeof parsed[name] === "string" ? (parsed[name] as string) : null)
  const reason = text("reason")
  return {
    key,
    at: text("at") ?? lastModified?.toISOString() ?? null,
    shardId: text("shardId"),
    sequenceNumber: text("sequenceNumber"),
    subSequenceNumber: typeof parsed.subSequenceNumber === "number" ? parsed.subSequenceNumber : null,
    // Warehouse errors can quote the rejected value: scrub it, keep the table names readable.
    reason: reason === null ? "(no reason recorded)" : redact(scrubValues(reason, TOTESYS_TABLES))
  }
}

const newestFirst = <A extends { readonly key: string; readonly lastModified?: Date | undefined }>(objects: ReadonlyArray<A>) =>
  [...objects].sort((a, b) => (b.lastModified?.getTime() ?? 0) - (a.lastModified?.getTime() ?? 0) || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0))

export const makeLakeActivityReader = (lake: LakeStoreShape, options: LakeActivityOptions = {}): LakeActivityReader => {
  const lookbackDays = options.lookbackDays ?? 30
  const newest = options.newest ?? 20
  const now = options.now ?? Date.now
  const summaries = new Map<string, DeadLetterSummary>()

  const deadLetter = Effect.fnUntraced(function* (object: { key: string; lastModified: Date | undefined }) {
    const known = summaries.get(object.key)
    if (known) return known
    const summary = summarizeDeadLetter(object.key, Buffer.from(yield* lake.get(object.key)).toString("utf8"), object.lastModified)
    summaries.set(object.key, summary)
    return summary
  })

  const read = Effect.fn("LakeActivityReader.read")(function* (): Effect.fn.Return<LakeActivity, LakeError> {
    const at = now()
    const listed = yield* lake.list(DEAD_LETTER_PREFIX, hourListingStart(DEAD_LETTER_PREFIX, new Date(at - lookbackDays * 24 * HOUR)))
    const shown = newestFirst(listed).slice(0, newest)
    const deadLetters = yield* Effect.forEach(shown, deadLetter, { concurrency: 4 })
    const kept = new Set(shown.map((o) => o.key))
    for (const key of summaries.keys()) if (!kept.has(key)) summaries.delete(key)

    const raw = (yield* listRawObjects(lake, { from: new Date(at) })).filter((o) => o.lastModified === undefined || o.lastModified.getTime() >= at - HOUR)
    return {
      deadLetters: { count: listed.length, lookbackDays, newest: deadLetters },
      rawLastHour: { objects: raw.length, bytes: raw.reduce((sum, o) => sum + o.size, 0) },
      newestRawObjects: newestFirst(raw)
        .slice(0, newest)
        .map((o) => ({ key: o.key, size: o.size, lastModified: o.lastModified?.toISOString() ?? null }))
    }
  })

  return { read }
}

/** A reader that answers from its last reading while it is younger than `maxAgeMs` (for screens that refresh every second). */
export const throttledLakeActivityReader = (reader: LakeActivityReader, maxAgeMs: number, now: () => number = Date.now): LakeActivityReader => {
  let last: { at: number; activity: LakeActivity } | undefined
  return {
    read: () =>
      Effect.suspend(() =>
        last && now() - last.at < maxAgeMs ? Effect.succeed(last.activity) : Effect.tap(reader.read(), (activity) => Effect.sync(() => (last = { at: now(), activity })))
      )
  }
}
