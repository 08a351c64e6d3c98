/**
 * Change event → Kinesis record. A record over the 1 MiB limit is never dropped or cut: its
 * full event goes to the lake under claims/ and the stream carries the event without row
 * images plus a pointer (claim check) that consumers resolve.
 */
import { Effect } from "effect"
import type { ChangeEvent, Heartbeat } from "../../contracts/change-event.ts"
import { claimCheckKey } from "../../contracts/lake.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"
import { partitionKeyFor } from "../shared/kinesis-publisher.ts"
import { MAX_RECORD_BYTES, type PendingRecord } from "./put-records-plan.ts"

/** Leaves room for the partition key and encoding slack under Kinesis' 1 MiB. */
export const CLAIM_CHECK_THRESHOLD = MAX_RECORD_BYTES - 4 * 1024

/** The record, or undefined when the event is too large for one (then see encodeChangeEvent). */
export const encodeSmallChangeEvent = (event: ChangeEvent): PendingRecord | undefined => {
  const data = Buffer.from(JSON.stringify(event))
  return data.byteLength <= CLAIM_CHECK_THRESHOLD ? { partitionKey: partitionKeyFor(event.source.table, event.key), data } : undefined
}

export const encodeChangeEvent = (event: ChangeEvent, lake: LakeStoreShape | undefined): Effect.Effect<PendingRecord, LakeError> => {
  const small = encodeSmallChangeEvent(event)
  if (small) return Effect.succeed(small)
  const partitionKey = partitionKeyFor(event.source.table, event.key)
  const data = Buffer.from(JSON.stringify(event))
  if (!lake) return Effect.die(new Error(`event ${event.id} is ${data.byteLength} bytes and no lake is configured for claim checks`))
  const key = claimCheckKey(event.source.commitLsn, event.id)
  return lake.putNew(key, data, "application/json").pipe(
    Effect.map(() => {
      const stub: ChangeEvent = { ...event, before: null, after: null, key: event.key, claimCheck: { bucket: lake.bucket, key, bytes: data.byteLength } }
      return { partitionKey, data: Buffer.from(JSON.stringify(stub)) }
    })
  )
}

export const encodeHeartbeat = (heartbeat: Heartbeat, explicitHashKey: string): PendingRecord => ({
  partitionKey: "heartbeat",
  explicitHashKey,
  data: Buffer.from(JSON.stringify(heartbeat))
})
