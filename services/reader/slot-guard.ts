/**
 * Pure: where the reader starts, from what it recorded (checkpoint, snapshot progress) and what
 * the server says about the slot. A silent gap between the checkpoint and what the slot would
 * stream is refused, never papered over; `--resnapshot` is the operator's explicit way out.
 * A slot the server invalidated (wal_status `lost`: WAL removed past max_slot_wal_keep_size,
 * PostgreSQL 18's idle_replication_slot_timeout, …) is such a gap, explained with its cause.
 */
import type { ReaderCheckpoint, SnapshotState } from "../../contracts/checkpoint.ts"
import { lsnToBigInt } from "../../contracts/lsn.ts"
import type { SlotInfo } from "./source-admin.ts"

export type StartDecision =
  /** The slot is usable and the checkpoint is its confirmed position: stream from there. */
  | { readonly _tag: "Stream"; readonly from: string; readonly committedAt: string }
  /** A snapshot was interrupted: read the tables it did not finish, then stream. */
  | { readonly _tag: "ResumeSnapshot"; readonly state: SnapshotState }
  /** No usable slot: (drop it and) create a new one with an initial snapshot. */
  | { readonly _tag: "Snapshot"; readonly dropExisting: boolean; readonly reason: string | undefined }
  | { readonly _tag: "Refuse"; readonly reason: string }

export interface StartFacts {
  readonly slotName: string
  readonly systemId: string
  readonly slot: SlotInfo | undefined
  readonly checkpoint: ReaderCheckpoint | undefined
  readonly snapshot: SnapshotState | undefined
  readonly resnapshot: boolean
}

const RESNAPSHOT_ADVICE =
  "Refusing to run. To start over, restart with --resnapshot (a new slot and initial snapshot), then rebuild the warehouse from that snapshot (a fresh warehouse, or totes replay --from the new snapshot's time) or repair the tables online with totes resnapshot --tables <tables>: changes in the gap were never captured, so rows deleted in it would otherwise linger; totes verify shows what differs."

const INVALIDATED_ADVICE =
  "Refusing to run: the server no longer streams from this slot. Repair: restart the reader with --resnapshot (it drops the slot, creates a new one and publishes a new initial snapshot), then rebuild the warehouse from that snapshot (a fresh warehouse, or totes replay --from the new snapshot's time) or repair the tables online with totes resnapshot --tables <tables>: rows deleted while the slot was lost were never captured and linger otherwise; totes verify shows what differs. Against a repeat: keep the reader running, act on the slot-wal-headroom and retained-wal alarms, or raise max_slot_wal_keep_size / idle_replication_slot_timeout."

const INVALIDATION_CAUSES: Readonly<Record<string, string>> = {
  wal_removed: "it needed WAL beyond max_slot_wal_keep_size, and the server removed that WAL while the reader was down or behind",
  idle_timeout: "it was unused for longer than idle_replication_slot_timeout while the reader was down",
  rows_removed: "catalog rows it needed were vacuumed away (on a standby: the primary removed them; a physical slot with hot_standby_feedback = on prevents it)",
  wal_level_insufficient: "wal_level on the primary was lowered below logical"
}

/** How the server invalidated the slot, if it did (wal_status `lost`; the reason on PostgreSQL 17+). */
export const invalidationOf = (slot: SlotInfo | undefined): string | undefined => {
  if (!slot || (slot.walStatus !== "lost" && !slot.invalidationReason)) return undefined
  const reason = slot.invalidationReason ?? "wal_status lost"
  const cause = INVALIDATION_CAUSES[slot.invalidationReason ?? "wal_removed"]
  return `was invalidated by the server (${reason})${cause ? `: ${cause}` : ""}`
}

/** Why streaming from this slot would skip changes, if it would. */
export const gapOf = ({ slotName, systemId, slot, checkpoint }: StartFacts): string | undefined => {
  if (!checkpoint) return undefined
  if (checkpoint.systemId !== systemId)
    return `the checkpoint for slot '${slotName}' belongs to another database server (system id ${checkpoint.systemId}, this one is ${systemId}); refusing to mix histories`
  if (!slot)
    return `replication slot '${slotName}' is missing but the checkpoint says changes up to ${checkpoint.lsn} were captured: the slot was dropped or the server replaced, and changes after that position may be lost`
  const invalidated = invalidationOf(slot)
  if (invalidated) return `replication slot '${slotName}' ${invalidated}; changes after the reader's checkpoint (${checkpoint.lsn}) can no longer be read from it`
  // We acknowledge `lsn`, which the server records as lsn + 1; anything further was moved by someone else.
  if (slot.confirmedFlushLsn && lsnToBigInt(slot.confirmedFlushLsn) > lsnToBigInt(checkpoint.lsn) + 1n)
    return `replication slot '${slotName}' was moved past the reader's checkpoint (slot confirmed ${slot.confirmedFlushLsn}, checkpoint ${checkpoint.lsn}): changes in between were never published`
  return undefined
}

export const decideStart = (facts: StartFacts): StartDecision => {
  const { slotName, slot, checkpoint, snapshot } = facts
  if (slot?.activePid) return { _tag: "Refuse", reason: `slot '${slotName}' is in use by backend pid ${slot.activePid}` }
  if (slot && slot.plugin !== "pgoutput") return { _tag: "Refuse", reason: `slot '${slotName}' uses plugin ${slot.plugin}, not pgoutput` }
  const gap = gapOf(facts)
  const lost = checkpoint?.systemId === facts.systemId && invalidationOf(slot) !== undefined
  if (gap && !facts.resnapshot) return { _tag: "Refuse", reason: `${gap}. ${lost ? INVALIDATED_ADVICE : RESNAPSHOT_ADVICE}` }
  if (gap) return { _tag: "Snapshot", dropExisting: Boolean(slot), reason: `--resnapshot: ${gap}; starting over with a new slot and initial snapshot` }
  if (!slot) return { _tag: "Snapshot", dropExisting: false, reason: undefined }
  const invalidated = invalidationOf(slot)
  // Nothing was streamed from it yet (no checkpoint): like a missing slot, the snapshot starts again.
  if (invalidated) return { _tag: "Snapshot", dropExisting: true, reason: `slot '${slotName}' ${invalidated} before anything was streamed from it: recreating it with a fresh snapshot` }
  if (!checkpoint && !snapshot)
    // Created by a reader that died before recording anything: nothing was acknowledged.
    return { _tag: "Snapshot", dropExisting: true, reason: `slot '${slotName}' has no checkpoint: recreating it with a fresh snapshot` }
  if (snapshot && !snapshot.complete) return { _tag: "ResumeSnapshot", state: snapshot }
  if (!checkpoint) return { _tag: "Refuse", reason: `slot '${slotName}' exists but no checkpoint was recorded after its snapshot` }
  return { _tag: "Stream", from: checkpoint.lsn, committedAt: checkpoint.committedAt }
}
