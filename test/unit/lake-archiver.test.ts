/**
 * The archiver against an in-memory stream, lake and checkpoint store: flushing by size and by
 * time, write-before-checkpoint, and what a failure between the two costs (duplicates, no loss).
 */
import type { KinesisClient } from "@aws-sdk/client-kinesis"
import { describe, expect, it } from "vitest"
import { parseRawObjectKey } from "../../contracts/lake.ts"
import { Archiver, archiverCheckpointKey, type ArchiverFlush } from "../../services/archiver/archiver.ts"
import { decodeRawLines } from "../../services/lake/raw.ts"
import { memoryCheckpoints, memoryLake } from "../support/lake-memory.ts"

/** Kinesis with one or more shards whose records are appended by the test. */
const fakeKinesis = (shardIds: ReadonlyArray<string>) => {
  const shards = new Map(shardIds.map((id) => [id, [] as Array<{ seq: string; data: string; at: Date }>]))
  let next = 1000
  const client = {
    send: async (command: { constructor: { name: string }; input: any }) => {
      const input = command.input
      switch (command.constructor.name) {
        case "ListShardsCommand":
          return { Shards: shardIds.map((ShardId) => ({ ShardId })) }
        case "GetShardIteratorCommand": {
          const records = shards.get(input.ShardId)!
          const start =
            input.ShardIteratorType === "TRIM_HORIZON" ? 0 : records.findIndex((r) => r.seq === input.StartingSequenceNumber) + 1
          return { ShardIterator: `${input.ShardId}|${start}` }
        }
        case "GetRecordsCommand": {
          const [shardId, position] = (input.ShardIterator as string).split("|") as [string, string]
          const records = shards.get(shardId)!.slice(Number(position), Number(position) + (input.Limit ?? 10_000))
          return {
            Records: records.map((r) => ({ SequenceNumber: r.seq, Data: Buffer.from(r.data), ApproximateArrivalTimestamp: r.at, PartitionKey: "k" })),
            NextShardIterator: `${shardId}|${Number(position) + records.length}`
          }
        }
        default:
          throw new Error(`unexpected ${command.constructor.name}`)
      }
    }
  } as unknown as KinesisClient
  const put = (shardId: string, count: number, size = 100) => {
    for (let i = 0; i < count; i++) {
      const seq = String(next++).padStart(20, "0")
      shards.get(shardId)!.push({ seq, data: JSON.stringify({ id: `r${seq}`, pad: "x".repeat(size) }), at: new Date("2024-02-23T11:59:00Z") })
    }
  }
  return { client, put, shards }
}

const until = async (condition: () => boolean, ms = 5_000) => {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out")
    await new Promise((r) => setTimeout(r, 10))
  }
}

const idsIn = (lake: ReturnType<typeof memoryLake>) =>
  [...lake.objects.values()].flatMap((body) => decodeRawLines(body).map((line) => JSON.parse(line).id as string))

describe("archiver", () => {
  it("flushes by size and by time into one new object per flush, then checkpoints", async () => {
    const kinesis = fakeKinesis(["shard-a", "shard-b"])
    const lake = memoryLake()
    const checkpoints = memoryCheckpoints()
    const flushes: Array<ArchiverFlush> = []
    const archiver = new Archiver({ kinesis: kinesis.client, lake, checkpoints, stream: "s", flushBytes: 1_000, flushMs: 150, idleWaitMs: 10, onFlush: (f) => flushes.push(f) })
    kinesis.put("shard-a", 25) // ~125 bytes a line: size flushes of 8 lines, the rest by time
    kinesis.put("shard-b", 2)
    const controller = new AbortController()
    const running = archiver.run(controller.signal)
    await until(() => archiver.stats.records === 27)
    controller.abort()
    await running

    expect(flushes.filter((f) => f.shardId === "shard-a").map((f) => [f.records, f.reason])).toEqual([[8, "size"], [8, "size"], [8, "size"], [1, "time"]])
    expect(flushes.filter((f) => f.shardId === "shard-b").map((f) => [f.records, f.reason])).toEqual([[2, "time"]])
    expect(idsIn(lake).sort()).toEqual([...kinesis.shards.values()].flat().map((r) => `r${r.seq}`).sort())
    for (const flush of flushes) {
      expect(parseRawObjectKey(flush.key)).toEqual({ hour: new Date("2024-02-23T11:00:00Z"), stream: "s", firstSequence: flush.firstSequence })
    }
    const last = flushes.filter((f) => f.shardId === "shard-a").at(-1)!
    expect(checkpoints.items.get(archiverCheckpointKey("s", "shard-a"))).toMatchObject({ data: { sequenceNumber: last.lastSequence, object: last.key } })
  })

  it("keeps the buffer when a write fails and writes it later: nothing lost, nothing checkpointed early", async () => {
    const kinesis = fakeKinesis(["shard-a"])
    const lake = memoryLake({ failPuts: 2 })
    const checkpoints = memoryCheckpoints()
    const archiver = new Archiver({ kinesis: kinesis.client, lake, checkpoints, stream: "s", flushMs: 50, idleWaitMs: 10, onError: () => {} })
    kinesis.put("shard-a", 5)
    const controller = new AbortController()
    const running = archiver.run(controller.signal)
    await until(() => archiver.stats.objects >= 1, 10_000)
    controller.abort()
    await running
    expect(archiver.stats.errors).toBe(2)
    expect(idsIn(lake)).toHaveLength(5)
    expect(lake.objects.size).toBe(1)
  })

  it("a crash between the write and the checkpoint re-delivers those records in a later object (at-least-once)", async () => {
    const kinesis = fakeKinesis(["shard-a"])
    const lake = memoryLake()
    kinesis.put("shard-a", 4)
    // The checkpoint write fails (as if the process died right after the object was written).
    const lost = memoryCheckpoints({ failAdvances: 1 })
    const first = new Archiver({ kinesis: kinesis.client, lake, checkpoints: lost, stream: "s", flushMs: 20, idleWaitMs: 10, onError: () => {} })
    let controller = new AbortController()
    let running = first.run(controller.signal)
    await until(() => first.stats.objects === 1)
    controller.abort()
    await running
    expect(lost.items.size).toBe(0)

    kinesis.put("shard-a", 2)
    const second = new Archiver({ kinesis: kinesis.client, lake, checkpoints: lost, stream: "s", flushMs: 20, idleWaitMs: 10 })
    controller = new AbortController()
    running = second.run(controller.signal)
    await until(() => second.stats.records === 6)
    controller.abort()
    await running
    const ids = idsIn(lake)
    expect(ids).toHaveLength(10)
    expect(new Set(ids).size).toBe(6)
    expect(lake.objects.size).toBe(2)
  })
})
