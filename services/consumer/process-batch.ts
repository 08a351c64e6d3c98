/**
 * One Kinesis batch (the Lambda event shape) → the warehouse, in one transaction.
 *
 *  - records that cannot be decoded go to the lake's dead-letter prefix with the reason and are
 *    counted; they never stop the shard;
 *  - claim checks (oversize events) are resolved from the lake before projection;
 *  - a transient warehouse failure (connection lost, server restarting, serialization) is retried
 *    with backoff; if it persists the whole batch is reported as failed (`batchItemFailures` from
 *    its first record) so the event source retries it later, nothing skipped;
 *  - any other error is thrown: the event source bisects the batch to isolate a poison record.
 */
import type { KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from "aws-lambda"
import { Effect, Result, Schedule } from "effect"
import type pg from "pg"
import { decodeStreamRecord, type ChangeEvent, type StreamRecord } from "../../contracts/change-event.ts"
import { deadLetterKey } from "../../contracts/lake.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"
import { metrics } from "../shared/metrics.ts"
import { applyRecords, readFreshness, registerShards, type ApplyResult } from "./apply.ts"

export interface ConsumerDeps {
  readonly pool: pg.Pool
  readonly lake: LakeStoreShape | undefined
  readonly stream: string
  readonly schema?: string
  readonly pipelineSchema?: string
  /** How long to keep retrying a transient warehouse failure inside one invocation. */
  readonly retrySchedule?: Schedule.Schedule<unknown, unknown>
}

export interface BatchOutcome {
  readonly response: KinesisStreamBatchResponse
  readonly applied: ApplyResult | undefined
  readonly deadLettered: number
  readonly warehouseRetries: number
  /** Commit times of the applied change events (for end-to-end latency). */
  readonly committedAt: ReadonlyArray<string>
  readonly appliedByTable: Readonly<Record<string, number>>
  /** The warehouse's consistent_through_at after this batch (minimum over shards). */
  readonly consistentThroughAt: string | null
}

/** SQLSTATE classes worth retrying: connection, resources, operator intervention, serialization. */
export const isTransientWarehouseError = (error: unknown): boolean => {
  const e = error as { code?: string; message?: string }
  const code = e?.code ?? ""
  if (/^(08|53|57|40)/.test(code) || code === "55P03") return true
  if (["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH"].includes(code)) return true
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(e?.message ?? "")
}

const defaultRetry = Schedule.min([Schedule.exponential("200 millis", 2), Schedule.spaced("5 seconds")]).pipe(Schedule.upTo({ times: 8 }))

export const shardIdOf = (record: KinesisStreamRecord) => record.eventID.split(":")[0] ?? "unknown"

const emptyOutcome: BatchOutcome = {
  response: { batchItemFailures: [] },
  applied: undefined,
  deadLettered: 0,
  warehouseRetries: 0,
  committedAt: [],
  appliedByTable: {},
  consistentThroughAt: null
}

export const processKinesisEvent = async (deps: ConsumerDeps, event: KinesisStreamEvent): Promise<BatchOutcome> => {
  const started = performance.now()
  const outcome = await processBatch(deps, event)
  emitBatchMetrics(outcome, performance.now() - started)
  return outcome
}

const emitBatchMetrics = (outcome: BatchOutcome, durationMs: number) => {
  const now = Date.now()
  metrics.emit("consumer", {
    BatchDuration: durationMs,
    DeadLetteredEvents: outcome.deadLettered,
    WarehouseRetries: outcome.warehouseRetries,
    ...(outcome.committedAt.length > 0 ? { EndToEndLatency: outcome.committedAt.map((at) => Math.max(0, now - Date.parse(at))) } : {}),
    ...(outcome.consistentThroughAt ? { ConsistentThroughAgeSeconds: Math.max(0, (now - Date.parse(outcome.consistentThroughAt)) / 1000) } : {})
  })
  for (const [Table, n] of Object.entries(outcome.appliedByTable)) metrics.emit("consumer", { EventsApplied: n }, { Table })
}

const processBatch = async (deps: ConsumerDeps, event: KinesisStreamEvent): Promise<BatchOutcome> => {
  const records = event.Records
  if (records.length === 0) return emptyOutcome
  const shardId = shardIdOf(records[0]!)
  const decoded: Array<StreamRecord> = []
  // Written only once the batch is applied: a batch that throws is bisected and decoded again.
  const rejected: Array<{ record: KinesisStreamRecord; reason: string }> = []
  for (const record of records) {
    const text = Buffer.from(record.kinesis.data, "base64").toString("utf8")
    const result = await Effect.runPromise(Effect.result(decodeStreamRecord(text)))
    if (Result.isFailure(result)) {
      rejected.push({ record, reason: `undecodable: ${result.failure.field ? `${result.failure.field}: ` : ""}${result.failure.message}` })
      continue
    }
    let value = result.success
    if (value.kind === "change" && value.claimCheck) {
      const resolved = await resolveClaimCheck(deps, value)
      if (resolved === "unavailable") {
        // The lake could not be read right now: retry the whole batch later, never skip the event.
        return { ...emptyOutcome, response: { batchItemFailures: [{ itemIdentifier: records[0]!.kinesis.sequenceNumber }] } }
      }
      if (resolved === "missing") {
        rejected.push({ record, reason: `claim check ${value.claimCheck.key} is missing from the lake or holds another event` })
        continue
      }
      value = resolved
    }
    decoded.push(value)
  }
  const deadLettered = rejected.length

  let warehouseRetries = 0
  const attempt = Effect.tryPromise({
    try: async () => {
      const client = await deps.pool.connect()
      let broken: Error | undefined
      // A connection killed while checked out emits 'error' besides failing the query: note it.
      const onError = (error: Error) => (broken ??= error)
      client.on("error", onError)
      try {
        await registerShards(client, { schema: deps.schema, pipelineSchema: deps.pipelineSchema, stream: deps.stream, shardIds: [shardId] })
        const applied = await applyRecords(client, decoded, {
          schema: deps.schema,
          pipelineSchema: deps.pipelineSchema,
          shard: { stream: deps.stream, shardId, lastSequenceNumber: records[records.length - 1]!.kinesis.sequenceNumber }
        })
        // The warehouse-wide watermark (minimum over shards): a stuck shard shows in every batch's figure.
        const freshness = await readFreshness(client, { schema: deps.schema, pipelineSchema: deps.pipelineSchema })
        return { applied, consistentThroughAt: freshness.consistentThroughAt ? new Date(freshness.consistentThroughAt).toISOString() : null }
      } catch (error) {
        // A broken connection must not go back to the pool.
        if (isTransientWarehouseError(error)) broken = error as Error
        throw error
      } finally {
        client.off("error", onError)
        client.release(broken)
      }
    },
    catch: (error) => error
  })
  const outcome = await Effect.runPromise(
    Effect.result(
      attempt.pipe(
        Effect.tapError(() => Effect.sync(() => void warehouseRetries++)),
        Effect.retry({ schedule: deps.retrySchedule ?? defaultRetry, while: isTransientWarehouseError })
      )
    )
  )
  if (Result.isFailure(outcome)) {
    if (isTransientWarehouseError(outcome.failure)) {
      return {
        response: { batchItemFailures: [{ itemIdentifier: records[0]!.kinesis.sequenceNumber }] },
        applied: undefined,
        deadLettered,
        warehouseRetries,
        committedAt: [],
        appliedByTable: {},
        consistentThroughAt: null
      }
    }
    throw outcome.failure
  }
  for (const { record, reason } of rejected) await deadLetter(deps, record, reason)
  const committedAt = decoded.flatMap((r) => (r.kind === "change" && !r.source.snapshot ? [r.source.committedAt] : []))
  const appliedByTable: Record<string, number> = {}
  for (const r of decoded) if (r.kind === "change") appliedByTable[r.source.table] = (appliedByTable[r.source.table] ?? 0) + 1
  return {
    response: { batchItemFailures: [] },
    applied: outcome.success.applied,
    deadLettered,
    warehouseRetries,
    committedAt,
    appliedByTable,
    consistentThroughAt: outcome.success.consistentThroughAt
  }
}

/** The full event behind a claim check; "missing" only when the lake answered that it is not there. */
const resolveClaimCheck = async (deps: ConsumerDeps, event: ChangeEvent): Promise<ChangeEvent | "missing" | "unavailable"> => {
  if (!deps.lake || !event.claimCheck) return "unavailable"
  const body = await Effect.runPromise(Effect.result(deps.lake.get(event.claimCheck.key)))
  if (Result.isFailure(body)) return /NoSuchKey|NotFound/.test(body.failure.message) ? "missing" : "unavailable"
  const full = await Effect.runPromise(Effect.result(decodeStreamRecord(Buffer.from(body.success).toString("utf8"))))
  return Result.isSuccess(full) && full.success.kind === "change" && full.success.id === event.id ? full.success : "missing"
}

/** Writes a record the consumer cannot use to dead-letter/ (never to logs: it may hold row values). */
export const deadLetter = async (deps: ConsumerDeps, record: KinesisStreamRecord, reason: string) => {
  if (!deps.lake) throw new Error(`cannot dead-letter record ${record.kinesis.sequenceNumber}: no lake bucket configured (${reason})`)
  const body = JSON.stringify({
    reason,
    shardId: shardIdOf(record),
    sequenceNumber: record.kinesis.sequenceNumber,
    partitionKey: record.kinesis.partitionKey,
    at: new Date().toISOString(),
    data: record.kinesis.data
  })
  // One key per record (arrival hour, shard, sequence number): a retried batch cannot add a second copy.
  const arrived = new Date(record.kinesis.approximateArrivalTimestamp * 1000)
  await Effect.runPromise(deps.lake.putNew(deadLetterKey(arrived, `${shardIdOf(record)}-${record.kinesis.sequenceNumber}`), body, "application/json"))
}

/**
 * For the Lambda: processes a batch, isolating poison itself. A batch that throws (not a
 * transient failure, which comes back as batchItemFailures) is split in halves; a single record
 * that still throws goes to dead-letter/ and the rest carries on. So the event source mapping can
 * retry without bound and never skips a good record.
 */
export const processIsolatingPoison = async (deps: ConsumerDeps, records: ReadonlyArray<KinesisStreamRecord>): Promise<KinesisStreamBatchResponse> => {
  try {
    return (await processKinesisEvent(deps, { Records: [...records] })).response
  } catch (error) {
    if (records.length === 1) {
      await deadLetter(deps, records[0]!, `processing failed: ${(error as Error)?.message ?? String(error)}`)
      metrics.emit("consumer", { DeadLetteredEvents: 1 })
      return { batchItemFailures: [] }
    }
    const middle = Math.ceil(records.length / 2)
    const first = await processIsolatingPoison(deps, records.slice(0, middle))
    if (first.batchItemFailures.length > 0) return first
    return processIsolatingPoison(deps, records.slice(middle))
  }
}
