/**
 * The bulk initial snapshot against the real Postgres: the February 2024 source (plus rows with
 * awkward text) read by the reader's COPY chunker into a lake, then merged set-wise into the
 * warehouse — compared with the row-by-row path it replaces: the reader's SELECT snapshot gives
 * the same events, and the set-wise merge the same warehouse as applying those events; a chunk
 * merged twice adds nothing; a change streamed after the snapshot wins over the chunk.
 */
import { Effect, Schedule } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ChangeEvent, SnapshotChunk, StreamRecord } from "../../contracts/change-event.ts"
import { TOTESYS_TABLES } from "../../contracts/totesys.ts"
import { processKinesisEvent } from "../../services/consumer/process-batch.ts"
import { toLambdaRecord } from "../../services/consumer/poller.ts"
import { chunkEvents, readChunkText } from "../../services/lake/snapshot-chunks.ts"
import { keyColumns, readTableSnapshot } from "../../services/reader/snapshot.ts"
import { readTableInChunks } from "../../services/reader/snapshot-copy.ts"
import { ShardMap } from "../../services/shared/kinesis/shard-map.ts"
import { LakeError, makeMemoryLakeStore, type LakeStoreShape } from "../../services/shared/lake-store.ts"
import { applyRecords } from "../../services/warehouse/apply.ts"
import { migrateWarehouse } from "../../services/warehouse/migrate.ts"
import { mergeSnapshotChunk } from "../../services/warehouse/snapshot-merge.ts"
import { initSourceSchema, loadCsvSnapshot } from "../../tools/source/totesys-db.ts"
import { dumpWarehouse } from "../fixtures/derive-star-schema.ts"
import { changeEvent } from "../fixtures/events.ts"
import { connect, freshDatabase, SNAPSHOT_FEB } from "../support/stack.ts"

const CONSISTENT_POINT = "0/3000000"
const COMMITTED_AT = "2024-02-23T12:00:00.000Z"
const SHARDS = 3

/** Three shards splitting the hash key space evenly. */
const shardMap = () => {
  const top = (1n << 128n) - 1n
  const step = (top + 1n) / BigInt(SHARDS)
  return new ShardMap(
    Array.from({ length: SHARDS }, (_, i) => ({
      shardId: `shardId-00000000000${i}`,
      startingHashKey: String(step * BigInt(i)),
      endingHashKey: String(i === SHARDS - 1 ? top : step * BigInt(i + 1) - 1n)
    }))
  )
}

interface Chunked {
  readonly pointer: SnapshotChunk
  readonly partitionKey: string
  readonly text: string
}

const newWarehouse = async (): Promise<{ url: string; client: pg.Client }> => {
  const url = await freshDatabase("wh")
  const client = await connect(url)
  await migrateWarehouse(client, {})
  return { url, client }
}

/** Compares two dumps table by table, showing only the rows that differ. */
const expectSameWarehouse = (actual: Record<string, Array<unknown>>, expected: Record<string, Array<unknown>>) => {
  expect(Object.keys(actual)).toEqual(Object.keys(expected))
  for (const table of Object.keys(expected)) {
    const want = new Set(expected[table]!.map((row) => JSON.stringify(row)))
    const got = new Set(actual[table]!.map((row) => JSON.stringify(row)))
    expect({ table, missing: [...want].filter((r) => !got.has(r)), unexpected: [...got].filter((r) => !want.has(r)) }).toEqual({ table, missing: [], unexpected: [] })
    expect(actual[table]!.length, table).toBe(expected[table]!.length)
  }
}

describe("bulk initial snapshot: COPY chunks in the lake, merged set-wise", () => {
  let source: pg.Client
  const lake = makeMemoryLakeStore()
  const chunks: Array<Chunked> = []
  /** The reader's row-by-row snapshot of the same source, in the same snapshot. */
  const rowEvents: Array<ChangeEvent> = []
  const map = shardMap()

  beforeAll(async () => {
    source = await connect(await freshDatabase("src"))
    await initSourceSchema(source)
    await loadCsvSnapshot(source, SNAPSHOT_FEB)
    // Text COPY must escape: tab, newline, carriage return, backslash, quotes, non-ASCII, NULLs.
    await source.query(
      `INSERT INTO address (address_line_1, address_line_2, district, city, postal_code, country, phone, created_at, last_updated)
       VALUES ($1, NULL, $2, 'Leeds', 'LS1', 'Côte d''Ivoire', '0113', '2024-02-24 10:00:00.5', '2024-02-24 10:00:00.5')`,
      ["1\tTab Street\nsecond line", "back\\slash \"quoted\" \r ünïcödé ✓"]
    )
    await source.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    for (const table of TOTESYS_TABLES) {
      const keys = await keyColumns(source, table)
      await readTableInChunks(source, {
        lake,
        database: "totesys",
        consistentPoint: CONSISTENT_POINT,
        committedAt: COMMITTED_AT,
        table,
        keyColumns: keys,
        chunkRows: 700,
        route: (partitionKey) => map.indexOfPartitionKey(partitionKey),
        shards: SHARDS,
        announce: async (pointer, partitionKey) => {
          chunks.push({ pointer, partitionKey, text: (await Effect.runPromise(readChunkText(lake, pointer))).toString("utf8") })
        },
        onChunk: () => {}
      })
      await readTableSnapshot(source, {
        database: "totesys",
        consistentPoint: CONSISTENT_POINT,
        committedAt: COMMITTED_AT,
        table,
        onBatch: async (events) => void rowEvents.push(...events)
      })
    }
    await source.query("COMMIT")
  }, 120_000)

  afterAll(async () => {
    await source?.end()
  })

  it("chunks hold exactly the events of the row-by-row snapshot, each chunk the rows of one shard", () => {
    expect(chunks.length).toBeGreaterThan(TOTESYS_TABLES.length) // the big tables take several chunks
    const fromChunks = chunks.flatMap(({ pointer, text }) => chunkEvents(pointer, text))
    expect(fromChunks.length).toBe(rowEvents.length)
    const byId = new Map(fromChunks.map((e) => [e.id, e]))
    expect(byId.size).toBe(fromChunks.length)
    for (const event of rowEvents) expect(byId.get(event.id), event.id).toEqual(event)
    for (const { pointer, partitionKey, text } of chunks) {
      const events = chunkEvents(pointer, text)
      expect(events.length).toBe(pointer.rows)
      const shard = map.indexOfPartitionKey(partitionKey)
      for (const event of events) expect(map.indexOfPartitionKey(`${event.source.table}:${Object.values(event.key!).join(",")}`)).toBe(shard)
    }
  })

  it("a set-wise merge gives the warehouse applying the events gives; merged again it adds nothing", async () => {
    const bulk = await newWarehouse()
    const rows = await newWarehouse()
    for (const { pointer, text } of chunks) {
      const merged = await mergeSnapshotChunk(bulk.client, pointer, Buffer.from(text))
      expect(merged._tag, `${pointer.source.table}: ${"reason" in merged ? merged.reason : ""}`).toBe("Merged")
      await applyRecords(rows.client, chunkEvents(pointer, text))
    }
    const dump = await dumpWarehouse(bulk.client)
    expectSameWarehouse(dump, await dumpWarehouse(rows.client))
    expect(dump.fact_sales_order!.length).toBeGreaterThan(1_000)

    // A pointer delivered twice: nothing is added or changed.
    for (const { pointer, text } of chunks) {
      const again = await mergeSnapshotChunk(bulk.client, pointer, Buffer.from(text))
      expect(again).toMatchObject({ _tag: "Merged", mirrorRows: 0, factRows: 0, dimensionRows: 0 })
    }
    expectSameWarehouse(await dumpWarehouse(bulk.client), dump)
    await bulk.client.end()
    await rows.client.end()
  })

  it("a change streamed after the consistent point wins over the chunk, whichever arrives first; the history keeps both", async () => {
    const salesChunks = chunks.filter((c) => c.pointer.source.table === "sales_order")
    const first = chunkEvents(salesChunks[0]!.pointer, salesChunks[0]!.text)[0]!
    const key = first.key!.sales_order_id as number
    const updated = { ...first.after!, units_sold: 99_999, last_updated: "2024-02-26T09:00:00.123" }
    const streamed: Array<StreamRecord> = [
      changeEvent("u", "sales_order", { commitLsn: "0/4000000", index: 0, committedAt: "2024-02-26T09:00:00.200Z" }, { after: updated })
    ]
    const bulk = await newWarehouse()
    const rows = await newWarehouse()
    await applyRecords(bulk.client, streamed) // the change first (another shard's consumer was faster) …
    for (const { pointer, text } of salesChunks) expect((await mergeSnapshotChunk(bulk.client, pointer, Buffer.from(text)))._tag).toBe("Merged")
    for (const { pointer, text } of salesChunks) await applyRecords(rows.client, chunkEvents(pointer, text)) // … or the chunk first
    await applyRecords(rows.client, streamed)

    const mirror = await bulk.client.query("SELECT image, source_lsn::text AS lsn FROM totes.mirror WHERE table_name = 'sales_order' AND key_id = $1", [key])
    expect(mirror.rows[0]).toEqual({ image: updated, lsn: "0/4000000" })
    const history = await bulk.client.query("SELECT change_op, units_sold FROM fact_sales_order WHERE sales_order_id = $1 ORDER BY source_lsn, source_seq", [key])
    expect(history.rows).toEqual([
      { change_op: "r", units_sold: first.after!.units_sold },
      { change_op: "u", units_sold: 99_999 }
    ])
    expectSameWarehouse(await dumpWarehouse(bulk.client), await dumpWarehouse(rows.client))
    await bulk.client.end()
    await rows.client.end()
  })

  it("through the consumer: a pointer delivered twice adds nothing; while the lake cannot answer the batch is retried, nothing skipped", async () => {
    const { url, client } = await newWarehouse()
    const pool = new pg.Pool({ connectionString: url, max: 2, pipeline: true } as pg.PoolConfig)
    const payments = chunks.filter((c) => c.pointer.source.table === "payment")
    const record = (chunk: Chunked, sequence: number) =>
      toLambdaRecord("stream", "eu-west-2", "shardId-000000000000", { SequenceNumber: String(sequence), PartitionKey: chunk.partitionKey, Data: Buffer.from(JSON.stringify(chunk.pointer)) })
    const failing: LakeStoreShape = { ...lake, get: (key: string) => Effect.fail(new LakeError({ key, message: "ServiceUnavailable: try again" })) }
    const down = await Effect.runPromise(processKinesisEvent({ pool, lake: failing, stream: "stream", retrySchedule: Schedule.recurs(1) }, { Records: [record(payments[0]!, 1)] }))
    expect(down.response.batchItemFailures).toEqual([{ itemIdentifier: "1" }])
    expect(down.deadLettered).toBe(0)
    expect((await client.query("SELECT count(*)::int AS n FROM fact_payment")).rows[0].n).toBe(0)

    const total = payments.reduce((n, c) => n + c.pointer.rows, 0)
    // Every chunk, the first one twice in the batch, then the whole batch delivered again.
    const batch = [record(payments[0]!, 1), ...payments.map((c, i) => record(c, i + 2))]
    for (let delivery = 0; delivery < 2; delivery++) {
      const outcome = await Effect.runPromise(processKinesisEvent({ pool, lake, stream: "stream" }, { Records: batch }))
      expect(outcome.response.batchItemFailures).toEqual([])
      expect(outcome.appliedByTable).toEqual({ payment: total + payments[0]!.pointer.rows })
    }
    const facts = await client.query("SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS ids, count(*) FILTER (WHERE change_op = 'r')::int AS r FROM fact_payment")
    expect(facts.rows[0]).toEqual({ n: total, ids: total, r: total })
    expect((await client.query("SELECT count(*)::int AS n FROM totes.mirror WHERE table_name = 'payment'")).rows[0].n).toBe(total)
    await pool.end()
    await client.end()
  })

  it("a chunk of a paused table takes the row path: its rows are parked as the change events they stand for", async () => {
    const { url, client } = await newWarehouse()
    const pool = new pg.Pool({ connectionString: url, max: 2, pipeline: true } as pg.PoolConfig)
    await client.query(
      `INSERT INTO totes.paused_table (table_name, column_name, problem, detail, first_event_id, first_lsn, first_seq, first_committed_at)
       VALUES ('payment', 'paid', 'type', 'paused by the test', 'x', '0/1', 0, now())`
    )
    const chunk = chunks.find((c) => c.pointer.source.table === "payment")!
    const outcome = await Effect.runPromise(processKinesisEvent(
      { pool, lake, stream: "stream" },
      { Records: [toLambdaRecord("stream", "eu-west-2", "shardId-000000000000", { SequenceNumber: "1", PartitionKey: chunk.partitionKey, Data: Buffer.from(JSON.stringify(chunk.pointer)) })] }
    ))
    expect(outcome.response.batchItemFailures).toEqual([])
    const parked = await client.query("SELECT event_id FROM totes.parked_event WHERE table_name = 'payment' ORDER BY event_id")
    expect(parked.rows.map((r) => r.event_id)).toEqual(chunkEvents(chunk.pointer, chunk.text).map((e) => e.id).sort())
    expect((await client.query("SELECT count(*)::int AS n FROM fact_payment")).rows[0].n).toBe(0)
    await pool.end()
    await client.end()
  })
})
