/**
 * Events compaction cannot write (a claim check or a snapshot chunk whose object is missing) are
 * not dropped unsaid: the manifest records their ids under their raw object, compaction reports
 * and logs them (`totes lake compact` names the objects), and replay from Parquet reports them, and
 * the raw object's undecodable lines, exactly as replay from raw does.
 */
import { randomUUID } from "node:crypto"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { SCHEMA_VERSION, serializeChangeEvent, type SnapshotChunk } from "../../contracts/change-event.ts"
import { rawObjectKey } from "../../contracts/lake.ts"
import { storeClaimCheck } from "../../services/lake/claims.ts"
import { compactLake } from "../../services/lake/compact.ts"
import { readManifests } from "../../services/lake/manifest.ts"
import { encodeRawObject } from "../../services/lake/raw.ts"
import { replay } from "../../services/replay/replay.ts"
import { makeLakeWatermarkReader } from "../../services/lake/watermark-read.ts"
import type { LakeStoreShape } from "../../services/shared/lake-store.ts"
import { createBucket } from "../../tools/local/provision.ts"
import { changeEvent } from "../fixtures/events.ts"
import { lakeOf, runLakeCli } from "../support/lake.ts"
import { memoryCheckpoints, memoryLake } from "../support/lake-memory.ts"
import { stackEnv } from "../support/stack.ts"

const design = (id: number) =>
  changeEvent("c", "design", { commitLsn: "0/5000000", index: id, committedAt: "2024-03-01T10:00:00.000000Z" }, {
    after: { design_id: id, design_name: "x".repeat(50), file_location: "/f", file_name: "f.json", created_at: "2024-03-01T09:00:00", last_updated: "2024-03-01T09:00:00" }
  })

/** A snapshot chunk pointer whose object is not in the lake. */
const lostChunk: SnapshotChunk = {
  kind: "snapshot-chunk",
  schemaVersion: SCHEMA_VERSION,
  id: "0/3000000:snapshot-chunk:currency:abc:0",
  source: { db: "totesys", schema: "public", table: "currency", commitLsn: "0/3000000", lsn: null, xid: null, committedAt: "2024-03-01T09:00:00.000Z", index: -1, snapshot: true },
  keyColumns: ["currency_id"],
  columns: [{ name: "currency_id", typeOid: 23, typeName: "integer", category: "N" }],
  chunk: 0,
  rows: 1,
  object: { bucket: "lake", key: "snapshots/0000000003000000/currency/0-0.copy.gz", bytes: 1 }
}

/**
 * One raw object: a plain event, a claim-checked one that resolves, one whose claim object is
 * gone, a lost snapshot chunk and a line that is not a stream record. Returns the ids left out.
 */
const writeLake = async (lake: LakeStoreShape) => {
  const stub = await Effect.runPromise(storeClaimCheck(lake, design(2), Buffer.from(serializeChangeEvent(design(2)))))
  const lost = { ...stub, id: design(3).id, source: design(3).source, claimCheck: { ...stub.claimCheck!, key: "claims/0000000005000000/gone.json" } }
  const key = rawObjectKey(new Date("2024-03-01T10:00:01Z"), "test", "4959", randomUUID())
  const lines = [design(1), stub, lost, lostChunk].map((e) => JSON.stringify(e))
  await Effect.runPromise(lake.putNew(key, encodeRawObject([...lines, "not a stream record"]), "application/x-ndjson"))
  return { key, left: [lostChunk.id, lost.id] }
}

describe("compaction and events it cannot write", () => {
  it("records them in the manifest and reports them; replay from Parquet reports them (and undecodable lines) as replay from raw does", async () => {
    const lake = memoryLake()
    const { key, left } = await writeLake(lake)
    const dryRun = (name: string, source: "raw" | "parquet") =>
      Effect.runPromise(Effect.scoped(replay({ lake, targetUrl: "postgres://unused", checkpoints: memoryCheckpoints(), name, dryRun: true, source })))
    const fromRaw = await dryRun("raw", "raw")
    expect(fromRaw.unresolvedClaimChecks).toEqual(left)
    expect(fromRaw.undecodable).toBe(1)

    const report = await Effect.runPromise(compactLake({ lake }))
    expect(report.inputs).toBe(1)
    expect(report.unresolved).toEqual([{ key, ids: left }])
    const [manifest] = await Effect.runPromise(readManifests(lake))
    expect(manifest!.inputs).toEqual([expect.objectContaining({ key, records: 5, events: 2, undecodable: 1, unresolved: left })])

    const fromParquet = await dryRun("parquet", "parquet")
    expect(fromParquet.objectsTotal, "the file and the run's report").toBe(2)
    expect(fromParquet.events, "events applied").toBe(fromRaw.events)
    expect(fromParquet.unresolvedClaimChecks).toEqual(fromRaw.unresolvedClaimChecks)
    expect(fromParquet.undecodable).toBe(fromRaw.undecodable)
    // Only the tables asked for are applied; what the run left out is still reported, as from raw.
    const tables = { tables: ["currency"] }
    const rawCurrency = await Effect.runPromise(Effect.scoped(replay({ lake, targetUrl: "postgres://unused", checkpoints: memoryCheckpoints(), name: "rc", dryRun: true, ...tables })))
    const parquetCurrency = await Effect.runPromise(
      Effect.scoped(replay({ lake, targetUrl: "postgres://unused", checkpoints: memoryCheckpoints(), name: "pc", dryRun: true, source: "parquet", ...tables }))
    )
    expect([parquetCurrency.events, parquetCurrency.unresolvedClaimChecks]).toEqual([rawCurrency.events, rawCurrency.unresolvedClaimChecks])

    // Nothing is compacted twice: the object counts as compacted, with its other events in Parquet.
    expect((await Effect.runPromise(compactLake({ lake }))).runs).toEqual([])
  })

  it("`totes lake compact` names the objects and the events it left out", async () => {
    const env = { ...stackEnv(), TOTES_LAKE_BUCKET: `lake-unresolved-${randomUUID().slice(0, 8)}` }
    await createBucket(env, env.TOTES_LAKE_BUCKET)
    const { key, left } = await writeLake(lakeOf(env))
    const run = await runLakeCli(["lake", "compact"], env)
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/^compacted 1 raw objects .* into 1 Parquet files/m)
    expect(run.stdout).toContain("left 2 event(s) of 1 raw object(s) out: their claim check or snapshot chunk object is missing")
    expect(run.stdout).toContain(`  ${key}: ${left.join(", ")}\n`)
    // And a structured warning for the object (stderr: JSON log lines).
    const warning = run.stderr
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.level === "warn")
    expect(warning).toMatchObject({ component: "lake", objectKey: key, events: 2 })
  })

  it("skips a raw object that is not gzip NDJSON: reported and left uncompacted while the rest is compacted; the watermark reads past it; replay refuses it by name", async () => {
    const lake = memoryLake()
    const now = new Date()
    const heartbeat = {
      kind: "heartbeat",
      schemaVersion: SCHEMA_VERSION,
      id: `heartbeat:shardId-000000000000:0/5000100:${now.toISOString()}`,
      commitLsn: "0/5000100",
      committedAt: now.toISOString(),
      emittedAt: now.toISOString()
    }
    const good = rawObjectKey(now, "test", "4959", randomUUID())
    await Effect.runPromise(lake.putNew(good, encodeRawObject([JSON.stringify(design(1)), JSON.stringify(heartbeat)]), "application/x-ndjson"))
    const bad = rawObjectKey(now, "test", "4960", randomUUID())
    await Effect.runPromise(lake.putNew(bad, Buffer.from("not gzip at all"), "application/x-ndjson"))

    const report = await Effect.runPromise(compactLake({ lake }))
    expect(report.unreadable).toEqual([{ key: bad, reason: expect.stringMatching(new RegExp(`^raw object ${bad}: .*header`)) }])
    expect([report.runs.length, report.events]).toEqual([1, 1])
    expect((await Effect.runPromise(readManifests(lake))).flatMap((m) => m.inputs.map((i) => i.key))).toEqual([good])
    // Not compacted: the next run reports it again, and writes nothing.
    const again = await Effect.runPromise(compactLake({ lake }))
    expect([again.runs, again.unreadable.map((o) => o.key)]).toEqual([[], [bad]])

    const { watermark } = await Effect.runPromise(makeLakeWatermarkReader(lake).read())
    expect(watermark?.lsn).toBe("0/5000100")

    const exit = await Effect.runPromiseExit(
      Effect.scoped(replay({ lake, targetUrl: "postgres://unused", checkpoints: memoryCheckpoints(), name: "p", dryRun: true, source: "parquet" }))
    )
    expect(exit._tag).toBe("Failure")
    expect(JSON.stringify(exit)).toContain(`raw object ${bad}`)
  })
})
