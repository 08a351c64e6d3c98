/**
 * The consumer core, one for the Lambda and its local stand-in (the poller): one Kinesis batch
 * (the Lambda event shape) → the warehouse.
 *
 *  - every Kinesis record is deaggregated (KPL format) into its user records: the unit of work;
 *  - a unit that cannot be decoded goes to the lake's dead-letter prefix with the reason and is
 *    counted; it never stops the shard (a corrupt aggregate is set aside whole);
 *  - claim checks (oversize events) are resolved from the lake before projection; while the lake
 *    cannot answer, the batch is retried later, nothing skipped;
 *  - an initial-snapshot chunk (a pointer to rows in the lake) is merged set-wise before the rest
 *    of its transaction (snapshot-chunks.ts); a lake that cannot answer retries the batch later;
 *  - the units are applied in warehouse transactions of up to `maxEventsPerTransaction` (an
 *    aggregated record carries a thousand events or more), in order; a transient failure (connection lost,
 *    server restarting, serialization, deadlock) is retried with backoff and, if it persists,
 *    reported as a batch item failure from the first Kinesis record not applied, so the event
 *    source retries from there (a retried aggregate re-applies some units: apply is idempotent);
 *  - any other failure isolates the poison: the units are split in halves and applied
 *    separately; a single unit that still fails (twice) is dead-lettered and the rest goes on.
 */
import type { KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from "aws-lambda"
import { Effect, Exit, Result, Schedule, Schema } from "effect"
import type pg from "pg"
import { decodeFailureReason, decodeStreamRecordResult, type ChangeEvent, type StreamRecord } from "../../contracts/change-event.ts"
import { deadLetterKey } from "../../contracts/lake.ts"
import { fetchClaimedEvent } from "../lake/claims.ts"
import { deaggregate } from "../shared/kinesis/aggregation.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"
import { metrics } from "../shared/metrics.ts"
import { applyRecords, type ApplyResult } from "../warehouse/apply.ts"
import type { Violation } from "../warehouse/schema-check.ts"
import { tryWarehouse, warehouseError, type WarehouseError } from "../warehouse/warehouse-errors.ts"
import { applySnapshotChunk, type SnapshotChunkMissing, type SnapshotChunkUnavailable } from "./snapshot-chunks.ts"

export interface ConsumerDeps {
  readonly pool: pg.Pool
  readonly lake: LakeStoreShape | undefined
  readonly stream: string
  readonly schema?: string
  readonly pipelineSchema?: string
  /** How long to keep retrying a transient warehouse failure inside one invocation. */
  readonly retrySchedule?: Schedule.Schedule<unknown, unknown>
  /** Units per warehouse transaction: a batch of big aggregates is applied in several (default 5,000). */
  readonly maxEventsPerTransaction?: number
  /** Told of every failed attempt while the warehouse is unavailable (an outage reporter logs the first one); not of conflicts (deadlocks, serialization). */
  readonly onWarehouseRetry?: (error: unknown) => void
}

export interface BatchOutcome {
  readonly response: KinesisStreamBatchResponse
  /** Change events and heartbeats applied (user records). */
  readonly applied: number
  readonly deadLettered: number
  readonly warehouseRetries: number
  /** Poison isolation: how often a failing set of units was split. */
  readonly bisections: number
  /** Commit times of the applied change events (for end-to-end latency). */
  readonly committedAt: ReadonlyArray<string>
  readonly appliedByTable: Readonly<Record<string, number>>
  /** The warehouse's consistent_through_at after this batch (minimum over shards). */
  readonly consistentThroughAt: string | null
  /** Changes set aside because their table is paused, per table. */
  readonly parkedByTable: Readonly<Record<string, number>>
  /** Tables this batch paused (a schema change broke a column the warehouse uses). */
  readonly paused: ReadonlyArray<Violation>
  /** Every paused table after this batch (null before the first applied transaction). */
  readonly pausedTables: ReadonlyArray<string> | null
}

/** A unit could not be set aside in the lake's dead-letter prefix: the batch fails whole and is retried (nothing is dropped). */
export class DeadLetterFailed extends Schema.TaggedError<DeadLetterFailed>()("DeadLetterFailed", {
  id: Schema.String,
  message: Schema.String
}) {}

/** Why one attempt to apply a set of units failed. */
type ApplyFailure = WarehouseError | SnapshotChunkUnavailable | SnapshotChunkMissing

/** Worth retrying later: the warehouse is unavailable or in conflict, or a snapshot chunk cannot be read from the lake right now. */
const isTransient = (error: ApplyFailure): boolean => (error._tag === "WarehouseError" ? error.transient : error._tag === "SnapshotChunkUnavailable")

/** One user record of a Kinesis record. */
interface Unit {
  readonly record: KinesisStreamRecord
  readonly subSequenceNumber: number
  readonly partitionKey: string
  readonly data: Uint8Array
}

interface Decoded {
  readonly unit: Unit
  readonly value: StreamRecord
}

const defaultRetry = Schedule.min([Schedule.exponential("200 millis", 2), Schedule.spaced("5 seconds")]).pipe(Schedule.upTo({ times: 8 }))

export const shardIdOf = (record: KinesisStreamRecord) => record.eventID.split(":")[0] ?? "unknown"

/** Attempts of a single unit that keeps failing before it is dead-lettered. */
const SINGLE_UNIT_ATTEMPTS = 2

/** One batch of one shard → the warehouse, with its metrics and a warning per table it paused. */
export const processKinesisEvent = Effect.fn("consumer.processKinesisEvent")(function* (deps: ConsumerDeps, event: KinesisStreamEvent) {
  const started = performance.now()
  const outcome = yield* processBatch(deps, event.Records)
  emitBatchMetrics(outcome, performance.now() - started)
  for (const violation of outcome.paused) {
    // Once per pause (the batch that paused it): what broke and what to do. Never a row value.
    yield* Effect.logWarning("a source schema change broke a column the warehouse uses: table paused, its changes are kept").pipe(
      Effect.annotateLogs({
        component: "consumer",
        table: violation.table,
        column: violation.column,
        problem: violation.problem,
        reason: violation.detail,
        action: `decide, then: totes warehouse resume --table ${violation.table} ${violation.problem === "missing" ? `--rename ${violation.column}=<new source column> | --accept-missing ${violation.column}` : `--accept-type ${violation.column} (after adapting the warehouse column)`}`
      })
    )
  }
  return outcome
})

/** The Lambda's entry: what the event source mapping needs back. */
export const processForLambda = (deps: ConsumerDeps, event: KinesisStreamEvent): Effect.Effect<KinesisStreamBatchResponse, WarehouseError | DeadLetterFailed> =>
  Effect.map(processKinesisEvent(deps, event), (outcome) => outcome.response)

const emitBatchMetrics = (outcome: BatchOutcome, durationMs: number) => {
  const now = Date.now()
  metrics.emit("consumer", {
    BatchDuration: durationMs,
    DeadLetteredEvents: outcome.deadLettered,
    WarehouseRetries: outcome.warehouseRetries,
    ...(outcome.committedAt.length > 0 ? { EndToEndLatency: outcome.committedAt.map((at) => Math.max(0, now - Date.parse(at))) } : {}),
    ...(outcome.consistentThroughAt ? { ConsistentThroughAgeSeconds: Math.max(0, (now - Date.parse(outcome.consistentThroughAt)) / 1000) } : {}),
    ...(outcome.pausedTables ? { TablesPaused: outcome.pausedTables.length } : {})
  })
  for (const [Table, n] of Object.entries(outcome.appliedByTable)) metrics.emit("consumer", { EventsApplied: n }, { Table })
  for (const [Table, n] of Object.entries(outcome.parkedByTable)) metrics.emit("consumer", { EventsParked: n }, { Table })
}

const failedFrom = (record: KinesisStreamRecord): KinesisStreamBatchResponse => ({ batchItemFailures: [{ itemIdentifier: record.kinesis.sequenceNumber }] })

const processBatch = (deps: ConsumerDeps, records: ReadonlyArray<KinesisStreamRecord>): Effect.Effect<BatchOutcome, WarehouseError | DeadLetterFailed> =>
  Effect.gen(function* () {
    const outcome = {
      applied: 0,
      deadLettered: 0,
      warehouseRetries: 0,
      bisections: 0,
      committedAt: [] as Array<string>,
      appliedByTable: {} as Record<string, number>,
      consistentThroughAt: null as string | null,
      parkedByTable: {} as Record<string, number>,
      paused: [] as Array<Violation>,
      pausedTables: null as ReadonlyArray<string> | null
    }
    if (records.length === 0) return { ...outcome, response: { batchItemFailures: [] } }
    const shardId = shardIdOf(records[0]!)

    // Units, decoded; what cannot be read is dead-lettered once the batch is applied (a batch that is
    // retried later decodes again and must not write a second copy).
    const decoded: Array<Decoded> = []
    const rejected: Array<{ unit: Unit | KinesisStreamRecord; reason: string }> = []
    for (const record of records) {
      let users
      try {
        users = deaggregate(Buffer.from(record.kinesis.data, "base64"), record.kinesis.partitionKey)
      } catch (error) {
        rejected.push({ unit: record, reason: `undecodable aggregated record: ${(error as Error).message}` })
        continue
      }
      for (let i = 0; i < users.length; i++) {
        const unit: Unit = { record, subSequenceNumber: i, partitionKey: users[i]!.partitionKey, data: users[i]!.data }
        const result = decodeStreamRecordResult(Buffer.from(unit.data).toString("utf8"))
        if (Result.isFailure(result)) {
          rejected.push({ unit, reason: `undecodable: ${decodeFailureReason(result.failure)}` })
          continue
        }
        let value = result.success
        if (value.kind === "change" && value.claimCheck) {
          const resolved = yield* resolveClaimCheck(deps, value)
          // The lake could not be read right now: retry the whole batch later, never skip the event.
          if (resolved === "unavailable") return { ...outcome, response: failedFrom(records[0]!) }
          if (resolved === "missing") {
            rejected.push({ unit, reason: `claim check ${value.claimCheck.key} is missing from the lake or holds another event` })
            continue
          }
          value = resolved
        }
        decoded.push({ unit, value })
      }
    }

    /** Applies units in one transaction (with transient retries); the failure of the last attempt, if any. */
    const applyOnce = (units: ReadonlyArray<Decoded>): Effect.Effect<ApplyFailure | undefined> =>
      applyUnits(deps, shardId, units, units[units.length - 1]?.unit.record ?? records[records.length - 1]!).pipe(
        Effect.tapError((error) =>
          Effect.sync(() => {
            outcome.warehouseRetries++
            if (error._tag === "WarehouseError" && error.unavailable) deps.onWarehouseRetry?.(error.cause)
          })
        ),
        Effect.retry({ schedule: deps.retrySchedule ?? defaultRetry, while: isTransient }),
        Effect.map((result) => {
          outcome.consistentThroughAt = result.consistentThroughAt
          const applied = result.applied
          outcome.paused.push(...applied.paused)
          outcome.pausedTables = applied.pausedTables
          const parked = new Set(applied.parkedIds)
          for (const { value } of units) {
            if (value.kind === "change" && parked.has(value.id)) {
              outcome.parkedByTable[value.source.table] = (outcome.parkedByTable[value.source.table] ?? 0) + 1
              continue
            }
            outcome.applied++
            if (value.kind === "snapshot-chunk") outcome.appliedByTable[value.source.table] = (outcome.appliedByTable[value.source.table] ?? 0) + value.rows
            if (value.kind !== "change") continue
            if (!value.source.snapshot) outcome.committedAt.push(value.source.committedAt)
            outcome.appliedByTable[value.source.table] = (outcome.appliedByTable[value.source.table] ?? 0) + 1
          }
          return undefined
        }),
        Effect.catch((error) => Effect.succeed(error))
      )

    /** Applies units, isolating poison; the Kinesis record to resume from after a transient failure. */
    const applyIsolating = (units: ReadonlyArray<Decoded>, attempt = 1): Effect.Effect<KinesisStreamRecord | undefined, WarehouseError | DeadLetterFailed> =>
      Effect.gen(function* () {
        const error = yield* applyOnce(units)
        if (error === undefined) return undefined
        if (isTransient(error)) return units[0]?.unit.record ?? records[0]
        // Nothing to isolate: the shard bookkeeping itself failed (with no units, only the warehouse can fail).
        if (units.length === 0) return yield* Effect.fail(error._tag === "WarehouseError" ? error : warehouseError(error))
        if (units.length === 1) {
          if (attempt < SINGLE_UNIT_ATTEMPTS) return yield* applyIsolating(units, attempt + 1)
          yield* deadLetter(deps, units[0]!.unit, `processing failed ${attempt} times: ${error.message}`)
          outcome.deadLettered++
          return undefined
        }
        outcome.bisections++
        const middle = Math.ceil(units.length / 2)
        return (yield* applyIsolating(units.slice(0, middle))) ?? (yield* applyIsolating(units.slice(middle)))
      })

    // In chunks, in order; a batch of only undecodable units still records the shard and its position.
    const chunk = Math.max(1, deps.maxEventsPerTransaction ?? 5_000)
    for (let start = 0; start === 0 || start < decoded.length; start += chunk) {
      const notApplied = yield* applyIsolating(decoded.slice(start, start + chunk))
      if (notApplied) return { ...outcome, response: failedFrom(notApplied) }
    }
    for (const { unit, reason } of rejected) yield* deadLetter(deps, unit, reason)
    outcome.deadLettered += rejected.length
    return { ...outcome, response: { batchItemFailures: [] } }
  })

const applyUnits = (
  deps: ConsumerDeps,
  shardId: string,
  units: ReadonlyArray<Decoded>,
  lastRecord: KinesisStreamRecord
): Effect.Effect<{ applied: ApplyResult; consistentThroughAt: string | null }, ApplyFailure> =>
  // Suspended: each attempt (retries run this Effect again) starts with a connection of its own and nothing noted against it.
  Effect.suspend(() => {
    // A connection killed while checked out emits 'error' besides failing the query: note it, and
    // never give a broken connection (or one whose query may still run) back to the pool.
    let broken: unknown
    const onError = (error: Error) => (broken ??= error)
    return Effect.acquireUseRelease(
      tryWarehouse(async () => {
        const client = await deps.pool.connect()
        client.on("error", onError)
        return client
      }),
      (client) =>
        Effect.gen(function* () {
          // Snapshot chunks first, each merged set-wise in a transaction of its own (or read back as rows).
          const records: Array<StreamRecord> = []
          for (const { value } of units) {
            if (value.kind !== "snapshot-chunk") records.push(value)
            else {
              const chunk = yield* applySnapshotChunk(deps, value)
              // (A loop, not a spread: a chunk holds up to hundreds of thousands of rows.)
              if ("events" in chunk) for (const event of chunk.events) records.push(event)
            }
          }
          const applied = yield* tryWarehouse(() =>
            applyRecords(client, records, {
              schema: deps.schema,
              pipelineSchema: deps.pipelineSchema,
              shard: { stream: deps.stream, shardId, lastSequenceNumber: lastRecord.kinesis.sequenceNumber },
              // The warehouse-wide watermark (minimum over shards): a stuck shard shows in every batch's figure.
              readFreshness: true
            })
          )
          const at = applied.freshness?.consistentThroughAt
          const when = at ? new Date(at) : null
          return { applied, consistentThroughAt: when && !Number.isNaN(when.getTime()) ? when.toISOString() : null }
        }),
      (client, exit) =>
        Effect.sync(() => {
          if (Exit.hasInterrupts(exit)) broken ??= new Error("apply interrupted: its query may still be running")
          else if (Exit.isFailure(exit)) {
            const error = exit.cause.reasons.find((r) => r._tag === "Fail")?.error
            if (error && isTransient(error)) broken ??= error
          }
          client.off("error", onError)
          client.release(broken as Error | undefined)
        })
    )
  }).pipe(
    // A defect (a bug, an unexpected value) is treated as what the units did: isolated, not fatal to the batch.
    Effect.catchDefect((defect) => Effect.fail(warehouseError(defect)))
  )

/** The full event behind a claim check; "missing" only when the lake answered that it is not there (services/lake/claims.ts). */
const resolveClaimCheck = (deps: ConsumerDeps, event: ChangeEvent): Effect.Effect<ChangeEvent | "missing" | "unavailable"> => {
  if (!deps.lake) return Effect.succeed("unavailable")
  return fetchClaimedEvent(deps.lake, event).pipe(
    Effect.catchTag("ClaimCheckMissing", () => Effect.succeed("missing" as const)),
    Effect.catchTag("LakeError", (_: LakeError) => Effect.succeed("unavailable" as const))
  )
}

/** Writes a unit (or a whole unreadable Kinesis record) to dead-letter/, never to logs: it may hold row values. */
const deadLetter = (deps: ConsumerDeps, what: Unit | KinesisStreamRecord, reason: string): Effect.Effect<void, DeadLetterFailed> => {
  const unit = "subSequenceNumber" in what ? what : undefined
  const record = unit ? unit.record : (what as KinesisStreamRecord)
  const id = `${shardIdOf(record)}-${record.kinesis.sequenceNumber}${unit ? `-${unit.subSequenceNumber}` : ""}`
  if (!deps.lake) return Effect.fail(new DeadLetterFailed({ id, message: `cannot dead-letter ${id}: no lake bucket configured (${reason})` }))
  const body = JSON.stringify({
    reason,
    shardId: shardIdOf(record),
    sequenceNumber: record.kinesis.sequenceNumber,
    ...(unit ? { subSequenceNumber: unit.subSequenceNumber } : {}),
    partitionKey: unit?.partitionKey ?? record.kinesis.partitionKey,
    at: new Date().toISOString(),
    data: unit ? Buffer.from(unit.data).toString("base64") : record.kinesis.data
  })
  // One key per unit (arrival hour, shard, sequence and sub-sequence number): a retried batch cannot add a second copy.
  const arrived = new Date(record.kinesis.approximateArrivalTimestamp * 1000)
  return deps.lake
    .putNew(deadLetterKey(arrived, id), body, "application/json")
    .pipe(Effect.mapError((error) => new DeadLetterFailed({ id, message: `cannot dead-letter ${id}: ${error.message}` })))
}
