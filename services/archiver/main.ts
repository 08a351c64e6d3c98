/**
 * Builds an archiver from configuration variables (locally `.totes/stack.env`):
 * TOTES_STREAM, TOTES_LAKE_BUCKET, TOTES_CHECKPOINT_TABLE, the AWS endpoints, and
 * TOTES_ARCHIVER_FLUSH_BYTES / TOTES_ARCHIVER_FLUSH_MS (Firehose's buffering hints).
 */
import type { KinesisClient } from "@aws-sdk/client-kinesis"
import type { S3Client } from "@aws-sdk/client-s3"
import { Effect } from "effect"
import { kinesisClient, s3Client } from "../shared/aws-clients.ts"
import { CheckpointStore } from "../shared/checkpoint-store.ts"
import { ArchiverFlushBytes, ArchiverFlushMs, LakeBucket, readConfig, StreamName } from "../shared/config.ts"
import { makeLakeStore } from "../shared/lake-store.ts"
import { Archiver, type ArchiverOptions } from "./archiver.ts"

type Env = Record<string, string | undefined>

export const archiverFromEnv = (
  env: Env = process.env,
  overrides: Partial<ArchiverOptions> & { readonly kinesisClient?: KinesisClient; readonly s3?: S3Client } = {}
): Archiver => {
  const { kinesisClient: kinesis, s3, ...rest } = overrides
  return new Archiver({
    kinesis: kinesis ?? kinesisClient(env),
    lake: makeLakeStore(readConfig(LakeBucket, env), s3 ?? s3Client(env)),
    checkpoints: Effect.runSync(CheckpointStore.make(env)),
    stream: readConfig(StreamName, env),
    flushBytes: readConfig(ArchiverFlushBytes, env),
    flushMs: readConfig(ArchiverFlushMs, env),
    ...rest
  })
}
