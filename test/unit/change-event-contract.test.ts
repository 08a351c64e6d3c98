import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { changeEventJsonSchemaText, decodeStreamRecord, decodeStreamRecordResult, type ChangeEvent } from "../../contracts/change-event.ts"

const valid: ChangeEvent = {
  kind: "change",
  schemaVersion: 1,
  id: "0/16B3748:0",
  op: "u",
  source: { db: "totesys", schema: "public", table: "payment", commitLsn: "0/16B3748", lsn: "0/16B36A0", xid: 731, committedAt: "2024-02-23T11:11:10.072123Z", index: 0, snapshot: false },
  key: { payment_id: 7 },
  before: null,
  after: { payment_id: 7, payment_amount: "552548.62", paid: true, last_updated: "2024-02-23T11:11:10.072" },
  unchanged: []
}

/** The decoder is synchronous: its tests are plain; one checks the Effect form says the same. */
const decode = decodeStreamRecordResult

describe("change event contract v1", () => {
  it("the committed JSON Schema is the one the Effect Schema exports", () => {
    const committed = readFileSync(new URL("../../contracts/change-event.schema.json", import.meta.url), "utf8")
    expect(committed, "run: node --import tsx scripts/export-json-schema.ts").toBe(changeEventJsonSchemaText())
  })

  it("decodes a valid event from JSON text and from a value", () => {
    expect(Result.getOrThrow(decode(JSON.stringify(valid)))).toEqual(valid)
    expect(Result.getOrThrow(decode(valid))).toEqual(valid)
  })

  it.each([
    ["schemaVersion", { ...valid, schemaVersion: 2 }, /unsupported schemaVersion 2/],
    ["source.commitLsn", { ...valid, source: { ...valid.source, commitLsn: "not-an-lsn" } }, /LSN/],
    ["op", { ...valid, op: "x" }, /./],
    ["source.index", { ...valid, source: { ...valid.source, index: 1.5 } }, /./],
    ["id", { ...valid, id: "" }, /./],
    ["source.table", { ...valid, source: { ...valid.source, table: undefined } }, /./]
  ])("rejects a malformed %s with a typed error naming the field", (field, value, message) => {
    const result = decode(value)
    expect(Result.isFailure(result)).toBe(true)
    if (Result.isFailure(result)) {
      expect(result.failure._tag).toBe("EventDecodeError")
      expect(result.failure.field).toBe(field)
      expect(result.failure.message).toMatch(message)
    }
  })

  it("rejects text that is not JSON", () => {
    const result = decode("{oops")
    expect(Result.isFailure(result) && result.failure.message).toMatch(/not JSON/)
  })

  it.effect("the Effect form succeeds and fails as the synchronous decoder does", () =>
    Effect.gen(function* () {
      expect(yield* decodeStreamRecord(JSON.stringify(valid))).toEqual(valid)
      const malformed = { ...valid, source: { ...valid.source, commitLsn: "not-an-lsn" } }
      const error = yield* Effect.flip(decodeStreamRecord(malformed))
      const synchronous = Result.getOrThrow(Result.flip(decode(malformed)))
      expect([error._tag, error.field, error.message]).toEqual(["EventDecodeError", "source.commitLsn", synchronous.message])
    })
  )
})
