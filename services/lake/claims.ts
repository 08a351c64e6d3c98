/**
 * Oversize events carry a claim check instead of their row images (contracts/change-event.ts):
 * the whole event is stored under claims/. Every reader resolves them here, the consumer and the
 * lake's readers alike: the stored event must decode and have the same id. "Not there" (or not
 * that event) and "the lake cannot be read now" are different answers: the first isolates one
 * event, the second means wait and retry, never skip.
 */
import { Effect, Result, Schema } from "effect"
import { decodeStreamRecord, type ChangeEvent, type StreamRecord } from "../../contracts/change-event.ts"
import { claimCheckKey } from "../../contracts/lake.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"

/** The claim check's object is not in the lake, or does not hold the event it stands for. */
export class ClaimCheckMissing extends Schema.TaggedError<ClaimCheckMissing>()("ClaimCheckMissing", {
  key: Schema.String,
  message: Schema.String
}) {}

/** Whether a lake failure says the object does not exist (rather than that the lake is unreachable). */
export const isMissingObject = (error: LakeError): boolean => /NoSuchKey|NotFound/.test(error.message)

/** The full event behind `event`'s claim check (`event` itself when it has none). */
export const fetchClaimedEvent = (lake: LakeStoreShape, event: ChangeEvent): Effect.Effect<ChangeEvent, ClaimCheckMissing | LakeError> => {
  if (!event.claimCheck) return Effect.succeed(event)
  const { key } = event.claimCheck
  const missing = (why: string) => new ClaimCheckMissing({ key, message: `claim check ${key} ${why}` })
  return lake.get(key).pipe(
    Effect.mapError((error) => (isMissingObject(error) ? missing("is missing from the lake") : error)),
    Effect.flatMap((body) => decodeStreamRecord(Buffer.from(body).toString("utf8")).pipe(Effect.mapError(() => missing("does not hold a decodable event")))),
    Effect.flatMap((full) => (full.kind === "change" && full.id === event.id ? Effect.succeed(full) : Effect.fail(missing(`holds another event than ${event.id}`))))
  )
}

/**
 * Replaces every claim-checked event by the full one; the ids of those whose object is missing
 * are returned. A lake that cannot be read fails (the caller retries or stops: nothing is skipped).
 */
export const resolveClaimChecks = Effect.fn("resolveClaimChecks")(function* (
  lake: LakeStoreShape,
  records: ReadonlyArray<StreamRecord>
): Effect.fn.Return<{ records: Array<StreamRecord>; unresolved: Array<string> }, LakeError> {
  const out: Array<StreamRecord> = []
  const unresolved: Array<string> = []
  for (const record of records) {
    if (record.kind !== "change" || !record.claimCheck) {
      out.push(record)
      continue
    }
    const full = yield* Effect.result(fetchClaimedEvent(lake, record))
    if (Result.isSuccess(full)) out.push(full.success)
    else if (full.failure._tag === "ClaimCheckMissing") unresolved.push(record.id)
    else return yield* full.failure
  }
  return { records: out, unresolved }
})

/**
 * Producer side: stores an event too large for a stream record under claims/ and returns the
 * stub that travels instead (the event without row images, pointing at the stored one).
 */
export const storeClaimCheck = (lake: LakeStoreShape, event: ChangeEvent, encoded: Uint8Array): Effect.Effect<ChangeEvent, LakeError> => {
  const key = claimCheckKey(event.source.commitLsn, event.id)
  return lake.putNew(key, encoded, "application/json").pipe(
    Effect.as<ChangeEvent>({ ...event, before: null, after: null, claimCheck: { bucket: lake.bucket, key, bytes: encoded.byteLength } })
  )
}
