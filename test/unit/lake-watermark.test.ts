/**
 * The lake watermark: folding archived heartbeats (pure), and reading them from lake objects
 * (an in-memory lake with a controlled clock).
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { SCHEMA_VERSION, type Heartbeat } from "../../contracts/change-event.ts"
import { rawObjectKey } from "../../contracts/lake.ts"
import { lsnToBigInt } from "../../contracts/lsn.ts"
import { encodeRawObject } from "../../services/lake/raw.ts"
import {
  changePositionsOf,
  countInRange,
  foldHeartbeats,
  heartbeatShardId,
  heartbeatsOf,
  lakeWatermark,
  SHARD_RETIREMENT_MS,
  type ShardHeartbeat
} from "../../services/lake/watermark.ts"
import { publishLakeWatermark } from "../../services/lake/watermark-handler.ts"
import { makeLakeWatermarkReader, throttledLakeWatermarkReader } from "../../services/lake/watermark-read.ts"
import { metrics } from "../../services/shared/metrics.ts"
import { changeEvent } from "../fixtures/events.ts"
import { memoryLake } from "../support/lake-memory.ts"

const T0 = Date.parse("2026-11-20T10:00:00.000Z")
const at = (offsetMs: number) => new Date(T0 + offsetMs).toISOString()

/** A heartbeat record exactly as the reader writes it to a shard. */
const heartbeat = (shardId: string, lsn: string, emittedMs: number, committedAt = at(emittedMs - 1_000)): Heartbeat => ({
  kind: "heartbeat",
  schemaVersion: SCHEMA_VERSION,
  id: `heartbeat:${shardId}:${lsn}:${at(emittedMs)}`,
  commitLsn: lsn,
  committedAt,
  emittedAt: at(emittedMs)
})

const shard = (shardId: string, lsn: string, emittedMs: number): ShardHeartbeat => {
  const h = heartbeat(shardId, lsn, emittedMs)
  return { shardId, lsn, committedAt: h.committedAt, emittedAt: h.emittedAt }
}

const change = (commitLsn: string) => changeEvent("u", "address", { commitLsn, index: 0, committedAt: at(0) }, { after: { address_id: 1, city: "Leeds" } })

describe("folding archived heartbeats", () => {
  it("reads the shard from a heartbeat id", () => {
    expect(heartbeatShardId("heartbeat:shardId-000000000003:0/16B3748:2026-11-20T10:00:00.000Z")).toBe("shardId-000000000003")
    expect(heartbeatShardId("heartbeat:0/16B3748:2026-11-20T10:00:00.000Z")).toBeUndefined()
    expect(heartbeatShardId("0/16B3748:0")).toBeUndefined()
  })

  it("keeps per shard the highest position and the latest emission", () => {
    const folded = foldHeartbeats(new Map(), [shard("a", "0/200", 2_000), shard("a", "0/100", 5_000), shard("b", "0/150", 1_000)])
    expect(folded.get("a")).toEqual({ shardId: "a", lsn: "0/200", committedAt: at(1_000), emittedAt: at(5_000) })
    expect(folded.get("b")!.lsn).toBe("0/150")
  })

  it("is the minimum over the shards of their newest heartbeat", () => {
    const newest = foldHeartbeats(new Map(), [shard("a", "0/A00", 10_000), shard("b", "0/900", 9_000), shard("c", "1/0", 10_000)])
    const watermark = lakeWatermark(newest)!
    expect({ lsn: watermark.lsn, committedAt: watermark.committedAt, limiting: watermark.limitingShard }).toEqual({
      lsn: "0/900",
      committedAt: at(8_000),
      limiting: "b"
    })
    expect(watermark.shards.map((s) => [s.shardId, s.counted])).toEqual([["a", true], ["b", true], ["c", true]])
    expect(lakeWatermark(new Map())).toBeNull()
  })

  it("stops counting a shard whose heartbeats stopped longer than the retirement horizon before the others' (closed by a reshard)", () => {
    const parent = shard("shardId-000000000000", "0/500", 0)
    const children = [shard("shardId-000000000001", "0/900", SHARD_RETIREMENT_MS), shard("shardId-000000000002", "0/950", SHARD_RETIREMENT_MS + 1)]
    // Up to the horizon the parent holds the watermark back...
    expect(lakeWatermark(foldHeartbeats(new Map(), [parent, ...children.slice(0, 1)]))!.lsn).toBe("0/500")
    // ...a millisecond later it is retired.
    const after = lakeWatermark(foldHeartbeats(new Map(), [parent, ...children]))!
    expect(after.lsn).toBe("0/900")
    expect(after.shards.find((s) => s.shardId === parent.shardId)!.counted).toBe(false)
    expect(lakeWatermark(foldHeartbeats(new Map(), [parent, ...children]), { retirementMs: 60 * 60_000 })!.lsn).toBe("0/500")
  })

  it("takes heartbeats and change positions from raw lines, ignoring everything else", () => {
    const lines = [
      JSON.stringify(change("0/300")),
      JSON.stringify(heartbeat("a", "0/250", 3_000)),
      "not json",
      '{"kind":"heartbeat","note":"no schema"}',
      JSON.stringify({ ...heartbeat("b", "0/100", 1_000), id: "heartbeat:0/100:x" }),
      JSON.stringify(change("0/20")),
      JSON.stringify(heartbeat("a", "0/260", 4_000))
    ]
    expect([...heartbeatsOf(lines).values()]).toEqual([{ shardId: "a", lsn: "0/260", committedAt: at(3_000), emittedAt: at(4_000) }])
    expect([...changePositionsOf(lines)]).toEqual([lsnToBigInt("0/20"), lsnToBigInt("0/300")])
    const sorted = BigUint64Array.from([1n, 5n, 5n, 9n])
    expect([countInRange(sorted, 5n, 9n), countInRange(sorted, 0n, 100n), countInRange(sorted, 6n, 9n), countInRange(sorted, 9n, 5n)]).toEqual([2, 4, 0, 0])
  })
})

describe("reading the watermark from the lake", () => {
  /** A memory lake whose writes happen at the test's clock (the readers take a plain `now`, not Effect's Clock). */
  const setup = () => {
    let clock = T0
    const lake = memoryLake({ now: () => clock })
    const write = (records: ReadonlyArray<object>, atMs: number) =>
      Effect.suspend(() => {
        clock = T0 + atMs
        return lake.putNew(rawObjectKey(new Date(clock), "s", "1", randomUUID()), encodeRawObject(records.map((r) => JSON.stringify(r))), "x")
      })
    const reader = makeLakeWatermarkReader(lake, { now: () => clock })
    return { lake, write, reader, setClock: (ms: number) => (clock = T0 + ms) }
  }

  it.effect("is the minimum over shards, reads only recent objects and each object once", () =>
    Effect.gen(function* () {
      const { write, reader, setClock } = setup()
      // Old objects: far behind the retirement horizon of the newest heartbeat.
      yield* write([change("0/10"), heartbeat("a", "0/10", -3 * 3_600_000)], -3 * 3_600_000)
      yield* write([heartbeat("a", "0/100", 0), change("0/90")], 1_000)
      yield* write([heartbeat("b", "0/80", 500), change("0/70")], 1_500)
      const first = yield* reader.read()
      expect({ lsn: first.watermark!.lsn, limiting: first.watermark!.limitingShard }).toEqual({ lsn: "0/80", limiting: "b" })
      expect(first.objectsListed).toBe(3)
      expect(first.objectsRead).toBe(2) // the 3-hour-old object is never read
      yield* write([heartbeat("b", "0/120", 2_000)], 2_500)
      setClock(3_000)
      const second = yield* reader.read()
      expect(second.watermark!.lsn).toBe("0/100")
      expect(second.objectsRead).toBe(1) // only the new object
    })
  )

  it.effect("finds the watermark of a stale lake, and none in a lake without heartbeats", () =>
    Effect.gen(function* () {
      const { write, reader, setClock } = setup()
      yield* write([change("0/5")], 0)
      expect((yield* reader.read()).watermark).toBeNull()
      yield* write([heartbeat("a", "0/50", 10_000), heartbeat("b", "0/40", 10_000)], 11_000)
      setClock(3 * 86_400_000)
      const stale = yield* reader.read()
      expect(stale.watermark!.lsn).toBe("0/40")
      expect(stale.watermark!.committedAt).toBe(at(9_000))
    })
  )

  it.effect("a throttled reader answers from its last reading for a while", () =>
    Effect.gen(function* () {
      const { write, reader, setClock } = setup()
      yield* write([heartbeat("a", "0/10", 0)], 0)
      let now = 0
      const throttled = throttledLakeWatermarkReader(reader, 5_000, () => now)
      expect((yield* throttled.read()).watermark!.lsn).toBe("0/10")
      yield* write([heartbeat("a", "0/20", 1_000)], 1_000)
      setClock(1_500)
      now = 4_999
      expect((yield* throttled.read()).watermark!.lsn).toBe("0/10")
      now = 5_000
      expect((yield* throttled.read()).watermark!.lsn).toBe("0/20")
    })
  )

  it.effect("counts the changes committed in a range among objects written since a time", () =>
    Effect.gen(function* () {
      const { write, reader } = setup()
      yield* write([change("0/10"), change("0/20")], 0)
      yield* write([change("0/30"), heartbeat("a", "0/35", 5_000), change("0/40")], 5_000)
      const count = (since: number, from: string, below: string) => Effect.map(reader.changesBetween(new Date(T0 + since), from, below), (changes) => changes.count)
      expect(yield* count(0, "0/10", "0/40")).toBe(3)
      expect(yield* count(0, "0/11", "0/100")).toBe(3)
      expect(yield* count(0, "0/41", "0/100")).toBe(0)
    })
  )
})

describe("the scheduled lake-watermark function", () => {
  it.effect("emits the watermark's age, and nothing when the lake holds no heartbeat", () =>
    Effect.gen(function* () {
      let clock = T0
      const lake = memoryLake({ now: () => clock })
      const reader = makeLakeWatermarkReader(lake, { now: () => clock })
      // The metrics sink is captured for this test's scope only.
      const { sink } = yield* Effect.acquireRelease(Effect.sync(() => metrics.capture()), ({ restore }) => Effect.sync(restore))
      yield* lake.putNew(rawObjectKey(new Date(clock), "s", "1", randomUUID()), encodeRawObject([JSON.stringify(change("0/5"))]), "x")
      expect(yield* publishLakeWatermark(reader, clock)).toMatchObject({ lsn: null, ageSeconds: null })
      expect(sink.values("LakeWatermarkAgeSeconds")).toEqual([])
      clock = T0 + 20_000
      const lines = [heartbeat("a", "0/90", 10_000), heartbeat("b", "0/80", 11_000)].map((h) => JSON.stringify(h))
      yield* lake.putNew(rawObjectKey(new Date(clock), "s", "2", randomUUID()), encodeRawObject(lines), "x")
      const report = yield* publishLakeWatermark(reader, T0 + 25_000)
      // b's heartbeat vouches for 0/80, committed at 10 s: 15 s old at 25 s.
      expect(report).toEqual({ lsn: "0/80", committedAt: at(10_000), ageSeconds: 15, objectsRead: 1 })
      expect(sink.values("LakeWatermarkAgeSeconds", { Component: "lake" })).toEqual([15])
    })
  )
})
