/** The reader's hand-built event JSON is exactly JSON.stringify, and decodes back to the event. */
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import { decodeStreamRecordResult, serializeChangeEvent, type ChangeEvent, type Row } from "../../contracts/change-event.ts"
import { lsnFromBigInt } from "../../contracts/lsn.ts"
import { Random } from "../../tools/source/random.ts"

/** Characters that need escaping or are easy to get wrong, and plain ones. */
const PIECES = [
  "a", "Z", "0", " ", "~", "!", "#", "[", "]", "{", "}", ":", ",", "/",
  '"', "\\", "\\\\", '\\"', "\b", "\f", "\n", "\r", "\t", "\u0000", "\u0001", "\u001f", "\u007f",
  "é", "ü", "€", "日本", "😀", "𝄞", "\u2028", "\u2029", "\ufeff", "\ud800", "\udfff", "</script>"
]

const text = (rng: Random, max = 12) => Array.from({ length: rng.int(0, max) }, () => rng.pick(PIECES)).join("")

const NUMBERS = [0, 1, -1, 42, 2 ** 31, -(2 ** 53) + 1, 2 ** 53 - 1, 0.1, 1.5e-7, 1e21, 123456.789, -3.25, Number.MAX_VALUE, Number.MIN_VALUE]

const jsonValue = (rng: Random, depth = 0): Row[string] => {
  const kind = rng.int(0, depth > 2 ? 4 : 6)
  if (kind === 0) return null
  if (kind === 1) return rng.chance(0.5)
  if (kind === 2) return rng.pick(NUMBERS)
  if (kind === 3 || kind === 4) return text(rng)
  if (kind === 5) return Array.from({ length: rng.int(0, 4) }, () => jsonValue(rng, depth + 1))
  return row(rng, depth + 1)
}

const row = (rng: Random, depth = 0): Record<string, Row[string]> => {
  const out: Record<string, Row[string]> = {}
  for (let i = rng.int(0, 6); i > 0; i--) out[rng.chance(0.7) ? `col_${rng.int(0, 20)}` : text(rng, 4)] = jsonValue(rng, depth)
  return out
}

const lsn = (rng: Random) => lsnFromBigInt(BigInt(rng.uint32()) * BigInt(rng.int(0, 4)) + BigInt(rng.uint32()))

/** A random event, its keys in the contract's order (as the reader and the snapshot build them). */
const randomEvent = (rng: Random): ChangeEvent => {
  const snapshot = rng.chance(0.2)
  const op = snapshot ? "r" : rng.pick(["c", "u", "d", "t"] as const)
  const commitLsn = lsn(rng)
  const table = rng.chance(0.6) ? rng.pick(["payment", "sales_order", "staff"]) : text(rng, 6)
  const key = op === "t" ? null : rng.chance(0.9) ? row(rng, 2) : null
  const event: ChangeEvent = {
    kind: "change",
    schemaVersion: 1,
    id: snapshot ? `${commitLsn}:snapshot:${table}:${text(rng, 3)}` : `${commitLsn}:${rng.int(0, 5000)}`,
    op,
    source: {
      db: rng.chance(0.8) ? "totesys" : text(rng, 5),
      schema: rng.chance(0.8) ? "public" : text(rng, 5),
      table,
      commitLsn,
      lsn: snapshot ? null : lsn(rng),
      xid: snapshot ? null : rng.int(0, 2 ** 32 - 1),
      committedAt: rng.chance(0.9) ? new Date(rng.int(0, 4_102_444_800_000)).toISOString().replace("Z", `${rng.digits(3)}Z`) : text(rng, 8),
      index: snapshot ? -1 : rng.int(0, 100_000),
      snapshot
    },
    key,
    before: op === "u" || op === "d" ? (rng.chance(0.5) ? row(rng) : null) : null,
    after: op === "c" || op === "u" || op === "r" ? row(rng) : null,
    unchanged: op === "u" && rng.chance(0.3) ? Array.from({ length: rng.int(1, 3) }, () => text(rng, 4)) : []
  }
  if (rng.chance(0.1)) {
    return {
      ...event,
      before: null,
      after: null,
      claimCheck: { bucket: text(rng, 5) || "lake", key: `claims/${text(rng, 6)}.json`, bytes: rng.int(0, 50_000_000) }
    }
  }
  return event
}

const decode = (text: string) => Result.getOrThrow(decodeStreamRecordResult(text))

describe("serializeChangeEvent", () => {
  it("equals JSON.stringify for thousands of generated events, and decodes back to the same event", () => {
    const rng = new Random("serialize-change-event")
    let escaped = 0
    for (let i = 0; i < 2000; i++) {
      const event = randomEvent(rng)
      const serialized = serializeChangeEvent(event)
      expect(serialized).toBe(JSON.stringify(event))
      if (serialized.includes("\\")) escaped++
      // Schema decoding costs more: every fourth event is enough to cover every shape.
      if (i % 4 === 0) expect(decode(serialized)).toEqual(event)
    }
    // The generator does exercise escapes.
    expect(escaped).toBeGreaterThan(700)
  })

  it.each([
    ["quotes and backslashes in the table name", { table: 'we"ird\\name' }],
    ["control characters in the schema", { schema: "a\u0000b\u001fc\td" }],
    ["unicode and a lone surrogate in the database name", { db: "dß日本😀\ud800" }],
    ["U+2028/U+2029 in committedAt", { committedAt: "x\u2028y\u2029" }],
    ["DEL in the table name", { table: "t\u007f" }]
  ])("%s", (_, override) => {
    const event: ChangeEvent = {
      kind: "change",
      schemaVersion: 1,
      id: 'id "with" \\ quotes',
      op: "u",
      source: { db: "totesys", schema: "public", table: "payment", commitLsn: "0/16B3748", lsn: "0/16B36A0", xid: 731, committedAt: "2024-02-23T11:11:10.072123Z", index: 0, snapshot: false, ...override },
      key: { payment_id: 7 },
      before: { payment_id: 7, note: 'say "hi"\n' },
      after: { payment_id: 7, note: "\\x00", doc: { nested: ["\u0001", null, true, 1.5] } },
      unchanged: ["big \"col\""]
    }
    expect(serializeChangeEvent(event)).toBe(JSON.stringify(event))
    expect(decode(serializeChangeEvent(event))).toEqual(event)
  })

  it("a snapshot row (op r, no row LSN, no xid, index -1)", () => {
    const event: ChangeEvent = {
      kind: "change",
      schemaVersion: 1,
      id: "0/1600000:snapshot:payment:7",
      op: "r",
      source: { db: "totesys", schema: "public", table: "payment", commitLsn: "0/1600000", lsn: null, xid: null, committedAt: "2024-02-23T10:00:00.000Z", index: -1, snapshot: true },
      key: { payment_id: 7 },
      before: null,
      after: { payment_id: 7, payment_amount: "552548.62" },
      unchanged: []
    }
    expect(serializeChangeEvent(event)).toBe(
      '{"kind":"change","schemaVersion":1,"id":"0/1600000:snapshot:payment:7","op":"r","source":{"db":"totesys","schema":"public","table":"payment","commitLsn":"0/1600000","lsn":null,"xid":null,"committedAt":"2024-02-23T10:00:00.000Z","index":-1,"snapshot":true},"key":{"payment_id":7},"before":null,"after":{"payment_id":7,"payment_amount":"552548.62"},"unchanged":[]}'
    )
    expect(decode(serializeChangeEvent(event))).toEqual(event)
  })

  it("a claim-check stub and a truncate (null key and images)", () => {
    const stub: ChangeEvent = {
      kind: "change",
      schemaVersion: 1,
      id: "0/16B3748:3",
      op: "u",
      source: { db: "totesys", schema: "public", table: "staff", commitLsn: "0/16B3748", lsn: "0/16B36A0", xid: 9, committedAt: "2024-02-23T11:11:10.072123Z", index: 3, snapshot: false },
      key: { staff_id: 1 },
      before: null,
      after: null,
      unchanged: [],
      claimCheck: { bucket: "lake-bucket", key: "claims/0-16B3748-3.json", bytes: 2_000_000 }
    }
    expect(serializeChangeEvent(stub)).toBe(JSON.stringify(stub))
    expect(serializeChangeEvent(stub).endsWith(',"claimCheck":{"bucket":"lake-bucket","key":"claims/0-16B3748-3.json","bytes":2000000}}')).toBe(true)
    expect(decode(serializeChangeEvent(stub))).toEqual(stub)
    const truncate: ChangeEvent = { ...stub, op: "t", key: null, claimCheck: undefined }
    expect(serializeChangeEvent(truncate)).toBe(JSON.stringify(truncate))
    expect(serializeChangeEvent(truncate)).not.toContain("claimCheck")
  })

  it("a symbol-keyed property of a row (the unchanged TOAST list) is left out, as JSON.stringify does", () => {
    const after = { payment_id: 7, [Symbol("unchanged")]: ["note"] } as unknown as Row
    const event: ChangeEvent = {
      kind: "change",
      schemaVersion: 1,
      id: "0/1:0",
      op: "u",
      source: { db: "d", schema: "s", table: "t", commitLsn: "0/1", lsn: "0/1", xid: 1, committedAt: "x", index: 0, snapshot: false },
      key: { payment_id: 7 },
      before: null,
      after,
      unchanged: ["note"]
    }
    expect(serializeChangeEvent(event)).toBe(JSON.stringify(event))
    expect(serializeChangeEvent(event)).toContain('"after":{"payment_id":7}')
  })
})
