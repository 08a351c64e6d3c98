/**
 * The initial snapshot: taken while the source is being written, interrupted and resumed,
 * and with rows too large for one Kinesis record. The stream must rebuild the source exactly.
 */
import { ListObjectsV2Command } from "@aws-sdk/client-s3"
import { describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { compareLsn } from "../../contracts/lsn.ts"
import { kinesisClient, s3Client } from "../../services/shared/aws-clients.ts"
import { readerFromEnv } from "../../services/reader/main.ts"
import { slotInfo } from "../../services/reader/source-admin.ts"
import { initSourceSchema, loadCsvSnapshot } from "../../tools/source/totesys-db.ts"
import { readStarSchema } from "../fixtures/derive-star-schema.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { runMiniWorkload } from "../support/mini-workload.ts"
import { startPipeline } from "../support/pipeline.ts"
import { waitFor } from "../support/processes.ts"
import { comparable, reconstruct, sourceState } from "../support/reconstruct.ts"
import { connect, isolatedPipelineEnv, SNAPSHOT_FEB } from "../support/stack.ts"
import { stoppedAfterEach, waitDurable } from "../support/readers.ts"

const readers = stoppedAfterEach()

const start = (env: Record<string, string>, overrides: Parameters<typeof readerFromEnv>[1] = {}) => {
  const reader = readerFromEnv(env, { heartbeatIntervalMs: 200, ...overrides })
  readers.push(reader)
  const running = reader.start()
  running.catch(() => {})
  return { reader, running }
}


const changeEvents = async (env: Record<string, string>) =>
  (await readWholeStream(env)).flatMap((r) => (r.record.kind === "change" ? [r.record] : []))

describe("initial snapshot", () => {
  it("of the real February data under a concurrent workload: every row once, no gap, no overlap", async () => {
    const env = await isolatedPipelineEnv({ shards: 2 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    await loadCsvSnapshot(source, SNAPSHOT_FEB)
    const writer = await connect(env.SOURCE_DATABASE_URL!)
    const stop = new AbortController()
    let committed = 0
    const workload = (async () => {
      let seed = 100
      while (!stop.signal.aborted) committed += await runMiniWorkload(writer, { seed: seed++, transactions: 10, signal: stop.signal })
    })()
    // The workload is already writing when the slot is created.
    await waitFor(() => committed >= 10, 30_000, "the workload's first transactions")
    const { reader } = start(env)
    await waitFor(() => reader.stats.durableLsn !== null, 90_000, "snapshot done")
    // It goes on writing after the snapshot, until the reader has streamed more than 50 changes.
    const atSnapshot = committed
    const streamed = () => Object.entries(reader.stats.byTableOp).reduce((n, [label, count]) => (label.endsWith(":r") ? n : n + count), 0)
    await waitFor(() => committed >= atSnapshot + 10 && streamed() > 50, 60_000, () => `writes after the snapshot streamed (${committed - atSnapshot} transactions since, ${streamed()} changes published)`)
    stop.abort()
    await workload
    await writer.end()
    await waitDurable(reader, source)
    await reader.stop()

    const events = await changeEvents(env)
    const ids = events.map((e) => e.id)
    const snapshotEvents = events.filter((e) => e.op === "r")
    expect(new Set(snapshotEvents.map((e) => e.id)).size).toBe(snapshotEvents.length) // each row once
    expect(new Set(ids).size).toBe(ids.length) // no event twice (no crash here)
    // No overlap: a row read by the snapshot is never inserted again by a streamed change.
    const snapshotKeys = new Set(snapshotEvents.map((e) => `${e.source.table}:${JSON.stringify(e.key)}`))
    const reinserted = events.filter((e) => e.op === "c" && snapshotKeys.has(`${e.source.table}:${JSON.stringify(e.key)}`))
    expect(reinserted).toEqual([])
    expect(events.filter((e) => e.op !== "r").length).toBeGreaterThan(50)
    // No gap: snapshot + changes rebuild the source's final state exactly, value for value.
    expect(comparable(reconstruct(events))).toEqual(comparable(await sourceState(source)))
    await source.end()
  })

  it("resumes table by table after an interruption and still rebuilds the source", async () => {
    const env = await isolatedPipelineEnv({ shards: 2 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    await loadCsvSnapshot(source, SNAPSHOT_FEB)
    // The first reader's stream dies for good after a few PutRecords calls: mid-snapshot.
    const failing = kinesisClient(env)
    let calls = 0
    failing.middlewareStack.add(
      (next: any) => async (args: any) => {
        if (++calls > 6) throw Object.assign(new Error("access denied (injected)"), { name: "AccessDeniedException", $metadata: { httpStatusCode: 400 } })
        return next(args)
      },
      { step: "initialize", name: "dieMidSnapshot" }
    )
    const progress: Array<string> = []
    const first = start(env, { kinesis: failing, onProgress: (p) => p.phase === "snapshot" && p.done && progress.push(p.table) })
    await expect(first.running).rejects.toThrow(/access denied/)
    expect(progress.length).toBeGreaterThan(0)
    expect(progress.length).toBeLessThan(11)

    await runMiniWorkload(source, { seed: 9, transactions: 30 })
    const messages: Array<string> = []
    const second = start(env, { onProgress: (p) => p.phase === "info" && messages.push(p.message) })
    await waitFor(() => second.reader.stats.durableLsn !== null, 90_000, "resumed snapshot done")
    expect(messages.join("\n")).toMatch(new RegExp(`resuming the initial snapshot: ${progress.length} of 11 tables were done`))
    await runMiniWorkload(source, { seed: 10, transactions: 30 })
    await waitDurable(second.reader, source)
    await second.reader.stop()

    const events = await changeEvents(env)
    expect(comparable(reconstruct(events))).toEqual(comparable(await sourceState(source)))
    await source.end()
  })

  it("keeps the slot advancing on an idle database", async () => {
    const env = await isolatedPipelineEnv({ shards: 1 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    const { reader } = start(env)
    await waitFor(() => reader.stats.durableLsn !== null, 30_000, "reader streaming")
    const before = (await slotInfo(source, env.TOTES_SLOT!))!.confirmedFlushLsn!
    // Other databases' WAL grows, nothing is written to this one: heartbeat markers keep the slot moving.
    const confirmed = async () => (await slotInfo(source, env.TOTES_SLOT!))!.confirmedFlushLsn!
    const heartbeats = async () => (await readWholeStream(env)).filter((r) => r.record.kind === "heartbeat").length
    await waitFor(async () => compareLsn(await confirmed(), before) > 0 && (await heartbeats()) > 3, 10_000, `the slot moving past ${before} with more than 3 heartbeats on the stream`, 200)
    expect(compareLsn(await confirmed(), before)).toBeGreaterThan(0)
    expect(await heartbeats()).toBeGreaterThan(3)
    await source.end()
  })
})

describe("oversize rows", () => {
  it("go through the lake as a claim check and reach the warehouse whole", async () => {
    const env = await isolatedPipelineEnv({ shards: 1 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    const pipeline = await startPipeline(env)
    const huge = "x".repeat(1_500_000)
    await source.query(`INSERT INTO design (design_name, file_location, file_name, last_updated) VALUES ('Huge', '/big', $1, now())`, [huge])
    await pipeline.caughtUp(60_000)
    await pipeline.stop()

    const change = (await changeEvents(env)).find((e) => e.source.table === "design") as ChangeEvent
    expect(change.claimCheck?.bytes).toBeGreaterThan(1_500_000)
    expect(change.after).toBeNull()
    const claims = await s3Client(env).send(new ListObjectsV2Command({ Bucket: env.TOTES_LAKE_BUCKET, Prefix: "claims/" }))
    expect(claims.Contents?.map((o) => o.Key)).toEqual([change.claimCheck!.key])
    const star = await readStarSchema(env.WAREHOUSE_DATABASE_URL!)
    expect(star.dims.dim_design!.map((d) => d.file_name?.length)).toEqual([1_500_000])
    await source.end()
  })
})
