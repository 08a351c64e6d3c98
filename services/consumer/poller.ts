/**
 * Plays the Lambda event-source mapping locally: reads every shard of the stream, builds the
 * same KinesisStreamEvent objects, calls the very core the Lambda runs (processKinesisEvent:
 * deaggregation, decoding, poison isolation, dead letters), honours batchItemFailures (resume from
 * the first failed record after a backoff) and checkpoints each shard in DynamoDB (conditional,
 * monotonic) after the warehouse committed.
 */
import { DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, type KinesisClient, type _Record } from "@aws-sdk/client-kinesis"
import type { KinesisStreamEvent, KinesisStreamRecord } from "aws-lambda"
import { Effect, Option } from "effect"
import type pg from "pg"
import { sequencePosition, shardCheckpointKey, type ShardCheckpoint } from "../../contracts/checkpoint.ts"
import type { CheckpointStoreShape } from "../shared/checkpoint-store.ts"
import { listShards } from "../shared/kinesis/list-shards.ts"
import { loggerLayer } from "../shared/logger.ts"
import { followShards, kinesisRead, pauseUnless, readShardUntil } from "../shared/kinesis/shard-reading.ts"
import type { WarehouseSchemas } from "../warehouse/migrate.ts"
import { endShard, registerShards } from "../warehouse/shard-positions.ts"
import { tryWarehouse } from "../warehouse/warehouse-errors.ts"
import { processKinesisEvent, type BatchOutcome, type ConsumerDeps } from "./process-batch.ts"

export interface PollerOptions {
  readonly kinesis: KinesisClient
  readonly checkpoints: CheckpointStoreShape
  readonly deps: ConsumerDeps
  /** Kinesis records per GetRecords (each an aggregate of up to 1 MiB of events); default 10. */
  readonly batchSize?: number
  readonly idleWaitMs?: number
  /** How often the shards are listed again (to follow a reshard); default 30 s. */
  readonly shardRefreshMs?: number
  readonly onBatch?: (shardId: string, outcome: BatchOutcome, records: number) => void
  readonly onError?: (shardId: string, error: unknown) => void
}

export const toLambdaRecord = (stream: string, region: string, shardId: string, record: _Record): KinesisStreamRecord => ({
  kinesis: {
    kinesisSchemaVersion: "1.0",
    partitionKey: record.PartitionKey!,
    sequenceNumber: record.SequenceNumber!,
    data: Buffer.from(record.Data!).toString("base64"),
    approximateArrivalTimestamp: (record.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) / 1000
  },
  eventSource: "aws:kinesis",
  eventVersion: "1.0",
  eventID: `${shardId}:${record.SequenceNumber}`,
  eventName: "aws:kinesis:record",
  invokeIdentityArn: "arn:aws:iam::000000000000:role/local-poller",
  awsRegion: region,
  eventSourceARN: `arn:aws:kinesis:${region}:000000000000:stream/${stream}`
})

export class Poller {
  /** shards: shards listed so far; batches/records: Kinesis records applied; events: user records applied; failedBatches: reported as failed (warehouse unavailable) and retried. */
  readonly stats = { shards: 0, batches: 0, records: 0, events: 0, deadLettered: 0, failedBatches: 0, bisections: 0 }

  constructor(private readonly options: PollerOptions) {}

  private get stream() {
    return this.options.deps.stream
  }

  /** Polls every shard until `signal` aborts; a batch being applied is finished first (a stop is not an interruption). */
  run(signal: AbortSignal): Promise<void> {
    return Effect.runPromise(this.pollAll(signal).pipe(Effect.provide(loggerLayer())))
  }

  /**
   * Follows the stream's shards as the event source mapping does (followShards: re-listed every
   * `shardRefreshMs`, a child read once its parents are drained). Every listed shard is registered
   * in the warehouse first, so freshness waits for its heartbeats even while it waits for its
   * parents.
   */
  private pollAll(signal: AbortSignal) {
    const { kinesis } = this.options
    return Effect.gen({ self: this }, function* () {
      yield* kinesisRead(() => kinesis.send(new DescribeStreamSummaryCommand({ StreamName: this.stream })))
      yield* followShards({
        signal,
        list: kinesisRead(() => listShards(kinesis, this.stream)),
        refreshMs: this.options.shardRefreshMs ?? 30_000,
        // Retried like a shard's page (the warehouse may be down at start); a stop ends the wait.
        prepare: (shardIds) =>
          readShardUntil(signal, Effect.as(this.registerShards(shardIds), "ended" as const), (error) => this.options.onError?.("*", error)).pipe(
            Effect.tap(() => Effect.sync(() => void (this.stats.shards += shardIds.length)))
          ),
        read: (shardId) => this.pollShard(shardId, signal),
        onListError: (error) => this.options.onError?.("*", error)
      })
    })
  }

  /** Declares shards in the warehouse (shard_position), so freshness waits for their heartbeats. */
  private registerShards(shardIds: ReadonlyArray<string>) {
    return this.onWarehouse((client, schemas) => registerShards(client, { ...schemas, stream: this.stream, shardIds }))
  }

  /** One statement on a pooled warehouse connection, its failure classified (WarehouseError). */
  private onWarehouse(work: (client: pg.PoolClient, schemas: WarehouseSchemas) => Promise<void>) {
    const { pool, schema, pipelineSchema } = this.options.deps
    return tryWarehouse(async () => {
      const client = await pool.connect()
      try {
        await work(client, { schema, pipelineSchema })
      } finally {
        client.release()
      }
    })
  }

  private iteratorAfterCheckpoint(shardId: string) {
    return Effect.gen({ self: this }, function* () {
      const checkpoint = Option.getOrUndefined(yield* this.options.checkpoints.get<ShardCheckpoint>(shardCheckpointKey(this.stream, shardId)))
      const out = yield* kinesisRead(() =>
        this.options.kinesis.send(
          new GetShardIteratorCommand({
            StreamName: this.stream,
            ShardId: shardId,
            ...(checkpoint
              ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber: checkpoint.data.sequenceNumber }
              : { ShardIteratorType: "TRIM_HORIZON" })
          })
        )
      )
      return out.ShardIterator!
    })
  }

  private iteratorAt(shardId: string, sequenceNumber: string) {
    return Effect.map(
      kinesisRead(() =>
        this.options.kinesis.send(new GetShardIteratorCommand({ StreamName: this.stream, ShardId: shardId, ShardIteratorType: "AT_SEQUENCE_NUMBER", StartingSequenceNumber: sequenceNumber }))
      ),
      (out) => out.ShardIterator!
    )
  }

  private pollShard(shardId: string, signal: AbortSignal) {
    const pause = (ms: number) => pauseUnless(signal, ms)
    return Effect.gen({ self: this }, function* () {
      const region = (yield* Effect.promise(() => this.options.kinesis.config.region())) ?? "local"
      let iterator: string | undefined
      let failures = 0
      /** One page of the shard: read, delivered, checkpointed; "ended" once a closed shard is fully applied (and retired). */
      const step = Effect.gen({ self: this }, function* () {
        iterator ??= yield* this.iteratorAfterCheckpoint(shardId)
        const read = iterator
        const page = yield* kinesisRead(() => this.options.kinesis.send(new GetRecordsCommand({ ShardIterator: read, Limit: this.options.batchSize ?? 10 })))
        const records = (page.Records ?? []).map((r) => toLambdaRecord(this.stream, region, shardId, r))
        if (records.length === 0) {
          iterator = page.NextShardIterator
          if (!iterator) {
            // A closed shard (after a reshard), fully applied: it must not hold consistent_through back.
            yield* this.retireShard(shardId)
            return "ended" as const
          }
          yield* pause(this.options.idleWaitMs ?? 200)
          return "more" as const
        }
        const failedAt = yield* this.deliver(shardId, records)
        if (failedAt) {
          // Transient warehouse failure: nothing after the failed record was applied. Back off, resume there.
          failures++
          this.stats.failedBatches++
          iterator = yield* this.iteratorAt(shardId, failedAt)
          yield* pause(Math.min(200 * 2 ** failures, 5_000))
          return "more" as const
        }
        failures = 0
        iterator = page.NextShardIterator
        return "more" as const
      })
      // A failure is reported and the shard goes on from its checkpoint.
      yield* readShardUntil(signal, step, (error) => {
        this.options.onError?.(shardId, error)
        iterator = undefined
      })
    })
  }

  /**
   * Delivers records in order; the sequence number to resume from after a reported failure, or
   * undefined when everything was applied (and checkpointed).
   */
  private deliver(shardId: string, records: ReadonlyArray<KinesisStreamRecord>) {
    return Effect.gen({ self: this }, function* () {
      const outcome = yield* processKinesisEvent(this.options.deps, { Records: [...records] } as KinesisStreamEvent)
      const failure = outcome.response.batchItemFailures[0]?.itemIdentifier
      const appliedThrough = failure ? records[records.findIndex((r) => r.kinesis.sequenceNumber === failure) - 1] : records[records.length - 1]
      if (appliedThrough) yield* this.checkpoint(shardId, appliedThrough.kinesis.sequenceNumber)
      if (!failure) {
        this.stats.batches++
        this.stats.records += records.length
      }
      this.stats.events += outcome.applied
      this.stats.deadLettered += outcome.deadLettered
      this.stats.bisections += outcome.bisections
      this.options.onBatch?.(shardId, outcome, records.length)
      return failure
    })
  }

  private retireShard(shardId: string) {
    return this.onWarehouse((client, schemas) => endShard(client, { ...schemas, stream: this.stream, shardId }))
  }

  private checkpoint(shardId: string, sequenceNumber: string) {
    return this.options.checkpoints.advance(shardCheckpointKey(this.stream, shardId), sequencePosition(sequenceNumber), { sequenceNumber } satisfies ShardCheckpoint)
  }
}
