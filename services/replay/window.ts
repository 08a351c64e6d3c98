/**
 * The replay window: `--from` / `--to` as a commit TIME or a commit LSN, and the event filter.
 * Bounds are inclusive; `to` is time travel: only events committed at or before it. Without `to`,
 * a replay stops before the lake watermark (`below`, exclusive): the lake holds every change
 * committed before it, and not necessarily the ones after.
 */
import type { ChangeEvent, StreamRecord } from "../../contracts/change-event.ts"
import { isLsn, lsnToBigInt, normalizeLsn } from "../../contracts/lsn.ts"

export type Bound = { readonly kind: "time"; readonly at: Date } | { readonly kind: "lsn"; readonly lsn: string }

/** `0/16B3748` is an LSN; anything else must be an ISO time (a bare date or time without zone means UTC). */
export const parseBound = (text: string): Bound => {
  const trimmed = text.trim()
  if (isLsn(trimmed)) return { kind: "lsn", lsn: normalizeLsn(trimmed) }
  const iso = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$/.test(trimmed) ? `${trimmed}${trimmed.length === 10 ? "T00:00:00" : ""}Z` : trimmed
  const at = new Date(iso)
  if (Number.isNaN(at.getTime())) throw new Error(`not a time or an LSN: ${JSON.stringify(text)} (e.g. 2024-02-23T12:00:00Z or 0/16B3748)`)
  return { kind: "time", at }
}

export const boundText = (bound: Bound | undefined): string | null =>
  bound === undefined ? null : bound.kind === "lsn" ? bound.lsn : bound.at.toISOString()

/**
 * Microseconds since the epoch of an ISO UTC time with up to 6 fractional digits: commit times
 * carry microseconds and a JS Date would round them to milliseconds.
 */
export const isoMicros = (text: string): number => {
  const match = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})$/.exec(text)
  if (!match) return Date.parse(text) * 1000
  const seconds = Date.parse(`${match[1]}${match[3]}`)
  const fraction = (match[2] ?? "").padEnd(6, "0").slice(0, 6)
  return seconds * 1000 + Number(fraction)
}

const afterOrAt = (event: ChangeEvent, bound: Bound) =>
  bound.kind === "lsn" ? lsnToBigInt(event.source.commitLsn) >= lsnToBigInt(bound.lsn) : isoMicros(event.source.committedAt) >= bound.at.getTime() * 1000

const beforeOrAt = (event: ChangeEvent, bound: Bound) =>
  bound.kind === "lsn" ? lsnToBigInt(event.source.commitLsn) <= lsnToBigInt(bound.lsn) : isoMicros(event.source.committedAt) <= bound.at.getTime() * 1000

export interface EventFilter {
  readonly from?: Bound
  readonly to?: Bound
  /** Source tables to keep; all when absent. */
  readonly tables?: ReadonlyArray<string>
}

/**
 * Commit times come from the source's clock, a heartbeat's time on an idle source from the
 * reader's: a time bound counts as covered only this much before the watermark's time.
 */
export const COMMIT_CLOCK_MARGIN_MS = 1_000

/** Whether a lake complete before `watermark` holds every change a `to` bound selects. */
export const watermarkCovers = (watermark: { readonly lsn: string; readonly committedAt: string }, bound: Bound): boolean =>
  bound.kind === "lsn"
    ? lsnToBigInt(bound.lsn) < lsnToBigInt(watermark.lsn)
    : bound.at.getTime() * 1000 < isoMicros(watermark.committedAt) - COMMIT_CLOCK_MARGIN_MS * 1000

/** Splits events at a watermark: those committed before it, and how many come at or after it. */
export const beforeWatermark = (events: ReadonlyArray<ChangeEvent>, watermarkLsn: string | undefined): { before: Array<ChangeEvent>; later: number } => {
  if (watermarkLsn === undefined) return { before: [...events], later: 0 }
  const limit = lsnToBigInt(watermarkLsn)
  // A transaction's events share their LSN text: compare each text once.
  let text = ""
  let below = false
  const before = events.filter((event) => {
    if (event.source.commitLsn !== text) {
      text = event.source.commitLsn
      below = lsnToBigInt(text) < limit
    }
    return below
  })
  return { before, later: events.length - before.length }
}

/**
 * The change events a replay applies: inside the window and of the chosen tables. Heartbeats are
 * left out: they only move a shard's freshness position, and a replay applies no shard.
 */
export const selectEvents = (records: ReadonlyArray<StreamRecord>, filter: EventFilter): Array<ChangeEvent> => {
  const tables = filter.tables && filter.tables.length > 0 ? new Set(filter.tables) : undefined
  const out: Array<ChangeEvent> = []
  for (const record of records) {
    if (record.kind !== "change") continue
    if (tables && !tables.has(record.source.table)) continue
    if (filter.from && !afterOrAt(record, filter.from)) continue
    if (filter.to && !beforeOrAt(record, filter.to)) continue
    out.push(record)
  }
  return out
}

/** The time part of a window, for choosing lake objects by their hour prefix (LSN bounds cannot). */
export const timeWindow = (filter: EventFilter): { from?: Date; to?: Date } => ({
  ...(filter.from?.kind === "time" ? { from: filter.from.at } : {}),
  ...(filter.to?.kind === "time" ? { to: filter.to.at } : {})
})
