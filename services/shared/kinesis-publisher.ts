/**
 * Publishes records to the change stream with PutRecords, retrying throttled or failed
 * entries with backoff while keeping each partition key's records in order (see
 * reader/put-records-plan.ts). Resolves only when every record has been accepted.
 */
import { createHash } from "node:crypto"
import { KinesisClient, ListShardsCommand, PutRecordsCommand, type PutRecordsResultEntry } from "@aws-sdk/client-kinesis"
import { Context, Effect, Layer, Schedule, Schema } from "effect"
import { planNextCall, type PendingRecord } from "../reader/put-records-plan.ts"
import { kinesisClient } from "./aws-clients.ts"
import { readConfig, StreamName } from "./config.ts"

export class PublishError extends Schema.TaggedError<PublishError>()("PublishError", {
  stream: Schema.String,
  message: Schema.String,
  retryable: Schema.Boolean
}) {}

export interface ShardInfo {
  readonly shardId: string
  readonly startingHashKey: string
}

export interface PublishStats {
  readonly calls: number
  readonly retries: number
  readonly records: number
}

export interface KinesisPublisherShape {
  readonly stream: string
  /** Puts every record (in order per partition key); fails only after retries are exhausted. */
  readonly publish: (records: ReadonlyArray<PendingRecord>) => Effect.Effect<PublishStats, PublishError>
  readonly shards: () => Effect.Effect<ReadonlyArray<ShardInfo>, PublishError>
}

/** Partition key: table + primary key, hashed to a fixed 64 characters (limit 256). */
export const partitionKeyFor = (table: string, key: unknown): string =>
  createHash("sha256").update(table).update("\u0000").update(JSON.stringify(key ?? null)).digest("hex")

const RETRYABLE_ERRORS = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "LimitExceededException",
  "InternalFailure",
  "ServiceUnavailable",
  "KMSThrottlingException",
  "TimeoutError",
  "RequestTimeout"
])

const isRetryable = (error: unknown) => {
  const e = error as { name?: string; $retryable?: unknown; code?: string; $metadata?: { httpStatusCode?: number } }
  return (
    RETRYABLE_ERRORS.has(e?.name ?? "") ||
    Boolean(e?.$retryable) ||
    ["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EPIPE"].includes(e?.code ?? "") ||
    (e?.$metadata?.httpStatusCode ?? 0) >= 500
  )
}

/** Capped exponential backoff with jitter; ~50 attempts spread over a few minutes. */
export const publishRetrySchedule = Schedule.min([Schedule.exponential("100 millis", 2), Schedule.spaced("5 seconds")]).pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 50 }),
  Schedule.setInputType<PublishError>(),
  Schedule.while(({ input }) => input.retryable)
)

export const makeKinesisPublisher = (options: { stream: string; client: KinesisClient; schedule?: typeof publishRetrySchedule }): KinesisPublisherShape => {
  const { stream, client } = options
  const schedule = options.schedule ?? publishRetrySchedule

  const publish = (records: ReadonlyArray<PendingRecord>) =>
    Effect.gen(function* () {
      let pending = [...records]
      let calls = 0
      let retries = 0
      const sendNextCall = Effect.gen(function* () {
        const chosen = planNextCall(pending)
        const entries = chosen.map((i) => pending[i]!)
        calls++
        const result = yield* Effect.tryPromise({
          try: () =>
            client.send(
              new PutRecordsCommand({
                StreamName: stream,
                Records: entries.map((r) => ({ Data: r.data, PartitionKey: r.partitionKey, ExplicitHashKey: r.explicitHashKey }))
              })
            ),
          catch: (error) =>
            new PublishError({ stream, message: `PutRecords: ${(error as Error)?.name}: ${(error as Error)?.message}`, retryable: isRetryable(error) })
        })
        const outcomes: ReadonlyArray<PutRecordsResultEntry> = result.Records ?? []
        const accepted = new Set(chosen.filter((_, j) => outcomes[j] && !outcomes[j]!.ErrorCode))
        pending = pending.filter((_, i) => !accepted.has(i))
        const failed = chosen.length - accepted.size
        if (failed > 0) {
          const firstError = outcomes.find((o) => o.ErrorCode)
          return yield* new PublishError({
            stream,
            message: `${failed} of ${chosen.length} records failed (${firstError?.ErrorCode ?? "no result"}: ${firstError?.ErrorMessage ?? ""})`,
            retryable: true
          })
        }
      })
      const sendWithRetry = sendNextCall.pipe(
        Effect.tapError(() => Effect.sync(() => void retries++)),
        Effect.retry(schedule)
      )
      while (pending.length > 0) yield* sendWithRetry
      return { calls, retries, records: records.length }
    })

  const shards = () =>
    Effect.tryPromise({
      try: async () => {
        const out: Array<ShardInfo> = []
        let token: string | undefined
        do {
          const page = await client.send(new ListShardsCommand(token ? { NextToken: token } : { StreamName: stream }))
          for (const shard of page.Shards ?? []) {
            // Closed shards (after a reshard) have an ending sequence number: skip them.
            if (!shard.SequenceNumberRange?.EndingSequenceNumber) out.push({ shardId: shard.ShardId!, startingHashKey: shard.HashKeyRange!.StartingHashKey! })
          }
          token = page.NextToken
        } while (token)
        return out
      },
      catch: (error) => new PublishError({ stream, message: `ListShards: ${(error as Error)?.message}`, retryable: isRetryable(error) })
    }).pipe(Effect.retry(schedule))

  return { stream, publish, shards }
}

export class KinesisPublisher extends Context.Service<KinesisPublisher, KinesisPublisherShape>()("totes/shared/KinesisPublisher") {
  static readonly layer = Layer.sync(KinesisPublisher, () =>
    KinesisPublisher.of(makeKinesisPublisher({ stream: readConfig(StreamName), client: kinesisClient() }))
  )

  /** In-memory stream: records land in `sink` in acceptance order, one shard. */
  static readonly layerTest = (sink: Array<PendingRecord>) =>
    Layer.succeed(
      KinesisPublisher,
      KinesisPublisher.of({
        stream: "test",
        publish: (records) => Effect.sync(() => (sink.push(...records), { calls: 1, retries: 0, records: records.length })),
        shards: () => Effect.succeed([{ shardId: "shardId-000000000000", startingHashKey: "0" }])
      })
    )
}

