/**
 * Poison on the stream: undecodable records and events the warehouse rejects go to the lake's
 * dead-letter prefix with their reason, are counted, and never stop the shard, through both entry
 * points of the one consumer core (process-batch.ts): the local poller and the Lambda handler
 * itself, driven with the stream's own records as a Kinesis event.
 */
import { GetRecordsCommand, GetShardIteratorCommand, PutRecordsCommand } from "@aws-sdk/client-kinesis"
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3"
import type { KinesisStreamEvent } from "aws-lambda"
import { describe, expect, it, vi } from "vitest"
import { kinesisClient, s3Client } from "../../services/shared/aws-clients.ts"
import { partitionKeyFor } from "../../services/shared/kinesis/shard-map.ts"
import { toLambdaRecord } from "../../services/consumer/poller.ts"
import { processKinesisEvent } from "../../services/consumer/process-batch.ts"
import { LakeError, makeMemoryLakeStore } from "../../services/shared/lake-store.ts"
import { Effect } from "effect"
import pg from "pg"
import { changeEvent, heartbeatEvent } from "../fixtures/events.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { startPipeline } from "../support/pipeline.ts"
import { waitFor } from "../support/processes.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"

const put = async (env: Record<string, string>, records: ReadonlyArray<{ key: string; data: string }>) => {
  const kinesis = kinesisClient(env)
  await kinesis.send(new PutRecordsCommand({ StreamName: env.TOTES_STREAM, Records: records.map((r) => ({ PartitionKey: r.key, Data: Buffer.from(r.data) })) }))
  kinesis.destroy()
}

const deadLetters = async (env: Record<string, string>) => {
  const s3 = s3Client(env)
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: env.TOTES_LAKE_BUCKET, Prefix: "dead-letter/" }))
  const bodies = await Promise.all(
    (listed.Contents ?? []).map(async (o) => JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: env.TOTES_LAKE_BUCKET, Key: o.Key! }))).Body!.transformToString()))
  )
  s3.destroy()
  return bodies as Array<{ reason: string; sequenceNumber: string; data: string }>
}

/** Fits the catalogue's shapes (so no schema pause), but the warehouse rejects it: there is no 30 February. */
const brokenSalesOrder = (lsn: string) =>
  changeEvent("c", "sales_order", { commitLsn: lsn, index: 0, committedAt: "2024-03-01T10:00:00.000Z" }, {
    after: {
      sales_order_id: 1, created_at: "2024-03-01T10:00:00.000", last_updated: "2024-03-01T10:00:00.000", design_id: 1, staff_id: 1, counterparty_id: 1,
      units_sold: 1, unit_price: "1.00", currency_id: 1, agreed_delivery_date: "2024-02-30", agreed_payment_date: "2024-03-03", agreed_delivery_location_id: 1
    }
  })

const design = (id: number, name: string, lsn: string, lastUpdated = "2024-03-01T10:00:00.000") =>
  changeEvent("c", "design", { commitLsn: lsn, index: 0, committedAt: "2024-03-01T10:00:00.000Z" }, {
    after: { design_id: id, created_at: "2024-03-01T10:00:00.000", design_name: name, file_location: "/usr", file_name: `${name}.json`, last_updated: lastUpdated }
  })

/** The stream's records as the event source mapping hands them to the Lambda: raw (aggregated), in order. */
const streamAsLambdaEvent = async (env: Record<string, string>): Promise<KinesisStreamEvent> => {
  const kinesis = kinesisClient(env)
  const shardId = "shardId-000000000000"
  let iterator = (await kinesis.send(new GetShardIteratorCommand({ StreamName: env.TOTES_STREAM, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator
  const records: Array<KinesisStreamEvent["Records"][number]> = []
  while (iterator) {
    const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator }))
    for (const record of page.Records ?? []) records.push(toLambdaRecord(env.TOTES_STREAM!, "eu-west-2", shardId, record))
    if ((page.Records ?? []).length === 0) break
    iterator = page.NextShardIterator
  }
  kinesis.destroy()
  return { Records: records }
}

/** A Lambda container configured with `env`: a fresh module, so a fresh runtime. */
const lambdaHandler = async (env: Record<string, string>) => {
  Object.assign(process.env, env)
  vi.resetModules()
  return await import("../../services/consumer/handler.ts")
}

// The same behaviour through both entry points: the poller (local, tests) and the Lambda handler (AWS).
describe.each(["the local poller", "the Lambda handler"] as const)("poison records through %s", (entry) => {
  it("are dead-lettered with their reason while every good record is applied", async () => {
    const env = await isolatedPipelineEnv({ shards: 1 })
    const pipeline = await startPipeline(env, { reader: false, consumer: entry === "the local poller" })
    const key = partitionKeyFor("design", { design_id: 1 })
    await put(env, [
      { key, data: JSON.stringify(design(1, "Wooden", "0/1000")) },
      { key, data: "{ this is not json" },
      { key, data: JSON.stringify({ ...design(2, "Bronze", "0/1100"), schemaVersion: 99 }) },
      // Decodes, but the warehouse rejects it (not a timestamp): the batch throws, is bisected, this one is set aside.
      { key, data: JSON.stringify(brokenSalesOrder("0/1200")) },
      { key, data: JSON.stringify(design(4, "Steel", "0/1300")) }
    ])
    if (entry === "the local poller") {
      await waitFor(async () => (await deadLetters(env)).length === 3 && pipeline.consumer!.poller.stats.records >= 2, 20_000, "dead letters and good records").catch(async (e) => {
        throw new Error(`${e.message}: ${JSON.stringify(pipeline.consumer!.poller.stats)} ${JSON.stringify((await deadLetters(env)).map((d) => d.reason))}`)
      })
      expect(pipeline.consumer!.poller.stats.deadLettered).toBe(3)
      expect(pipeline.consumer!.poller.stats.bisections).toBeGreaterThan(0)
    } else {
      const { handler, disposeConsumerRuntime } = await lambdaHandler(env)
      // One invocation: the handler sets the poison aside itself, so the mapping has nothing to retry.
      expect(await handler(await streamAsLambdaEvent(env))).toEqual({ batchItemFailures: [] })
      await disposeConsumerRuntime()
    }
    const warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
    const names = (await warehouse.query("SELECT design_name FROM dim_design ORDER BY design_id")).rows.map((r) => r.design_name)
    expect(names).toEqual(["Wooden", "Steel"])
    const reasons = (await deadLetters(env)).map((d) => d.reason).sort()
    expect(reasons).toHaveLength(3)
    expect(reasons[0]).toMatch(/processing failed 2 times/)
    expect(reasons[1]).toMatch(/undecodable: not JSON/)
    expect(reasons[2]).toMatch(/undecodable: schemaVersion: unsupported schemaVersion 99/)
    await warehouse.end()
    await pipeline.stop()
  })
})

describe("claim checks the lake cannot serve", () => {
  it("retry the batch while the lake is unavailable; dead-letter only what the lake says is missing", async () => {
    const env = await isolatedPipelineEnv({ shards: 1 })
    const pipeline = await startPipeline(env, { reader: false, consumer: false })
    const oversize = { ...design(9, "Huge", "0/3000"), after: null, claimCheck: { bucket: env.TOTES_LAKE_BUCKET!, key: "claims/0000000000003000/0_3000_0.json", bytes: 2_000_000 } }
    const record = toLambdaRecord(env.TOTES_STREAM!, "eu-west-2", "shardId-000000000000", {
      SequenceNumber: "1",
      PartitionKey: "k",
      Data: Buffer.from(JSON.stringify(oversize))
    })
    const pool = new pg.Pool({ connectionString: env.WAREHOUSE_DATABASE_URL })
    const unavailable = makeMemoryLakeStore()
    const failingLake = { ...unavailable, get: (key: string) => Effect.fail(new LakeError({ key, message: "ServiceUnavailable: try again" })) }
    const retried = await Effect.runPromise(processKinesisEvent({ pool, lake: failingLake, stream: env.TOTES_STREAM! }, { Records: [record] }))
    expect(retried.response.batchItemFailures).toEqual([{ itemIdentifier: "1" }])
    expect(retried.deadLettered).toBe(0)
    const missing = await Effect.runPromise(processKinesisEvent({ pool, lake: makeMemoryLakeStore(), stream: env.TOTES_STREAM! }, { Records: [record] }))
    expect(missing.response.batchItemFailures).toEqual([])
    expect(missing.deadLettered).toBe(1)
    await pool.end()
    await pipeline.stop()
  })
})

describe("the Lambda handler", () => {
  it("applies a Kinesis event built from the stream and reports no failures", async () => {
    const env = await isolatedPipelineEnv({ shards: 1 })
    const pipeline = await startPipeline(env, { reader: false, consumer: false }) // migrations only
    await put(env, [
      { key: "a", data: JSON.stringify(design(7, "Lambda", "0/2000")) },
      { key: "b", data: JSON.stringify(heartbeatEvent("0/2100", "2024-03-01T10:00:01.000Z")) }
    ])
    const records = await readWholeStream(env)
    const { handler, disposeConsumerRuntime } = await lambdaHandler(env)
    const event: KinesisStreamEvent = {
      Records: records.map((r) =>
        toLambdaRecord(env.TOTES_STREAM!, "eu-west-2", r.shardId, {
          SequenceNumber: r.sequenceNumber,
          PartitionKey: r.partitionKey,
          Data: Buffer.from(JSON.stringify(r.record))
        })
      )
    }
    expect(await handler(event)).toEqual({ batchItemFailures: [] })
    // A poison record in a Lambda batch is set aside by the handler itself; the good ones are applied.
    const poisoned: KinesisStreamEvent = {
      Records: [brokenSalesOrder("0/2200"), design(8, "AfterPoison", "0/2300")].map((e, i) =>
        toLambdaRecord(env.TOTES_STREAM!, "eu-west-2", "shardId-000000000000", { SequenceNumber: String(900 + i), PartitionKey: "p", Data: Buffer.from(JSON.stringify(e)) })
      )
    }
    expect(await handler(poisoned)).toEqual({ batchItemFailures: [] })
    expect((await deadLetters(env)).map((d) => d.sequenceNumber)).toEqual(["900"])
    const warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
    expect((await warehouse.query("SELECT design_name FROM dim_design ORDER BY design_id")).rows).toEqual([{ design_name: "Lambda" }, { design_name: "AfterPoison" }])
    expect((await warehouse.query("SELECT consistent_through_lsn::text AS lsn FROM pipeline_freshness")).rows[0].lsn).toBe("0/2100")
    await warehouse.end()
    await disposeConsumerRuntime()
    await pipeline.stop()
  })
})
