/**
 * The fast lake decoder (services/replay/decode-records.ts) gives exactly the Schema decoder's
 * answer (services/lake/raw.ts parseRawRecords): the same records and the same undecodable lines,
 * for valid events of every shape and for every field of them broken in every way.
 */
import { describe, expect, it } from "vitest"
import type { StreamRecord } from "../../contracts/change-event.ts"
import { parseRawRecords } from "../../services/lake/raw.ts"
import { decodeRecordLines, isPlainStreamRecord } from "../../services/replay/decode-records.ts"
import { changeEvent, heartbeatEvent, snapshotEvent } from "../fixtures/events.ts"
import { syntheticEvents } from "../support/synthetic-lake.ts"

const position = { commitLsn: "0/16B3748", index: 2, committedAt: "2024-02-23T11:11:10.072123Z" }

const valid: Array<StreamRecord> = [
  ...syntheticEvents(400),
  snapshotEvent("currency", { currency_id: 1, currency_code: "GBP", created_at: "2024-01-01T00:00:00", last_updated: "2024-01-01T00:00:00" }),
  changeEvent("u", "design", position, { after: { design_id: 3, design_name: "x", file_location: "/y", file_name: "z.json" }, unchanged: ["file_name"] }),
  changeEvent("d", "sales_order", position, { before: { sales_order_id: 9 } }),
  { ...changeEvent("c", "payment", position, { after: { payment_id: 1 } }), after: null, claimCheck: { bucket: "lake", key: "claims/0/1/x.json", bytes: 2_000_000 } },
  { ...changeEvent("c", "payment", { ...position, commitLsn: "00000000/0150AFD0" }, { after: { payment_id: 1, nested: { a: [1, "b", null] } } }) },
  { kind: "change", schemaVersion: 1, id: "0/1:0", op: "t", source: { db: "totesys", schema: "public", table: "payment", commitLsn: "0/1", lsn: "0/1", xid: 7, committedAt: "2024-01-01T00:00:00Z", index: 0, snapshot: false }, key: null, before: null, after: null, unchanged: [] },
  heartbeatEvent("0/16B3748", "2024-02-23T11:11:11.000001Z")
]

/** Ways to break a value (and a few that are still valid). */
const REPLACEMENTS: ReadonlyArray<unknown> = [null, 0, 1.5, -1, 2 ** 60, "", "x", "0/16B3748", "c", true, false, [], ["a"], [1], {}, { a: 1 }, "change", 1]

const paths = (value: unknown, prefix: Array<string> = []): Array<Array<string>> => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return [prefix]
  return [prefix, ...Object.keys(value).flatMap((key) => paths((value as Record<string, unknown>)[key], [...prefix, key]))].filter((p) => p.length > 0)
}

const withValue = (record: unknown, path: ReadonlyArray<string>, value: unknown | typeof REMOVE): unknown => {
  const copy = structuredClone(record) as Record<string, unknown>
  let cursor = copy
  for (const key of path.slice(0, -1)) cursor = cursor[key] as Record<string, unknown>
  const last = path[path.length - 1]!
  if (value === REMOVE) delete cursor[last]
  else cursor[last] = value
  return copy
}
const REMOVE = Symbol("remove")

const mutations = (record: StreamRecord): Array<string> => {
  const out: Array<string> = []
  for (const path of paths(record)) {
    for (const value of [...REPLACEMENTS, REMOVE]) out.push(JSON.stringify(withValue(record, path, value)))
    // an unknown field next to the known ones (the Schema drops it)
    out.push(JSON.stringify(withValue(record, [...path.slice(0, -1), "extra"], 1)))
  }
  return out
}

describe("fast lake decoder", () => {
  it("accepts valid events of every shape as they are", () => {
    for (const record of valid) expect(isPlainStreamRecord(JSON.parse(JSON.stringify(record))), JSON.stringify(record)).toBe(true)
    const lines = valid.map((record) => JSON.stringify(record))
    expect(decodeRecordLines(lines)).toEqual(parseRawRecords(lines))
  })

  it("gives the Schema decoder's answer for every field broken in every way", () => {
    const lines = valid.slice(-8).flatMap(mutations)
    lines.push("not json", "", "[]", "null", "1", '"text"', '{"kind":"change","schemaVersion":2}', '{"__proto__":{"kind":"change"}}')
    expect(lines.length).toBeGreaterThan(2_000)
    const fast = decodeRecordLines(lines)
    const schema = parseRawRecords(lines)
    expect(fast.undecodable).toEqual(schema.undecodable)
    expect(fast.records).toEqual(schema.records)
    // the mutations are not all rejected: the comparison covers both answers
    expect(schema.records.length).toBeGreaterThan(200)
    expect(schema.undecodable.length).toBeGreaterThan(1_000)
  })
})
