/**
 * What a replay remembers in DynamoDB (`replay#<name>`), and which lake objects it can skip on resume.
 *
 * Units are applied in key order: raw objects by their keys (which sort by time); from Parquet,
 * units keyed by the raw objects their compaction run read (services/replay/parquet-order.ts,
 * where a unit's key is the largest of its members' own keys). The checkpoint says: every object
 * with key ≤ `appliedThrough` that was already in the lake when the run listed it (`listedAt`) has
 * been applied. Its position is `appliedThrough` itself, so the conditional write keeps it
 * monotonic. An object that appeared later with an older key (a late Firehose delivery, a Parquet
 * file of a later compaction run) is not covered and is applied on resume; so is anything written
 * within LISTING_MARGIN_MS of the listing (an upload in flight while listing), because applying an
 * object twice changes nothing.
 */
import type { RawObjectRef } from "../lake/raw.ts"

/** How a run writes the target: bulk (COPY and set-based, into an empty target) or row by row (applyRecords). */
export type ReplayMode = "bulk" | "row-by-row"

/** A position in the source: commit LSN and commit time. */
export interface CommitPosition {
  readonly lsn: string
  readonly committedAt: string
}

export interface ReplayCheckpoint {
  readonly version: 1
  /** The options the run was started with: a resume with other options is refused. */
  readonly fingerprint: string
  readonly appliedThrough: string
  readonly listedAt: string
  readonly objects: number
  readonly events: number
  readonly startedAt: string
  readonly updatedAt: string
  /**
   * The lake watermark when the run started (null: the lake held no heartbeat). A resumed run keeps
   * it, so it rebuilds up to the same position as the run it continues. Absent in older checkpoints.
   */
  readonly lakeWatermark?: CommitPosition | null
  /** The newest change applied so far (commit order). */
  readonly newestApplied?: CommitPosition
  /** How the run writes; a resumed run keeps it (absent in older checkpoints: row by row). */
  readonly mode?: ReplayMode
}

/** Longer than any single object upload takes (Firehose objects are at most 128 MiB). */
export const LISTING_MARGIN_MS = 5 * 60_000

/** The objects still to apply, in key order. */
export const pendingObjects = (
  listing: ReadonlyArray<Pick<RawObjectRef, "key" | "lastModified">>,
  checkpoint: ReplayCheckpoint | undefined,
  marginMs = LISTING_MARGIN_MS
): Array<Pick<RawObjectRef, "key" | "lastModified">> => {
  const sorted = [...listing].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  if (!checkpoint || checkpoint.appliedThrough === "") return sorted
  const coveredUntil = Date.parse(checkpoint.listedAt) - marginMs
  return sorted.filter((o) => !(o.key <= checkpoint.appliedThrough && o.lastModified !== undefined && o.lastModified.getTime() < coveredUntil))
}

/**
 * The checkpoint after every pending object up to and including `key` has been applied, or
 * undefined when nothing can be claimed yet: while the run is still re-applying objects older than
 * the stored `appliedThrough`, the stored (older) listing time must stay.
 */
export const advanceCheckpoint = (
  current: ReplayCheckpoint,
  key: string,
  listedAt: string,
  totals: { readonly objects: number; readonly events: number; readonly newestApplied?: CommitPosition }
): ReplayCheckpoint | undefined => {
  if (key < current.appliedThrough) return undefined
  return {
    ...current,
    appliedThrough: key,
    listedAt,
    objects: totals.objects,
    events: totals.events,
    ...(totals.newestApplied ? { newestApplied: totals.newestApplied } : {}),
    updatedAt: new Date().toISOString()
  }
}
