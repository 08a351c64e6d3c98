/**
 * Plays the Lambda event-source mapping locally: reads every shard of the stream, builds the
 * same KinesisStreamEvent objects, calls the very core the Lambda runs (processKinesisEvent:
 * deaggregation, decoding, poison isolation, dead letters), honours batchItemFailures (resume from
 * the first failed record after a backoff) and checkpoints each shard in DynamoDB (conditional,
 * monotonic) after the warehouse committed.
 */
import { DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, type KinesisClient, type _Record } from "@aws-sdk/client-kinesis"
import { setTimeout as wait } from "node:timers/promises"
import type { KinesisStreamEvent, KinesisStreamRecord } from "aws-lambda"
import { Effect, Option } from "effect"
import { sequencePosition, shardCheckpointKey, type ShardCheckpoint } from "../../contracts/checkpoint.ts"
import type { CheckpointStoreShape } from "../shared/checkpoint-store.ts"
import { listShards } from "../shared/kinesis/list-shards.ts"
import { endShard } from "../warehouse/shard-positions.ts"
import { processKinesisEvent, type BatchOutcome, type ConsumerDeps } from "./process-batch.ts"

export interface PollerOptions {
  readonly kinesis: KinesisClient
  readonly checkpoints: CheckpointStoreShape
  readonly deps: ConsumerDeps
  /** Kinesis records per GetRecords (each an aggregate of up to 1 MiB of events); default 10. */
  readonly batchSize?: number
  readonly idleWaitMs?: number
  readonly onBatch?: (shardId: string, outcome: BatchOutcome, records: number) => void
  readonly onError?: (shardId: string, error: unknown) => void
}

/** Waits `ms`, or less if `signal` aborts (a stop ends the wait, it is not an error). */
const sleep = (ms: number, signal: AbortSignal): Promise<void> => wait(Math.max(0, ms), undefined, { signal }).catch(() => undefined)

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
  /** batches/records: Kinesis records applied; events: user records applied; failedBatches: reported as failed (warehouse unavailable) and retried. */
  readonly stats = { batches: 0, records: 0, events: 0, deadLettered: 0, failedBatches: 0, bisections: 0 }

  constructor(private readonly options: PollerOptions) {}

  private get stream() {
    return this.options.deps.stream
  }

  async listShards(): Promise<Array<string>> {
    return (await listShards(this.options.kinesis, this.stream)).map((shard) => shard.ShardId!)
  }

  /** Polls every shard until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await this.options.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: this.stream }))
    const shards = await this.listShards()
    await Promise.all(shards.map((shardId) => this.pollShard(shardId, signal)))
  }

  private async iteratorAfterCheckpoint(shardId: string): Promise<string> {
    const checkpoint = Option.getOrUndefined(await Effect.runPromise(this.options.checkpoints.get<ShardCheckpoint>(shardCheckpointKey(this.stream, shardId))))
    const out = await this.options.kinesis.send(
      new GetShardIteratorCommand({
        StreamName: this.stream,
        ShardId: shardId,
        ...(checkpoint
          ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber: checkpoint.data.sequenceNumber }
          : { ShardIteratorType: "TRIM_HORIZON" })
      })
    )
    return out.ShardIterator!
  }

  private async iteratorAt(shardId: string, sequenceNumber: string): Promise<string> {
    const out = await this.options.kinesis.send(
      new GetShardIteratorCommand({ StreamName: this.stream, ShardId: shardId, ShardIteratorType: "AT_SEQUENCE_NUMBER", StartingSequenceNumber: sequenceNumber })
    )
    return out.ShardIterator!
  }

  private async pollShard(shardId: string, signal: AbortSignal) {
    const region = (await this.options.kinesis.config.region()) ?? "local"
    let iterator: string | undefined
    let failures = 0
    while (!signal.aborted) {
      try {
        iterator ??= await this.iteratorAfterCheckpoint(shardId)
        const page = await this.options.kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: this.options.batchSize ?? 10 }))
        const records = (page.Records ?? []).map((r) => toLambdaRecord(this.stream, region, shardId, r))
        if (records.length === 0) {
          iterator = page.NextShardIterator
          if (!iterator) {
            // A closed shard (after a reshard), fully applied: it must not hold consistent_through back.
            await this.retireShard(shardId)
            return
          }
          await sleep(this.options.idleWaitMs ?? 200, signal)
          continue
        }
        const failedAt = await this.deliver(shardId, records)
        if (failedAt) {
          // Transient warehouse failure: nothing after the failed record was applied. Back off, resume there.
          failures++
          this.stats.failedBatches++
          iterator = await this.iteratorAt(shardId, failedAt)
          await sleep(Math.min(200 * 2 ** failures, 5_000), signal)
          continue
        }
        failures = 0
        iterator = page.NextShardIterator
      } catch (error) {
        this.options.onError?.(shardId, error)
        iterator = undefined // re-read from the checkpoint
        await sleep(1_000, signal)
      }
    }
  }

  /**
   * Delivers records in order; returns the sequence number to resume from after a reported
   * failure, or undefined when everything was applied (and checkpointed).
   */
  private async deliver(shardId: string, records: ReadonlyArray<KinesisStreamRecord>): Promise<string | undefined> {
    const outcome = await processKinesisEvent(this.options.deps, { Records: [...records] } as KinesisStreamEvent)
    const failure = outcome.response.batchItemFailures[0]?.itemIdentifier
    const appliedThrough = failure ? records[records.findIndex((r) => r.kinesis.sequenceNumber === failure) - 1] : records[records.length - 1]
    if (appliedThrough) await this.checkpoint(shardId, appliedThrough.kinesis.sequenceNumber)
    if (!failure) {
      this.stats.batches++
      this.stats.records += records.length
    }
    this.stats.events += outcome.applied
    this.stats.deadLettered += outcome.deadLettered
    this.stats.bisections += outcome.bisections
    this.options.onBatch?.(shardId, outcome, records.length)
    return failure
  }

  private async retireShard(shardId: string) {
    const client = await this.options.deps.pool.connect()
    try {
      await endShard(client, { schema: this.options.deps.schema, pipelineSchema: this.options.deps.pipelineSchema, stream: this.stream, shardId })
    } finally {
      client.release()
    }
  }

  private async checkpoint(shardId: string, sequenceNumber: string) {
    await Effect.runPromise(
      this.options.checkpoints.advance(shardCheckpointKey(this.stream, shardId), sequencePosition(sequenceNumber), { sequenceNumber } satisfies ShardCheckpoint)
    )
  }
}
