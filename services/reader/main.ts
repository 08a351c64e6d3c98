/** Builds a reader from configuration variables (locally `.totes/stack.env`, in AWS the sst links). */
import type { KinesisClient } from "@aws-sdk/client-kinesis"
import { Effect } from "effect"
import { kinesisClient, s3Client } from "../shared/aws-clients.ts"
import { CheckpointStore } from "../shared/checkpoint-store.ts"
import { FailoverSlot, HeartbeatIntervalMs, LakeBucket, MaxRecordBytes, PublicationName, readConfig, reveal, SlotName, SourceDatabaseUrl, StreamName, Tables } from "../shared/config.ts"
import { makeKinesisPublisher } from "../shared/kinesis/publisher.ts"
import { makeLakeStore } from "../shared/lake-store.ts"
import { Reader, type ReaderOptions } from "./reader.ts"

type Env = Record<string, string | undefined>

export const readerFromEnv = (env: Env = process.env, overrides: Partial<ReaderOptions> & { kinesis?: KinesisClient } = {}): Reader => {
  const { kinesis, ...rest } = overrides
  return new Reader({
    sourceUrl: reveal(readConfig(SourceDatabaseUrl, env)),
    slot: readConfig(SlotName, env),
    publication: readConfig(PublicationName, env),
    tables: readConfig(Tables, env),
    publisher: makeKinesisPublisher({ stream: readConfig(StreamName, env), client: kinesis ?? kinesisClient(env) }),
    checkpoints: Effect.runSync(CheckpointStore.make(env)),
    lake: makeLakeStore(readConfig(LakeBucket, env), s3Client(env)),
    maxRecordBytes: readConfig(MaxRecordBytes, env),
    heartbeatIntervalMs: readConfig(HeartbeatIntervalMs, env),
    failoverSlot: readConfig(FailoverSlot, env),
    ...rest
  })
}
