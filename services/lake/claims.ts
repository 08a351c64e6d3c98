/**
 * Oversize events carry a claim check instead of their row images (contracts/change-event.ts):
 * the whole event is stored under claims/. Readers of the lake resolve them the way the
 * consumer does: the stored event must decode and have the same id.
 */
import { Effect, Result } from "effect"
import { decodeStreamRecord, type ChangeEvent, type StreamRecord } from "../../contracts/change-event.ts"
import { claimCheckKey } from "../../contracts/lake.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"

export const resolveClaimCheck = async (lake: LakeStoreShape, event: ChangeEvent): Promise<ChangeEvent | undefined> => {
  if (!event.claimCheck) return event
  const body = await Effect.runPromise(Effect.result(lake.get(event.claimCheck.key)))
  if (Result.isFailure(body)) return undefined
  const full = await Effect.runPromise(Effect.result(decodeStreamRecord(Buffer.from(body.success).toString("utf8"))))
  return Result.isSuccess(full) && full.success.kind === "change" && full.success.id === event.id ? full.success : undefined
}

/** Replaces every claim-checked event by the full one; the ids of those that cannot be resolved are returned. */
export const resolveClaimChecks = async (
  lake: LakeStoreShape,
  records: ReadonlyArray<StreamRecord>
): Promise<{ records: Array<StreamRecord>; unresolved: Array<string> }> => {
  const out: Array<StreamRecord> = []
  const unresolved: Array<string> = []
  for (const record of records) {
    if (record.kind !== "change" || !record.claimCheck) {
      out.push(record)
      continue
    }
    const full = await resolveClaimCheck(lake, record)
    if (full) out.push(full)
    else unresolved.push(record.id)
  }
  return { records: out, unresolved }
}

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
