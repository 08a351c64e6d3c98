/**
 * The archiver names an object after the arrival hour of its oldest record. Catching up a quiet
 * backlog (the archiver was down), it reads records that arrived hours apart at once: they must
 * not share an object, because `replay --from T` lists objects by that hour with one hour of slack
 * (raw.ts EARLY_SLACK_MS) — the README's `--to T`, then `--from T --catch-up`, would leave out
 * changes committed after T. (Found by a review; it failed before objects were split by arrival.)
 */
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, type KinesisClient, type _Record } from "@aws-sdk/client-kinesis"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Archiver } from "../../services/archiver/archiver.ts"
import { readRawLake } from "../support/lake.ts"
import { memoryCheckpoints, memoryLake } from "../support/lake-memory.ts"
import { replay } from "../../services/replay/replay.ts"
import { parseBound } from "../../services/replay/window.ts"
import { changeEvent } from "../fixtures/events.ts"
import { waitFor } from "../support/processes.ts"

const design = (id: number, committedAt: string, lsn: string) =>
  changeEvent("c", "design", { commitLsn: lsn, index: 0, committedAt }, {
    after: { design_id: id, design_name: `D${id}`, file_location: "/f", file_name: "f.json", created_at: "2024-03-01T09:00:00", last_updated: "2024-03-01T09:00:00" }
  })

describe("archiver objects while catching up a backlog", () => {
  it("never span more than flushMs of arrival time, so replay --from T finds a change that arrived after T", async () => {
    // The backlog of one quiet shard: a change arriving 10:05, another arriving 12:20 (the archiver was down meanwhile).
    const early = design(1, "2024-03-01T10:04:59.000000Z", "0/5000000")
    const late = design(2, "2024-03-01T12:19:59.000000Z", "0/5000100")
    const records: Array<_Record> = [
      { SequenceNumber: "49000000000000000000000000000000000000000000000000000001", ApproximateArrivalTimestamp: new Date("2024-03-01T10:05:00Z"), Data: Buffer.from(JSON.stringify(early)), PartitionKey: "design:1" },
      { SequenceNumber: "49000000000000000000000000000000000000000000000000000002", ApproximateArrivalTimestamp: new Date("2024-03-01T12:20:00Z"), Data: Buffer.from(JSON.stringify(late)), PartitionKey: "design:2" }
    ]
    let served = false
    const kinesis = {
      send: async (command: unknown) => {
        if (command instanceof ListShardsCommand) return { Shards: [{ ShardId: "shardId-000000000000", HashKeyRange: { StartingHashKey: "0", EndingHashKey: "1" } }] }
        if (command instanceof GetShardIteratorCommand) return { ShardIterator: "it" }
        if (command instanceof GetRecordsCommand) {
          const page = served ? [] : records
          served = true
          return { Records: page, NextShardIterator: "it", MillisBehindLatest: 0 }
        }
        throw new Error("unexpected command")
      }
    } as unknown as KinesisClient
    const lake = memoryLake()
    const stop = new AbortController()
    const archiver = new Archiver({ kinesis, lake, checkpoints: memoryCheckpoints(), stream: "s", flushMs: 300, idleWaitMs: 20 })
    const running = archiver.run(stop.signal)
    // The first object is written as soon as the second record (2 h 15 min later) is read.
    await waitFor(() => archiver.stats.objects >= 1, 10_000, "the early record's object")
    stop.abort()
    await running
    const { objects, records: inLake } = await readRawLake(lake)
    expect(inLake.map((r) => r.id)).toEqual([early.id, late.id])
    expect(objects.map((key) => key.slice(0, 18)).sort()).toEqual(["raw/2024/03/01/10/", "raw/2024/03/01/12/"])

    const from = parseBound("2024-03-01T12:10:00Z")
    const report = await Effect.runPromise(Effect.scoped(replay({ lake, targetUrl: "postgres://unused", checkpoints: memoryCheckpoints(), name: "since", dryRun: true, from })))
    expect(report.events, `events committed at or after ${from.kind === "time" ? from.at.toISOString() : ""}`).toBe(1)
  })
})
