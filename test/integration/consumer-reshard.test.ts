/**
 * The local poller follows a reshard the way the Lambda's event source mapping does: it lists the
 * shards again while it runs, reads a parent shard to its end before its children, and registers
 * every shard so that freshness (consistent_through) waits for the children's heartbeats instead
 * of running ahead of them. Real kinesalite SplitShard, real reader, real warehouse.
 */
import { DescribeStreamSummaryCommand, SplitShardCommand, type KinesisClient, type Shard } from "@aws-sdk/client-kinesis"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect } from "effect"
import { consumerFromEnv, migrateFromEnv, type LocalConsumer } from "../../services/consumer/main.ts"
import { toLambdaRecord } from "../../services/consumer/poller.ts"
import { processKinesisEvent } from "../../services/consumer/process-batch.ts"
import { makeMemoryLakeStore } from "../../services/shared/lake-store.ts"
import { migrateWarehouse } from "../../services/warehouse/migrate.ts"
import { heartbeatEvent } from "../fixtures/events.ts"
import { readerFromEnv } from "../../services/reader/main.ts"
import type { Reader } from "../../services/reader/reader.ts"
import { kinesisClient } from "../../services/shared/kinesis-client.ts"
import { listShards } from "../../services/shared/kinesis/list-shards.ts"
import { waitCaughtUp } from "../../services/status/status.ts"
import { generateTotesys } from "../../tools/source/generate.ts"
import { waitFor } from "../support/processes.ts"
import { waitDurable } from "../support/readers.ts"
import { connect, freshDatabase, isolatedPipelineEnv } from "../support/stack.ts"

describe("the local poller follows a reshard", () => {
  let env: Record<string, string>
  let source: pg.Client
  let warehouse: pg.Client
  let kinesis: KinesisClient
  let reader: Reader
  let consumer: LocalConsumer | undefined
  const stopConsumer = new AbortController()
  let polling: Promise<void> | undefined
  /** Shard ids in the order their batches were applied. */
  const applied: Array<string> = []

  const split = async (shard: Shard): Promise<ReadonlyArray<string>> => {
    const low = BigInt(shard.HashKeyRange!.StartingHashKey!)
    const high = BigInt(shard.HashKeyRange!.EndingHashKey!)
    await kinesis.send(new SplitShardCommand({ StreamName: env.TOTES_STREAM!, ShardToSplit: shard.ShardId!, NewStartingHashKey: ((low + high) / 2n).toString() }))
    await waitFor(
      async () => (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: env.TOTES_STREAM! }))).StreamDescriptionSummary?.StreamStatus === "ACTIVE",
      30_000,
      "the stream active after the split"
    )
    return (await listShards(kinesis, env.TOTES_STREAM!)).filter((s) => s.ParentShardId === shard.ShardId).map((s) => s.ShardId!)
  }
  const caughtUp = () => waitCaughtUp({ source, warehouse }, { timeoutMs: 90_000, pollMs: 100 })
  /** The warehouse's current sales orders and staff names equal the source's. */
  const expectWarehouseEqualsSource = async () => {
    const orders = "SELECT sales_order_id, units_sold::int AS units_sold FROM sales_order ORDER BY sales_order_id"
    const current = "SELECT sales_order_id, units_sold::int AS units_sold FROM fact_sales_order_current ORDER BY sales_order_id"
    expect((await warehouse.query(current)).rows).toEqual((await source.query(orders)).rows)
    const staff = "SELECT staff_id, first_name FROM staff ORDER BY staff_id"
    expect((await warehouse.query("SELECT staff_id, first_name FROM dim_staff ORDER BY staff_id")).rows).toEqual((await source.query(staff)).rows)
  }
  const shardPositions = async () =>
    Object.fromEntries(
      (await warehouse.query("SELECT shard_id, ended FROM totes.shard_position WHERE stream = $1", [env.TOTES_STREAM])).rows.map((r) => [r.shard_id, r.ended])
    )

  beforeAll(async () => {
    env = await isolatedPipelineEnv({ shards: 2 })
    source = await connect(env.SOURCE_DATABASE_URL!)
    await generateTotesys(source, { seed: "reshard", days: 3 })
    await migrateFromEnv(env)
    warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
    kinesis = kinesisClient(env)
    reader = readerFromEnv(env, { heartbeatIntervalMs: 200, statusIntervalMs: 1_000, shardRefreshMs: 300 })
    reader.start().catch(() => {})
    await waitFor(() => {
      if (reader.error) throw reader.error
      return reader.stats.durableLsn !== null
    }, 120_000, "the reader's initial snapshot")
  })

  afterAll(async () => {
    await reader?.stop()
    stopConsumer.abort()
    await polling?.catch(() => {})
    await consumer?.close()
    kinesis?.destroy()
    await source?.end()
    await warehouse?.end()
  })

  it("reads a parent shard to its end before its children, which it reads too", async () => {
    // Changes on the two original shards, then a split, then newer changes of the same rows:
    // those of the split shard's rows now travel on its children.
    await source.query("UPDATE sales_order SET units_sold = units_sold + 1")
    await source.query("UPDATE staff SET first_name = first_name || ' (before)'")
    await waitDurable(reader, source)
    const [parent] = await listShards(kinesis, env.TOTES_STREAM!)
    const children = await split(parent!)
    expect(children).toHaveLength(2)
    await source.query("UPDATE sales_order SET units_sold = units_sold * 2")
    await source.query("UPDATE staff SET first_name = replace(first_name, ' (before)', ' (after)')")
    await waitDurable(reader, source)

    // The poller starts now: it lists the parent and its children at once.
    consumer = consumerFromEnv(env, { idleWaitMs: 50, shardRefreshMs: 300, onBatch: (shardId) => applied.push(shardId) })
    polling = consumer.poller.run(stopConsumer.signal)
    await caughtUp()
    await expectWarehouseEqualsSource()

    const lastOfParent = applied.lastIndexOf(parent!.ShardId!)
    const firstOfChildren = Math.min(...children.map((c) => applied.indexOf(c)).filter((i) => i >= 0))
    expect(lastOfParent).toBeGreaterThanOrEqual(0)
    expect(children.every((c) => applied.includes(c))).toBe(true)
    expect(firstOfChildren).toBeGreaterThan(lastOfParent)
    const positions = await shardPositions()
    expect(positions[parent!.ShardId!]).toBe(true) // drained and retired
    for (const child of children) expect(positions[child]).toBe(false)
  })

  it("lists the shards again while it runs: a later split's children are read, and freshness waits for them", async () => {
    const open = (await listShards(kinesis, env.TOTES_STREAM!)).filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber)
    const original = open.find((s) => !s.ParentShardId)! // the second original shard, not split yet
    const children = await split(original)
    await source.query("UPDATE sales_order SET units_sold = units_sold + 1000")
    await source.query("UPDATE staff SET first_name = first_name || ' again'")
    await caughtUp()
    await expectWarehouseEqualsSource()
    expect(children.every((c) => applied.includes(c))).toBe(true)
    const positions = await shardPositions()
    expect(positions[original.ShardId!]).toBe(true)
    for (const child of children) expect(positions[child]).toBe(false)
    expect(consumer!.poller.stats.shards).toBe(6)
  })
})

describe("shards listed by the reader's heartbeats (the Lambda's path)", () => {
  it("are registered by the consumer core, so freshness waits for a shard whose first batch has not come", async () => {
    const url = await freshDatabase("shards")
    const warehouse = await connect(url)
    await migrateWarehouse(warehouse)
    const pool = new pg.Pool({ connectionString: url, max: 4 })
    const deps = { pool, lake: makeMemoryLakeStore(), stream: "totes-changes" }
    const shards = ["shardId-000000000000", "shardId-000000000001"]
    const heartbeatOn = (shardId: string, lsn: string) =>
      toLambdaRecord(deps.stream, "eu-west-2", shardId, {
        SequenceNumber: "1",
        PartitionKey: "heartbeat",
        Data: Buffer.from(JSON.stringify({ ...heartbeatEvent(lsn, "2026-11-26T10:00:00.000Z"), id: `heartbeat:${shardId}:${lsn}`, shards }))
      })
    const freshness = async () => (await warehouse.query("SELECT consistent_through_lsn::text AS lsn FROM pipeline_freshness")).rows[0].lsn as string | null
    const registered = async () => (await warehouse.query("SELECT shard_id, heartbeat_lsn::text AS lsn FROM totes.shard_position ORDER BY shard_id")).rows
    try {
      await Effect.runPromise(processKinesisEvent(deps, { Records: [heartbeatOn(shards[0]!, "0/100")] }))
      expect(await registered()).toEqual([
        { shard_id: shards[0], lsn: "0/100" },
        { shard_id: shards[1], lsn: null }
      ])
      expect(await freshness()).toBeNull() // not 0/100: shard 1 has delivered nothing yet
      await Effect.runPromise(processKinesisEvent(deps, { Records: [heartbeatOn(shards[1]!, "0/90")] }))
      expect(await freshness()).toBe("0/90")

      // Two shards' first batches at once, each listing both: no deadlock, both applied.
      await warehouse.query("TRUNCATE totes.shard_position")
      const both = await Promise.all(shards.map((shardId) => Effect.runPromise(processKinesisEvent(deps, { Records: [heartbeatOn(shardId, "0/200")] }))))
      expect(both.map((outcome) => outcome.response.batchItemFailures)).toEqual([[], []])
      expect(await freshness()).toBe("0/200")
    } finally {
      await pool.end()
      await warehouse.end()
    }
  })
})
