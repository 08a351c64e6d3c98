/**
 * Creates the AWS resources the pipeline expects (what `infra/` declares in AWS) on the local
 * servers: the change stream, the lake bucket and the checkpoint table. Idempotent.
 */
import { CreateTableCommand, DescribeTableCommand, ResourceInUseException } from "@aws-sdk/client-dynamodb"
import { CreateStreamCommand, DescribeStreamSummaryCommand, ResourceInUseException as StreamInUse } from "@aws-sdk/client-kinesis"
import { BucketAlreadyOwnedByYou, CreateBucketCommand } from "@aws-sdk/client-s3"
import { dynamoClient, kinesisClient, s3Client } from "../../services/shared/aws-clients.ts"

type Env = Record<string, string | undefined>

export const createStream = async (env: Env, name: string, shards: number) => {
  const kinesis = kinesisClient(env)
  try {
    await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }))
  } catch (error) {
    if (!(error instanceof StreamInUse)) throw error
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    const summary = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }))
    if (summary.StreamDescriptionSummary?.StreamStatus === "ACTIVE") break
    await new Promise((r) => setTimeout(r, 50))
  }
  kinesis.destroy()
}

export const createBucket = async (env: Env, name: string) => {
  const s3 = s3Client(env)
  try {
    await s3.send(new CreateBucketCommand({ Bucket: name }))
  } catch (error) {
    if (!(error instanceof BucketAlreadyOwnedByYou) && (error as Error).name !== "BucketAlreadyExists") throw error
  }
  s3.destroy()
}

/** Checkpoint table: one item per checkpoint, key `pk` (see contracts/checkpoint.ts). */
export const createCheckpointTable = async (env: Env, name: string) => {
  const dynamo = dynamoClient(env)
  try {
    await dynamo.send(
      new CreateTableCommand({
        TableName: name,
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST"
      })
    )
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    const table = await dynamo.send(new DescribeTableCommand({ TableName: name }))
    if (table.Table?.TableStatus === "ACTIVE") break
    await new Promise((r) => setTimeout(r, 50))
  }
  dynamo.destroy()
}

export const provisionPipeline = async (env: Env, options: { stream: string; bucket: string; table: string; shards: number }) => {
  await Promise.all([
    createStream(env, options.stream, options.shards),
    createBucket(env, options.bucket),
    createCheckpointTable(env, options.table)
  ])
}
