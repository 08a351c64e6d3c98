/**
 * The consumer Lambda: Kinesis event source mapping → warehouse. One module-level runtime
 * (connection pool, lake client) per container; batches of one shard arrive sequentially.
 */
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from "aws-lambda"
import pg from "pg"
import { s3Client } from "../shared/aws-clients.ts"
import { LakeBucket, PipelineSchema, readConfig, reveal, StreamName, WarehouseDatabaseUrl, WarehouseSchema } from "../shared/config.ts"
import { makeLakeStore } from "../shared/lake-store.ts"
import { processKinesisEvent, type ConsumerDeps } from "./process-batch.ts"

let deps: ConsumerDeps | undefined

const runtime = (): ConsumerDeps =>
  (deps ??= {
    pool: new pg.Pool({ connectionString: reveal(readConfig(WarehouseDatabaseUrl)), max: 2, application_name: "totes-consumer" }),
    lake: makeLakeStore(readConfig(LakeBucket), s3Client()),
    stream: readConfig(StreamName),
    schema: readConfig(WarehouseSchema),
    pipelineSchema: readConfig(PipelineSchema)
  })

export const handler = async (event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> => {
  const outcome = await processKinesisEvent(runtime(), event)
  return outcome.response
}
