/** Builds the local consumer (the poller playing the Lambda event-source mapping) from configuration. */
import type { KinesisClient } from "@aws-sdk/client-kinesis"
import { Effect } from "effect"
import pg from "pg"
import { kinesisClient, s3Client } from "../shared/aws-clients.ts"
import { CheckpointStore } from "../shared/checkpoint-store.ts"
import { LakeBucket, PipelineSchema, readConfig, reveal, StreamName, WarehouseDatabaseUrl, WarehouseSchema } from "../shared/config.ts"
import { makeLakeStore } from "../shared/lake-store.ts"
import { migrateWarehouse } from "../warehouse/migrate.ts"
import { Poller, type PollerOptions } from "./poller.ts"

type Env = Record<string, string | undefined>

export interface LocalConsumer {
  readonly poller: Poller
  readonly pool: pg.Pool
  readonly close: () => Promise<void>
}

export const consumerFromEnv = (
  env: Env = process.env,
  overrides: Partial<Omit<PollerOptions, "deps">> & { kinesis?: KinesisClient; onWarehouseRetry?: (error: unknown) => void } = {}
): LocalConsumer => {
  // pipeline: a batch is sent as one round trip (services/warehouse/apply.ts).
  const pool = new pg.Pool({ connectionString: reveal(readConfig(WarehouseDatabaseUrl, env)), max: 4, application_name: "totes-consumer", pipeline: true } as pg.PoolConfig)
  // A dropped connection of an idle pooled client must not crash the process (warehouse restarts).
  pool.on("error", () => {})
  const { kinesis, onWarehouseRetry, ...rest } = overrides
  const poller = new Poller({
    kinesis: kinesis ?? kinesisClient(env),
    checkpoints: Effect.runSync(CheckpointStore.make(env)),
    deps: {
      pool,
      lake: makeLakeStore(readConfig(LakeBucket, env), s3Client(env)),
      stream: readConfig(StreamName, env),
      schema: readConfig(WarehouseSchema, env),
      pipelineSchema: readConfig(PipelineSchema, env),
      ...(onWarehouseRetry ? { onWarehouseRetry } : {})
    },
    ...rest
  })
  return { poller, pool, close: () => pool.end() }
}

/** Creates or upgrades the warehouse schema (idempotent). */
export const migrateFromEnv = async (env: Env = process.env) => {
  const client = new pg.Client({ connectionString: reveal(readConfig(WarehouseDatabaseUrl, env)), application_name: "totes-migrate" })
  await client.connect()
  try {
    return await migrateWarehouse(client, { schema: readConfig(WarehouseSchema, env), pipelineSchema: readConfig(PipelineSchema, env) })
  } finally {
    await client.end()
  }
}
