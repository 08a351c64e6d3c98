/**
 * Pure: where the reader starts, from what it recorded (checkpoint, snapshot progress) and what
 * the server says about the slot. A silent gap between the checkpoint and what the slot would
 * stream is refused, never papered over; `--resnapshot` is the operator's explicit way out.
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
  "Refusing to run. To start over, restart with --resnapshot (a new slot and initial snapshot) and rebuild the warehouse from that snapshot (a fresh warehouse, or totes replay --from the new snapshot's time): changes in the gap were never captured, so rows deleted in it would otherwise linger; totes verify shows what differs."

/** Why streaming from this slot would skip changes, if it would. */
export const gapOf = ({ slotName, systemId, slot, checkpoint }: StartFacts): string | undefined => {
  if (!checkpoint) return undefined
  if (checkpoint.systemId !== systemId)
    return `the checkpoint for slot '${slotName}' belongs to another database server (system id ${checkpoint.systemId}, this one is ${systemId}); refusing to mix histories`
  if (!slot)
    return `replication slot '${slotName}' is missing but the checkpoint says changes up to ${checkpoint.lsn} were captured: the slot was dropped or the server replaced, and changes after that position may be lost`
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
  if (gap && !facts.resnapshot) return { _tag: "Refuse", reason: `${gap}. ${RESNAPSHOT_ADVICE}` }
  if (gap) return { _tag: "Snapshot", dropExisting: Boolean(slot), reason: `--resnapshot: ${gap}; starting over with a new slot and initial snapshot` }
  if (!slot) return { _tag: "Snapshot", dropExisting: false, reason: undefined }
  if (!checkpoint && !snapshot)
    // Created by a reader that died before recording anything: nothing was acknowledged.
    return { _tag: "Snapshot", dropExisting: true, reason: `slot '${slotName}' has no checkpoint: recreating it with a fresh snapshot` }
  if (snapshot && !snapshot.complete) return { _tag: "ResumeSnapshot", state: snapshot }
  if (!checkpoint) return { _tag: "Refuse", reason: `slot '${slotName}' exists but no checkpoint was recorded after its snapshot` }
  return { _tag: "Stream", from: checkpoint.lsn, committedAt: checkpoint.committedAt }
}
