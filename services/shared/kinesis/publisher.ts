/**
 * The Kinesis adapter for producers: one PutRecords call with per-entry outcomes, and the list of
 * open shards. Retry policy belongs to the caller (the reader's lanes wait out an outage with
 * capped backoff); the SDK client is built with `maxAttempts: 1` so retries are not stacked.
 */
import { KinesisClient, PutRecordsCommand } from "@aws-sdk/client-kinesis"
import { Context, Effect, Layer, Schedule, Schema } from "effect"
import { kinesisClient } from "../aws-clients.ts"
import { readConfig, StreamName } from "../config.ts"
import { deaggregate } from "./aggregation.ts"
import { isOpenShard, listShards } from "./list-shards.ts"
import type { ShardInfo } from "./shard-map.ts"

export class PublishError extends Schema.TaggedError<PublishError>()("PublishError", {
  stream: Schema.String,
  message: Schema.String,
  /** Throttling, timeouts, 5xx, connection errors: waiting helps. */
  retryable: Schema.Boolean
}) {}

export interface PutEntry {
  readonly partitionKey: string
  readonly explicitHashKey?: string | undefined
  readonly data: Uint8Array
}

export type PutOutcome =
  | { readonly _tag: "Accepted"; readonly shardId: string; readonly sequenceNumber: string }
  | { readonly _tag: "Failed"; readonly errorCode: string; readonly message: string }

export interface KinesisPublisherShape {
  readonly stream: string
  /** One PutRecords call; the outcome of every entry, in order. Fails only if the call itself failed. */
  readonly put: (entries: ReadonlyArray<PutEntry>) => Effect.Effect<ReadonlyArray<PutOutcome>, PublishError>
  /** The open shards (closed parents of a reshard are left out). */
  readonly shards: () => Effect.Effect<ReadonlyArray<ShardInfo>, PublishError>
}

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

export const isRetryableKinesisError = (error: unknown): boolean => {
  const e = error as { name?: string; $retryable?: unknown; code?: string; $metadata?: { httpStatusCode?: number } }
  return (
    RETRYABLE_ERRORS.has(e?.name ?? "") ||
    Boolean(e?.$retryable) ||
    ["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENOTFOUND", "EAI_AGAIN"].includes(e?.code ?? "") ||
    (e?.$metadata?.httpStatusCode ?? 0) >= 500
  )
}

const callError = (stream: string, what: string) => (error: unknown) =>
  new PublishError({ stream, message: `${what}: ${(error as Error)?.name}: ${(error as Error)?.message}`, retryable: isRetryableKinesisError(error) })

/** Capped exponential backoff with jitter, without end: an outage is waited out. */
export const kinesisBackoff = Schedule.min([Schedule.exponential("100 millis", 2), Schedule.spaced("5 seconds")]).pipe(Schedule.jittered)

export const listOpenShards = (client: KinesisClient, stream: string): Effect.Effect<ReadonlyArray<ShardInfo>, PublishError> =>
  Effect.tryPromise({
    try: async () =>
      (await listShards(client, stream))
        .filter(isOpenShard)
        .map((shard) => ({ shardId: shard.ShardId!, startingHashKey: shard.HashKeyRange!.StartingHashKey!, endingHashKey: shard.HashKeyRange!.EndingHashKey! })),
    catch: callError(stream, "ListShards")
  })

export const makeKinesisPublisher = (options: { stream: string; client: KinesisClient }): KinesisPublisherShape => {
  const { stream, client } = options
  const put = (entries: ReadonlyArray<PutEntry>) =>
    Effect.tryPromise({
      try: () =>
        client.send(
          new PutRecordsCommand({
            StreamName: stream,
            Records: entries.map((e) => ({ Data: e.data, PartitionKey: e.partitionKey, ExplicitHashKey: e.explicitHashKey }))
          })
        ),
      catch: callError(stream, "PutRecords")
    }).pipe(
      Effect.map((result) =>
        entries.map((_, i): PutOutcome => {
          const r = result.Records?.[i]
          if (!r) return { _tag: "Failed", errorCode: "NoResult", message: "PutRecords returned no result for this entry" }
          return r.ErrorCode
            ? { _tag: "Failed", errorCode: r.ErrorCode, message: r.ErrorMessage ?? "" }
            : { _tag: "Accepted", shardId: r.ShardId!, sequenceNumber: r.SequenceNumber! }
        })
      )
    )
  return { stream, put, shards: () => listOpenShards(client, stream) }
}

export class KinesisPublisher extends Context.Service<KinesisPublisher, KinesisPublisherShape>()("totes/shared/kinesis/KinesisPublisher") {
  static readonly layer = Layer.sync(KinesisPublisher, () =>
    KinesisPublisher.of(makeKinesisPublisher({ stream: readConfig(StreamName), client: kinesisClient() }))
  )

  /** In-memory stream of `shards` shards: accepted user records land in `sink`, deaggregated, in order. */
  static readonly layerTest = (sink: Array<PutEntry>, shards = 1) => Layer.succeed(KinesisPublisher, KinesisPublisher.of(memoryPublisher(sink, shards)))
}

/** Evenly split hash key ranges, as CreateStream makes them. */
export const evenShards = (count: number): Array<ShardInfo> => {
  const space = 2n ** 128n
  return Array.from({ length: count }, (_, i) => ({
    shardId: `shardId-${String(i).padStart(12, "0")}`,
    startingHashKey: ((space * BigInt(i)) / BigInt(count)).toString(),
    endingHashKey: ((space * BigInt(i + 1)) / BigInt(count) - 1n).toString()
  }))
}

/** A publisher that accepts everything in memory (benchmarks, unit tests). */
export const memoryPublisher = (sink: Array<PutEntry> | undefined, shardCount = 1): KinesisPublisherShape => {
  const shards = evenShards(shardCount)
  let sequence = 0
  return {
    stream: "memory",
    put: (entries) =>
      Effect.sync(() =>
        entries.map((entry): PutOutcome => {
          if (sink) for (const user of deaggregate(entry.data, entry.partitionKey)) sink.push(user)
          const shard = shards.find((s) => BigInt(s.startingHashKey) <= BigInt(entry.explicitHashKey ?? "0") && BigInt(entry.explicitHashKey ?? "0") <= BigInt(s.endingHashKey))!
          return { _tag: "Accepted", shardId: shard.shardId, sequenceNumber: String(++sequence) }
        })
      ),
    shards: () => Effect.succeed(shards)
  }
}
