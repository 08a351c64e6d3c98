/**
 * After a split, the reader's heartbeat for the parent (its lane's explicit hash key is the
 * parent's starting hash key) lands on a CHILD shard until the reader re-lists. The lake watermark
 * attributes a heartbeat to the shard named in its id, so that heartbeat vouches for the parent's
 * records. The local archiver therefore archives a child only once its parent is archived to its
 * end: while the parent's tail is not in the lake (here its object's put fails for a while), the
 * child's heartbeat is not either, and the watermark does not pass changes the lake lacks. (Found
 * by a review; before, the archiver read parents and children at once and the watermark moved to
 * 0/5000200 with the change at 0/5000100 missing.)
 */
import { setTimeout as sleep } from "node:timers/promises"
import { gunzipSync } from "node:zlib"
import { DescribeStreamSummaryCommand, ListShardsCommand, PutRecordCommand, SplitShardCommand } from "@aws-sdk/client-kinesis"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { SCHEMA_VERSION, type Heartbeat } from "../../contracts/change-event.ts"
import { Archiver } from "../../services/archiver/archiver.ts"
import { makeLakeWatermarkReader } from "../../services/lake/watermark-read.ts"
import { replay } from "../../services/replay/replay.ts"
import { kinesisClient } from "../../services/shared/aws-clients.ts"
import { CheckpointStore } from "../../services/shared/checkpoint-store.ts"
import { LakeError } from "../../services/shared/lake-store.ts"
import { changeEvent } from "../fixtures/events.ts"
import { lakeOf, readRawLake } from "../support/lake.ts"
import { memoryCheckpoints } from "../support/lake-memory.ts"
import { waitFor } from "../support/processes.ts"
import { isolatedPipelineEnv } from "../support/stack.ts"

const heartbeat = (shardId: string, lsn: string, emittedAt: string): Heartbeat => ({
  kind: "heartbeat",
  schemaVersion: SCHEMA_VERSION,
  id: `heartbeat:${shardId}:${lsn}:${emittedAt}`,
  commitLsn: lsn,
  committedAt: emittedAt,
  emittedAt
})

describe("the lake watermark across a split", { timeout: 120_000 }, () => {
  const stop = new AbortController()
  let running: Promise<void> | undefined
  afterAll(async () => {
    stop.abort()
    await running
  })

  it("does not pass a parent's change that is not in the lake yet, and reaches the heartbeat once it is", async () => {
    const env = await isolatedPipelineEnv({ shards: 2 })
    const kinesis = kinesisClient(env)
    const stream = env.TOTES_STREAM!
    const shards = (await kinesis.send(new ListShardsCommand({ StreamName: stream }))).Shards!
    const [a, b] = shards.sort((x, y) => (BigInt(x.HashKeyRange!.StartingHashKey!) < BigInt(y.HashKeyRange!.StartingHashKey!) ? -1 : 1))
    const put = (record: object, shard: typeof a) =>
      kinesis.send(new PutRecordCommand({ StreamName: stream, PartitionKey: "k", ExplicitHashKey: shard!.HashKeyRange!.StartingHashKey!, Data: Buffer.from(JSON.stringify(record)) }))

    const t0 = new Date(Date.now() - 4_000).toISOString()
    const t1 = new Date(Date.now() - 2_000).toISOString()
    const change = changeEvent("c", "design", { commitLsn: "0/5000100", index: 0, committedAt: t0 }, {
      after: { design_id: 7, design_name: "Wooden", file_location: "/f", file_name: "w.json", created_at: "2024-03-01T09:00:00", last_updated: "2024-03-01T09:00:00" }
    })
    // The archiver; S3 will refuse the put of the object holding the change for a while (a transient fault, retried).
    const real = lakeOf(env)
    let refuse = true
    const lake = {
      ...real,
      putNew: (key: string, body: Uint8Array | string, contentType: string) =>
        refuse && gunzipSync(body as Uint8Array).toString("utf8").includes(change.id)
          ? Effect.fail(new LakeError({ key, message: "InternalError: We encountered an internal error. Please try again." }))
          : real.putNew(key, body, contentType)
    }
    const archiver = new Archiver({ kinesis, lake, checkpoints: Effect.runSync(CheckpointStore.make(env)), stream, flushMs: 200, idleWaitMs: 50, shardRefreshMs: 500 })
    running = archiver.run(stop.signal)
    const archived = async (ids: ReadonlyArray<string>) => {
      const have = new Set((await readRawLake(real)).records.map((r) => r.id))
      return ids.every((id) => have.has(id))
    }
    const waitArchived = (ids: ReadonlyArray<string>) => waitFor(() => archived(ids), 30_000, `the lake holds ${ids.join(", ")}`)
    // Heartbeats at 0/5000000 on both shards, archived.
    await put(heartbeat(a!.ShardId!, "0/5000000", t0), a)
    await put(heartbeat(b!.ShardId!, "0/5000000", t0), b)
    await waitArchived([heartbeat(a!.ShardId!, "0/5000000", t0).id, heartbeat(b!.ShardId!, "0/5000000", t0).id])
    // A change on A committed at 0/5000100 (its object's put fails for now).
    await put(change, a)
    // The split: A closes, two children cover its range.
    const start = BigInt(a!.HashKeyRange!.StartingHashKey!)
    const end = BigInt(a!.HashKeyRange!.EndingHashKey!)
    await kinesis.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: a!.ShardId!, NewStartingHashKey: ((start + end) / 2n).toString() }))
    await waitFor(
      async () => (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary?.StreamStatus === "ACTIVE",
      10_000,
      "the stream active after the split"
    )
    // The reader has not re-listed yet: its next heartbeat for A (explicit hash key = A's start) lands on the lower child.
    const landed = await put(heartbeat(a!.ShardId!, "0/5000200", t1), a)
    expect(landed.ShardId).not.toBe(a!.ShardId)
    await put(heartbeat(b!.ShardId!, "0/5000200", t1), b)
    await waitFor(() => archiver.stats.shards === 4, 10_000, "the archiver listing the children")
    await waitArchived([heartbeat(b!.ShardId!, "0/5000200", t1).id])
    // A window for the child's heartbeat to reach the lake if it were read now (5 × flushMs): it must not.
    await sleep(1_000)
    expect(await archived([change.id])).toBe(false)
    expect(await archived([heartbeat(a!.ShardId!, "0/5000200", t1).id])).toBe(false)

    const watermarkNow = async () => (await Effect.runPromise(makeLakeWatermarkReader(real).read())).watermark?.lsn
    const replayed = async () =>
      (await Effect.runPromise(Effect.scoped(replay({ lake: real, targetUrl: "postgres://unused", checkpoints: memoryCheckpoints(), name: `r${Date.now()}`, dryRun: true })))).events
    // The lake lacks a change committed at 0/5000100: the watermark stays at A's 0/5000000.
    expect({ watermark: await watermarkNow(), replayed: await replayed() }).toEqual({ watermark: "0/5000000", replayed: 0 })

    // S3 recovers: the parent's tail, then the child's heartbeat, reach the lake.
    refuse = false
    await waitArchived([change.id, heartbeat(a!.ShardId!, "0/5000200", t1).id])
    expect({ watermark: await watermarkNow(), replayed: await replayed() }).toEqual({ watermark: "0/5000200", replayed: 1 })
  })
})
