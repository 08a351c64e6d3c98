/**
 * Durability, always in this order: Kinesis accepted every event of a position → the position is
 * written to the checkpoint (DynamoDB, conditional, never backwards) → it is confirmed to Postgres.
 * A DynamoDB outage is waited out (Kinesis publishing goes on; the source keeps the WAL).
 */
import { Effect, Schema } from "effect"
import { lsnPosition, readerCheckpointKey, type ReaderCheckpoint } from "../../contracts/checkpoint.ts"
import { kinesisBackoff } from "../shared/kinesis/publisher.ts"
import type { SessionContext } from "./context.ts"
import { OutageTracker } from "./outage.ts"
import type { SourcePosition } from "./outbox.ts"

export class CheckpointConflict extends Schema.TaggedError<CheckpointConflict>()("CheckpointConflict", {
  message: Schema.String
}) {}

/** Writes `position` as the reader's checkpoint; waits out outages; fails if another reader is ahead. */
export const writeCheckpoint = (ctx: SessionContext, position: SourcePosition, outage?: OutageTracker) =>
  Effect.gen(function* () {
    const { settings } = ctx
    const checkpoint: ReaderCheckpoint = { lsn: position.lsn, committedAt: position.committedAt, systemId: ctx.systemId, slot: settings.slot }
    const advanced = yield* settings.checkpoints.advance(readerCheckpointKey(settings.slot), lsnPosition(position.lsn), checkpoint).pipe(
      Effect.tapError((error) => Effect.sync(() => outage?.failed(error.message))),
      Effect.retry({ schedule: kinesisBackoff })
    )
    outage?.recovered()
    if (!advanced) {
      return yield* new CheckpointConflict({ message: `checkpoint for slot '${settings.slot}' is ahead of this reader: another reader is running` })
    }
    ctx.durable = position
    ctx.stats.durableLsn = position.lsn
    ctx.stats.durableCommittedAt = position.committedAt
    ctx.stream?.confirm(position.lsn)
    ctx.checkpointed.notify()
    ctx.progress({ phase: "streaming", durableLsn: position.lsn, published: ctx.stats.published })
  })

/** The checkpointer fiber: writes each newly durable position (coalesced: only the newest). */
export const checkpointer = (ctx: SessionContext) =>
  Effect.gen(function* () {
    const outage = new OutageTracker("DynamoDB", (r) => ctx.progress({ phase: "outage", ...r }))
    let next: SourcePosition | undefined
    for (;;) {
      yield* ctx.accepted.until(() => {
        next = ctx.outbox.takeDurable() ?? next
        return next !== undefined
      })
      const position = next!
      next = undefined
      yield* writeCheckpoint(ctx, position, outage)
    }
  })

/** Everything the outbox held is accepted and its last position checkpointed. */
export const caughtUp = (ctx: SessionContext) => {
  const last = ctx.outbox.lastPosition
  return ctx.outbox.empty && (!last || ctx.durable?.lsn === last.lsn)
}
