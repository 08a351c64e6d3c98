/**
 * The consumer Lambda: Kinesis event source mapping → warehouse. One module-level runtime
 * (connection pool, lake client) per container; batches of one shard arrive sequentially.
 */
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from "aws-lambda"
import pg from "pg"
import { s3Client } from "../shared/aws-clients.ts"
import { LakeBucket, PipelineSchema, readConfig, StreamName, WarehouseSchema } from "../shared/config.ts"
import { makeLakeStore } from "../shared/lake-store.ts"
import { warehouseUrlFromEnvOrSecret } from "../shared/warehouse-url.ts"
import { migrateWarehouse } from "../warehouse/migrate.ts"
import { processForLambda, type ConsumerDeps } from "./process-batch.ts"

let deps: Promise<ConsumerDeps> | undefined

/** Once per container: the pool, the lake client, and the warehouse schema (idempotent, locked migrations). */
const runtime = (): Promise<ConsumerDeps> =>
  (deps ??= (async () => {
    // The URL (with its password) comes from Secrets Manager in AWS, never from a plain environment variable.
    // pipeline: a batch is sent as one round trip (services/warehouse/apply.ts).
    const pool = new pg.Pool({ connectionString: await warehouseUrlFromEnvOrSecret(), max: 2, application_name: "totes-consumer", pipeline: true } as pg.PoolConfig)
    // An idle connection dropped by a warehouse restart or failover must not crash the container.
    pool.on("error", () => {})
    const schemas = { schema: readConfig(WarehouseSchema), pipelineSchema: readConfig(PipelineSchema) }
    const client = await pool.connect()
    try {
      await migrateWarehouse(client, schemas)
    } finally {
      client.release()
    }
    return { pool, lake: makeLakeStore(readConfig(LakeBucket), s3Client()), stream: readConfig(StreamName), ...schemas }
  })().catch((error) => {
    deps = undefined // try again on the next invocation
    throw error
  }))

export const handler = async (event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> =>
  processForLambda(await runtime(), event)
