import { CreateTableCommand, DescribeTableCommand, PutItemCommand, GetItemCommand } from "@aws-sdk/client-dynamodb"
import { DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand, PutRecordCommand } from "@aws-sdk/client-kinesis"
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { startPostgres } from "../../tools/local/postgres.ts"
import { dynamoClient, kinesisClient, s3Client } from "../../services/shared/aws-clients.ts"
import { connect, isolatedPipelineEnv, stackEnv } from "../support/stack.ts"

describe("local stack", () => {
  it("runs PostgreSQL with wal_level=logical and can create a pgoutput slot", async () => {
    const env = stackEnv()
    const client = await connect(env.SOURCE_DATABASE_URL!)
    try {
      const { rows } = await client.query("SHOW wal_level")
      expect(rows[0].wal_level).toBe("logical")
      const slot = `smoke_${Date.now()}`
      const created = await client.query("SELECT slot_name, lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')", [slot])
      expect(created.rows[0].slot_name).toBe(slot)
      await client.query("SELECT pg_drop_replication_slot($1)", [slot])
      const dbs = await client.query("SELECT datname FROM pg_database WHERE datname IN ('totesys','warehouse') ORDER BY 1")
      expect(dbs.rows.map((r) => r.datname)).toEqual(["totesys", "warehouse"])
    } finally {
      await client.end()
    }
  })

  it("answers the real Kinesis, DynamoDB and S3 SDK clients", async () => {
    const env = await isolatedPipelineEnv({ shards: 1 })
    const kinesis = kinesisClient(env)
    await kinesis.send(new PutRecordCommand({ StreamName: env.TOTES_STREAM, PartitionKey: "k", Data: Buffer.from("hello") }))
    const stream = await kinesis.send(new DescribeStreamCommand({ StreamName: env.TOTES_STREAM }))
    const shardId = stream.StreamDescription!.Shards![0]!.ShardId!
    const iterator = await kinesis.send(new GetShardIteratorCommand({ StreamName: env.TOTES_STREAM, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" }))
    const records = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator.ShardIterator }))
    expect(records.Records?.map((r) => Buffer.from(r.Data!).toString())).toEqual(["hello"])

    const dynamo = dynamoClient(env)
    await dynamo.send(new PutItemCommand({ TableName: env.TOTES_CHECKPOINT_TABLE, Item: { pk: { S: "x" }, v: { N: "1" } } }))
    const item = await dynamo.send(new GetItemCommand({ TableName: env.TOTES_CHECKPOINT_TABLE, Key: { pk: { S: "x" } } }))
    expect(item.Item?.v?.N).toBe("1")
    await dynamo.send(new CreateTableCommand({ TableName: `${env.TOTES_CHECKPOINT_TABLE}-2`, AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }], KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }))
    expect((await dynamo.send(new DescribeTableCommand({ TableName: `${env.TOTES_CHECKPOINT_TABLE}-2` }))).Table?.TableName).toBe(`${env.TOTES_CHECKPOINT_TABLE}-2`)

    const s3 = s3Client(env)
    for (let i = 0; i < 5; i++) await s3.send(new PutObjectCommand({ Bucket: env.TOTES_LAKE_BUCKET, Key: `raw/${i}.txt`, Body: `object ${i}` }))
    const keys: Array<string> = []
    let token: string | undefined
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: env.TOTES_LAKE_BUCKET, Prefix: "raw/", MaxKeys: 2, ContinuationToken: token }))
      keys.push(...(page.Contents ?? []).map((o) => o.Key!))
      token = page.NextContinuationToken
    } while (token)
    expect(keys.sort()).toEqual([0, 1, 2, 3, 4].map((i) => `raw/${i}.txt`))
    const body = await s3.send(new GetObjectCommand({ Bucket: env.TOTES_LAKE_BUCKET, Key: "raw/3.txt" }))
    expect(await body.Body!.transformToString()).toBe("object 3")
    kinesis.destroy()
    dynamo.destroy()
    s3.destroy()
  })

  it("says which service failed to start, with the tail of its log", async () => {
    const dir = mkdtempSync(join(tmpdir(), "totes-fail-"))
    try {
      const failure = await startPostgres({ dir, databases: [], settings: { shared_buffers: "not-a-size" } }).then(
        () => undefined,
        (error: Error) => error
      )
      expect(failure?.message).toMatch(/^postgres failed to start/)
      expect(failure?.message).toMatch(/--- last log lines of postgres ---/)
      expect(failure?.message).toMatch(/shared_buffers/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
