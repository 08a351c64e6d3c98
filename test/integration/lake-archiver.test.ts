/**
 * The local Firehose: a workload through reader → Kinesis → (consumer, archiver) on the real local
 * stack. The lake must hold every stream record, exactly as it was on the stream, in write-once
 * objects (checked on the wire: every PutObject carries If-None-Match: *, no key twice, because the
 * local S3 server would accept overwrites), and a restarted archiver resumes from its checkpoints.
 */
import { gunzipSync } from "node:zlib"
import { Effect, Option } from "effect"
import type pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { parseRawObjectKey, RAW_PREFIX } from "../../contracts/lake.ts"
import { archiverCheckpointKey, type ArchiverCheckpoint } from "../../services/archiver/archiver.ts"
import { CheckpointStore } from "../../services/shared/checkpoint-store.ts"
import { initSourceSchema } from "../../tools/source/totesys-db.ts"
import { readWholeStream, type ShardRecord } from "../support/kinesis.ts"
import { lakeOf, readRawLake, startArchiver, waitLakeHolds, type RunningArchiver } from "../support/lake.ts"
import { runMiniWorkload, seedDimensions } from "../support/mini-workload.ts"
import { startPipeline, type RunningPipeline } from "../support/pipeline.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"

describe("archiver (local Firehose)", () => {
  let env: Record<string, string>
  let pipeline: RunningPipeline
  let source: pg.Client
  let first: RunningArchiver
  let stream: Array<ShardRecord>

  beforeAll(async () => {
    env = await isolatedPipelineEnv({ shards: 3 })
    source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    await seedDimensions(source)
    pipeline = await startPipeline(env)
    first = startArchiver(env, { flushMs: 400 })
    await runMiniWorkload(source, { seed: 7, transactions: 250 })
    await pipeline.caughtUp(120_000)
    stream = await readWholeStream(env, { chunks: true })
    await waitLakeHolds(lakeOf(env), stream.map((r) => r.record.id))
    await first.stop()
  })

  afterAll(async () => {
    await first?.stop()
    await pipeline?.stop()
    await source?.end()
  })

  it("holds every stream record at least once, each line exactly the record on the stream", async () => {
    const lake = await readRawLake(lakeOf(env))
    const inLake = new Map(lake.records.map((r) => [r.id, r]))
    const changes = stream.filter((r) => r.record.kind === "change")
    expect(changes.length).toBeGreaterThan(500)
    for (const { record } of stream) expect(inLake.get(record.id), record.id).toEqual(record)
    expect(new Set(lake.records.filter((r) => r.kind === "change").map((r) => r.id)).size).toBe(new Set(changes.map((r) => r.record.id)).size)
  })

  it("writes every object once, with If-None-Match: *, under the contract's raw key layout", async () => {
    const puts = first.puts
    expect(puts.length).toBeGreaterThan(3)
    expect(puts.every((p) => p.ifNoneMatch === "*")).toBe(true)
    expect(new Set(puts.map((p) => p.key)).size).toBe(puts.length)
    for (const put of puts) {
      const parsed = parseRawObjectKey(put.key)
      expect(parsed, put.key).toBeDefined()
      expect(parsed!.stream).toBe(env.TOTES_STREAM)
    }
    // Flushed by time into several objects per shard, each named after its first sequence number.
    expect(first.archiver.stats).toMatchObject({ objects: puts.length, shards: 3 })
    const lake = lakeOf(env)
    for (const put of puts.slice(0, 5)) {
      const body = await Effect.runPromise(lake.get(put.key))
      const lines = gunzipSync(body).toString("utf8").trimEnd().split("\n")
      const firstRecord = stream.find((r) => r.record.id === JSON.parse(lines[0]!).id && r.sequenceNumber === parseRawObjectKey(put.key)!.firstSequence)
      expect(firstRecord, put.key).toBeDefined()
    }
  })

  it("checkpoints each shard after writing and resumes from there after a restart", async () => {
    const checkpoints = Effect.runSync(CheckpointStore.make(env))
    const shards = [...new Set(stream.map((r) => r.shardId))]
    for (const shardId of shards) {
      const checkpoint = Option.getOrUndefined(await Effect.runPromise(checkpoints.get<ArchiverCheckpoint>(archiverCheckpointKey(env.TOTES_STREAM!, shardId))))
      expect(checkpoint, shardId).toBeDefined()
      expect(first.puts.map((p) => p.key)).toContain(checkpoint!.data.object)
    }
    const before = await readRawLake(lakeOf(env))
    const archived = new Set(before.records.map((r) => r.id))

    // Restart with a small size limit: only new records are archived, in objects of bounded size.
    const second = startArchiver(env, { flushMs: 60_000, flushBytes: 8 * 1024 })
    try {
      await runMiniWorkload(source, { seed: 8, transactions: 120 })
      await pipeline.caughtUp(120_000)
      const streamNow = await readWholeStream(env, { chunks: true })
      const fresh = streamNow.filter((r) => !archived.has(r.record.id))
      const sequenceOf = new Map(streamNow.map((r) => [r.record.id, `${r.shardId}/${r.sequenceNumber}`]))
      await waitLakeHolds(lakeOf(env), streamNow.map((r) => r.record.id))
      const after = await readRawLake(lakeOf(env))
      const newObjects = after.objects.filter((key) => !before.objects.includes(key))
      expect(newObjects.length).toBeGreaterThan(1)
      const lake = lakeOf(env)
      const newIds: Array<string> = []
      for (const key of newObjects) {
        const body = gunzipSync(await Effect.runPromise(lake.get(key))).toString("utf8")
        const lines = body.trimEnd().split("\n")
        // Size-triggered: an object ends at the first Kinesis record (an aggregate: all its user records) that takes it to the limit.
        const lastSequence = sequenceOf.get(JSON.parse(lines.at(-1)!).id)
        const lastRecordBytes = lines.filter((line) => sequenceOf.get(JSON.parse(line).id) === lastSequence).reduce((n, line) => n + Buffer.byteLength(line) + 1, 0)
        expect(Buffer.byteLength(body) - lastRecordBytes, key).toBeLessThan(8 * 1024)
        newIds.push(...lines.map((line) => JSON.parse(line).id as string))
      }
      expect(newIds.filter((id) => archived.has(id))).toEqual([])
      // Everything new is there (and, since the stream was read, perhaps a few later heartbeats).
      const written = new Set(newIds)
      expect(fresh.filter((r) => !written.has(r.record.id))).toEqual([])
      expect(fresh.filter((r) => r.record.kind === "change").length).toBeGreaterThan(100)
      expect(second.puts.every((p) => p.ifNoneMatch === "*" && p.key.startsWith(RAW_PREFIX))).toBe(true)
    } finally {
      await second.stop()
    }
  })
})
