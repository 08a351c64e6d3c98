/** What the lake shows beside its watermark: dead letters (newest first, reason only) and the newest raw objects. */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { deadLetterKey, rawObjectKey } from "../../contracts/lake.ts"
import { LakeError, makeMemoryLakeStore, type LakeStoreShape } from "../../services/shared/lake-store.ts"
import { makeLakeActivityReader, summarizeDeadLetter, throttledLakeActivityReader } from "../../services/status/lake-activity.ts"

const HOUR = 3_600_000
const NOW = Date.parse("2026-11-27T10:30:00.000Z")

/** A dead letter as the consumer writes it; `data` holds the record (row values). */
const deadLetterBody = (sequence: string, reason: string, at: string) =>
  JSON.stringify({ reason, shardId: "shardId-000000000001", sequenceNumber: sequence, subSequenceNumber: 0, partitionKey: "k", at, data: Buffer.from('{"after":{"design_name":"Secret"}}').toString("base64") })

/** A memory lake whose clock is set per write, counting reads. */
const lakeAt = () => {
  let clock = NOW
  const lake = makeMemoryLakeStore({ now: () => clock })
  const reads: Array<string> = []
  const counting: LakeStoreShape = { ...lake, get: (key) => Effect.tap(lake.get(key), () => Effect.sync(() => reads.push(key))) }
  const put = (at: number, key: string, body: string) =>
    Effect.suspend(() => {
      clock = at
      return lake.putNew(key, body, "application/json")
    })
  return { lake: counting, put, reads }
}

describe("lake activity", () => {
  it.effect("lists the dead letters of the lookback newest first with their reasons, never their data, and reads each body once", () =>
    Effect.gen(function* () {
      const { lake, put, reads } = lakeAt()
      yield* put(NOW - 40 * 24 * HOUR, deadLetterKey(new Date(NOW - 40 * 24 * HOUR), "shardId-000000000001-1"), deadLetterBody("1", "too old to show", "x"))
      yield* put(NOW - 2 * HOUR, deadLetterKey(new Date(NOW - 2 * HOUR), "shardId-000000000001-2"), deadLetterBody("2", "undecodable: not JSON", new Date(NOW - 2 * HOUR).toISOString()))
      yield* put(
        NOW - 60_000,
        deadLetterKey(new Date(NOW - 60_000), "shardId-000000000001-3"),
        deadLetterBody("3", 'processing failed 2 times: invalid input syntax for type date: "2024-02-30"', new Date(NOW - 60_000).toISOString())
      )
      const reader = makeLakeActivityReader(lake, { now: () => NOW, newest: 5 })

      const activity = yield* reader.read()
      expect(activity.deadLetters.count).toBe(2)
      expect(activity.deadLetters.lookbackDays).toBe(30)
      expect(activity.deadLetters.newest.map((d) => [d.sequenceNumber, d.reason])).toEqual([
        ["3", "processing failed 2 times: invalid input syntax for type date: «value»"],
        ["2", "undecodable: not JSON"]
      ])
      expect(activity.deadLetters.newest[0]).toMatchObject({ shardId: "shardId-000000000001", subSequenceNumber: 0, at: new Date(NOW - 60_000).toISOString() })
      expect(JSON.stringify(activity)).not.toContain("Secret")
      expect(JSON.stringify(activity)).not.toContain(Buffer.from('{"after"').toString("base64").slice(0, 8))

      yield* reader.read()
      expect(reads.filter((k) => k.startsWith("dead-letter/")).length).toBe(2)
    })
  )

  it.effect("shows only the newest N dead letters but counts them all", () =>
    Effect.gen(function* () {
      const { lake, put } = lakeAt()
      for (let i = 0; i < 7; i++) yield* put(NOW - (10 - i) * 60_000, deadLetterKey(new Date(NOW - (10 - i) * 60_000), `shardId-000000000000-${i}`), deadLetterBody(String(i), `reason ${i}`, "t"))
      const activity = yield* makeLakeActivityReader(lake, { now: () => NOW, newest: 3 }).read()
      expect(activity.deadLetters.count).toBe(7)
      expect(activity.deadLetters.newest.map((d) => d.reason)).toEqual(["reason 6", "reason 5", "reason 4"])
    })
  )

  it.effect("counts the raw objects of the last hour and lists the newest first", () =>
    Effect.gen(function* () {
      const { lake, put } = lakeAt()
      yield* put(NOW - 2 * HOUR, rawObjectKey(new Date(NOW - 2 * HOUR), "s", "1", "00000000-0000-0000-0000-000000000001"), "x".repeat(10))
      yield* put(NOW - 50 * 60_000, rawObjectKey(new Date(NOW - 50 * 60_000), "s", "2", "00000000-0000-0000-0000-000000000002"), "x".repeat(100))
      yield* put(NOW - 5_000, rawObjectKey(new Date(NOW - 5_000), "s", "3", "00000000-0000-0000-0000-000000000003"), "x".repeat(1000))
      const activity = yield* makeLakeActivityReader(lake, { now: () => NOW }).read()
      expect(activity.rawLastHour).toEqual({ objects: 2, bytes: 1100 })
      expect(activity.newestRawObjects.map((o) => [o.key.split("-")[1], o.size, o.lastModified])).toEqual([
        ["3", 1000, new Date(NOW - 5_000).toISOString()],
        ["2", 100, new Date(NOW - 50 * 60_000).toISOString()]
      ])
      expect(activity.deadLetters).toEqual({ count: 0, lookbackDays: 30, newest: [] })
    })
  )

  it("a body that is not what the consumer writes still gives a row, saying so", () => {
    expect(summarizeDeadLetter("dead-letter/k.json", "not json", new Date(NOW))).toEqual({
      key: "dead-letter/k.json",
      at: new Date(NOW).toISOString(),
      shardId: null,
      sequenceNumber: null,
      subSequenceNumber: null,
      reason: "(no reason recorded)"
    })
  })

  // The throttle reads a plain clock (Date.now in production), not Effect's Clock: the test moves it by hand.
  it.effect("a throttled reader answers from its last reading for a while; a lake that cannot be read fails the reading", () =>
    Effect.gen(function* () {
      const { lake, put } = lakeAt()
      let clock = NOW
      const reader = throttledLakeActivityReader(makeLakeActivityReader(lake, { now: () => NOW }), 5_000, () => clock)
      expect((yield* reader.read()).deadLetters.count).toBe(0)
      yield* put(NOW, deadLetterKey(new Date(NOW), "shardId-000000000000-9"), deadLetterBody("9", "late", "t"))
      clock += 4_000
      expect((yield* reader.read()).deadLetters.count).toBe(0)
      clock += 2_000
      expect((yield* reader.read()).deadLetters.count).toBe(1)

      const unreachable: LakeStoreShape = { ...lake, list: (prefix) => Effect.fail(new LakeError({ key: prefix, message: "ServiceUnavailable" })) }
      const failed = yield* Effect.flip(makeLakeActivityReader(unreachable).read())
      expect([failed._tag, failed.message]).toEqual(["LakeError", "ServiceUnavailable"])
    })
  )
})
