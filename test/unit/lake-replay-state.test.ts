import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { parseRawObjectKey, rawHourPrefixes, rawObjectKey } from "../../contracts/lake.ts"
import { decodeRawLines, encodeRawObject, listRawObjects, parseRawRecords } from "../../services/lake/raw.ts"
import { advanceCheckpoint, pendingObjects, type ReplayCheckpoint } from "../../services/replay/progress-state.ts"
import { isoMicros, parseBound, selectEvents } from "../../services/replay/window.ts"
import { changeEvent, heartbeatEvent, snapshotEvent } from "../fixtures/events.ts"
import { memoryLake } from "../support/lake-memory.ts"

const UUID = "0b9f3c1e-1111-4222-8333-444455556666"

describe("lake keys", () => {
  it("parses the raw key layout back", () => {
    const key = rawObjectKey(new Date("2024-02-23T11:59:59.999Z"), "totes-changes", "4968044762332244", UUID)
    expect(key).toBe(`raw/2024/02/23/11/totes-changes-4968044762332244-${UUID}.ndjson.gz`)
    expect(parseRawObjectKey(key)).toEqual({ hour: new Date("2024-02-23T11:00:00Z"), stream: "totes-changes", firstSequence: "4968044762332244" })
    // Firehose's own names: the hour still counts.
    expect(parseRawObjectKey("raw/2024/02/23/11/totes-1-2024-02-23-11-00-00-abc")).toMatchObject({ hour: new Date("2024-02-23T11:00:00Z"), stream: undefined })
    expect(parseRawObjectKey("raw/2024/02/23/x.gz")).toBeUndefined()
    expect(rawHourPrefixes(new Date("2024-02-23T11:30:00Z"), new Date("2024-02-23T13:00:00Z"))).toEqual(["raw/2024/02/23/11/", "raw/2024/02/23/12/", "raw/2024/02/23/13/"])
  })

  it("encodes one record a line and reports lines that are not stream records", () => {
    const events = [snapshotEvent("currency", { currency_id: 1, currency_code: "GBP", created_at: "2024-01-01T00:00:00", last_updated: "2024-01-01T00:00:00" })]
    const body = encodeRawObject([...events.map((e) => JSON.stringify(e)), '{"kind":"change"}', "not json"])
    const lines = decodeRawLines(body)
    expect(lines).toHaveLength(3)
    const parsed = parseRawRecords(lines)
    expect(parsed.records).toEqual(events)
    expect(parsed.undecodable.map((u) => u.line)).toEqual([2, 3])
  })

  it.effect("lists the raw objects that can hold events of a window", () =>
    Effect.gen(function* () {
      const lake = memoryLake()
      for (const hour of ["2024-02-23T09:10:00Z", "2024-02-23T10:59:00Z", "2024-02-23T12:00:00Z", "2024-02-23T15:00:00Z"]) {
        yield* lake.putNew(rawObjectKey(new Date(hour), "s", "1", UUID), encodeRawObject(["{}"]), "x")
      }
      const hours = (window: Parameters<typeof listRawObjects>[1]) => Effect.map(listRawObjects(lake, window), (objects) => objects.map((o) => o.hour.toISOString().slice(11, 13)))
      expect(yield* hours({})).toEqual(["09", "10", "12", "15"])
      // From 11:30: objects keyed an hour earlier may still hold it (buffering, clock skew).
      expect(yield* hours({ from: new Date("2024-02-23T11:30:00Z") })).toEqual(["10", "12", "15"])
      // To: unbounded by default (late delivery), bounded with a maximum delay.
      expect(yield* hours({ to: new Date("2024-02-23T11:00:00Z") })).toEqual(["09", "10", "12", "15"])
      expect(yield* hours({ to: new Date("2024-02-23T11:00:00Z"), maxDeliveryDelayMs: 3_600_000 })).toEqual(["09", "10", "12"])
    })
  )
})

describe("replay window", () => {
  const at = (lsn: string, committedAt: string, index = 0) => ({ commitLsn: lsn, index, committedAt })
  const a = changeEvent("c", "address", at("0/100", "2024-02-23T12:00:00.000100Z"), { after: { address_id: 1 } })
  const b = changeEvent("u", "address", at("0/200", "2024-02-23T12:00:00.000900Z"), { after: { address_id: 1 } })
  const c = changeEvent("c", "staff", at("0/300", "2024-02-23T12:00:01.000000Z"), { after: { staff_id: 1 } })
  const records = [c, heartbeatEvent("0/300", "2024-02-23T12:00:01.000000Z"), a, b]

  it("parses times and LSNs", () => {
    expect(parseBound("0/16b3748")).toEqual({ kind: "lsn", lsn: "0/16B3748" })
    expect(parseBound("2024-02-23T12:00:00Z")).toEqual({ kind: "time", at: new Date("2024-02-23T12:00:00Z") })
    expect(parseBound("2024-02-23")).toEqual({ kind: "time", at: new Date("2024-02-23T00:00:00Z") })
    expect(parseBound("2024-02-23T12:00")).toEqual({ kind: "time", at: new Date("2024-02-23T12:00:00Z") })
    expect(() => parseBound("yesterday")).toThrow(/not a time or an LSN/)
    expect(isoMicros("2024-02-23T12:00:00.000900Z") - isoMicros("2024-02-23T12:00:00Z")).toBe(900)
  })

  it("keeps change events inside the window (microseconds count) of the chosen tables, never heartbeats", () => {
    expect(selectEvents(records, {}).map((e) => e.id)).toEqual([c.id, a.id, b.id])
    expect(selectEvents(records, { to: parseBound("2024-02-23T12:00:00.000Z") }).map((e) => e.id)).toEqual([])
    expect(selectEvents(records, { to: parseBound("2024-02-23T12:00:00.001Z") }).map((e) => e.id)).toEqual([a.id, b.id])
    expect(selectEvents(records, { to: parseBound("0/200") }).map((e) => e.id)).toEqual([a.id, b.id])
    expect(selectEvents(records, { from: parseBound("0/200"), to: parseBound("0/200") }).map((e) => e.id)).toEqual([b.id])
    expect(selectEvents(records, { from: parseBound("2024-02-23T12:00:00.001Z") }).map((e) => e.id)).toEqual([c.id])
    expect(selectEvents(records, { tables: ["staff"] }).map((e) => e.id)).toEqual([c.id])
  })
})

describe("replay checkpoint", () => {
  const listedAt = "2024-02-23T12:00:00.000Z"
  const checkpoint: ReplayCheckpoint = {
    version: 1,
    fingerprint: "f",
    appliedThrough: "raw/b",
    listedAt,
    objects: 2,
    events: 10,
    startedAt: listedAt,
    updatedAt: listedAt
  }
  const object = (key: string, modified: string) => ({ key, lastModified: new Date(modified) })

  it("skips only objects the checkpoint covers: applied and already listed then", () => {
    const listing = [
      object("raw/c", "2024-02-23T11:00:00Z"),
      object("raw/a", "2024-02-23T11:00:00Z"),
      object("raw/b", "2024-02-23T11:00:00Z"),
      // An older key that appeared after the listing (late delivery), and one written during it.
      object("raw/a2", "2024-02-23T12:30:00Z"),
      object("raw/a3", "2024-02-23T11:58:00Z")
    ]
    expect(pendingObjects(listing, undefined).map((o) => o.key)).toEqual(["raw/a", "raw/a2", "raw/a3", "raw/b", "raw/c"])
    expect(pendingObjects(listing, checkpoint).map((o) => o.key)).toEqual(["raw/a2", "raw/a3", "raw/c"])
    expect(pendingObjects(listing, checkpoint, 0).map((o) => o.key)).toEqual(["raw/a2", "raw/c"])
    expect(pendingObjects([{ key: "raw/a", lastModified: undefined }], checkpoint).map((o) => o.key)).toEqual(["raw/a"])
  })

  it("advances only once the run has passed the stored position, never backwards", () => {
    const later = "2024-02-23T13:00:00.000Z"
    expect(advanceCheckpoint(checkpoint, "raw/a2", later, { objects: 3, events: 11 })).toBeUndefined()
    expect(advanceCheckpoint(checkpoint, "raw/c", later, { objects: 4, events: 12 })).toMatchObject({ appliedThrough: "raw/c", listedAt: later, objects: 4, events: 12 })
  })
})
