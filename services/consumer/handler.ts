/**
 * The consumer Lambda: Kinesis event source mapping → warehouse. One ManagedRuntime per container
 * holds the resources (connection pool, lake client, a migrated warehouse schema); it is built on
 * the first invocation, shared by the next ones and disposed (pool closed) when the container
 * shuts down. Batches of one shard arrive sequentially.
 */
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from "aws-lambda"
import { Context, Effect, Layer, ManagedRuntime, Schema } from "effect"
import pg from "pg"
import { s3Client } from "../shared/s3-client.ts"
import { explainConnectionError } from "../shared/database-connection.ts"
import { LakeBucket, PipelineSchema, readConfig, StreamName, WarehouseSchema } from "../shared/config.ts"
import { makeLakeStore } from "../shared/lake-store.ts"
import { warehouseUrlFromEnvOrSecret } from "../shared/warehouse-url.ts"
import { migrateWarehouse } from "../warehouse/migrate.ts"
import { loggerLayer } from "../shared/logger.ts"
import { processForLambda, type ConsumerDeps } from "./process-batch.ts"

/** The container could not get its resources (secret, warehouse): the invocation fails and the next one tries again. */
export class ConsumerStartFailed extends Schema.TaggedError<ConsumerStartFailed>()("ConsumerStartFailed", {
  message: Schema.String
}) {}

const startFailed = (step: string) => (cause: unknown) => new ConsumerStartFailed({ message: `consumer start-up: ${step}: ${(cause as Error)?.message ?? String(cause)}` })

/** What every invocation of one container shares. */
export class ConsumerResources extends Context.Service<ConsumerResources, ConsumerDeps>()("totes/consumer/ConsumerResources") {
  /** The pool (closed with the runtime), the lake client, and the warehouse schema (idempotent, locked migrations). */
  static readonly layer = Layer.effect(
    ConsumerResources,
    Effect.gen(function* () {
      // The URL (with its password) comes from Secrets Manager in AWS, never from a plain environment variable.
      const connectionString = yield* Effect.tryPromise({ try: () => warehouseUrlFromEnvOrSecret(), catch: startFailed("reading the warehouse URL") })
      const pool = yield* Effect.acquireRelease(
        // pipeline: a batch is sent as one round trip (services/warehouse/apply.ts).
        Effect.sync(() => new pg.Pool({ connectionString, max: 2, application_name: "totes-consumer", pipeline: true } as pg.PoolConfig)),
        (pool) => Effect.promise(() => pool.end())
      )
      // An idle connection dropped by a warehouse restart or failover must not crash the container.
      pool.on("error", () => {})
      const schemas = { schema: readConfig(WarehouseSchema), pipelineSchema: readConfig(PipelineSchema) }
      yield* Effect.tryPromise({
        try: async () => {
          const client = await pool.connect()
          try {
            await migrateWarehouse(client, schemas)
          } finally {
            client.release()
          }
        },
        catch: (cause) => explainConnectionError("warehouse", connectionString, cause) ?? startFailed("migrating the warehouse")(cause)
      })
      return ConsumerResources.of({ pool, lake: makeLakeStore(readConfig(LakeBucket), s3Client()), stream: readConfig(StreamName), ...schemas })
    })
  )
}

let runtime = ManagedRuntime.make(Layer.merge(ConsumerResources.layer, loggerLayer()))

export const handler = async (event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> => {
  const current = runtime
  try {
    return await current.runPromise(ConsumerResources.use((deps) => processForLambda(deps, event)))
  } catch (error) {
    // A runtime whose resources could not be built (warehouse unreachable at start) caches that
    // failure: start a new one, so the next invocation (the mapping retries) tries again.
    if (current.cachedContext === undefined && runtime === current) {
      runtime = ManagedRuntime.make(Layer.merge(ConsumerResources.layer, loggerLayer()))
      void current.dispose()
    }
    throw error
  }
}

/** Closes the container's pool; Lambda sends SIGTERM before it shuts a container down. */
export const disposeConsumerRuntime = (): Promise<void> => runtime.dispose()

process.once("SIGTERM", () => void disposeConsumerRuntime())
