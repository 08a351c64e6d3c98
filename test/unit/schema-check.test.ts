/** The warehouse's check of each change against the catalogue: what fits, what breaks, what the operator's decisions change. */
import { describe, expect, it } from "vitest"
import type { ChangeEvent, Row } from "../../contracts/change-event.ts"
import { PRIMARY_KEYS, SOURCE_COLUMNS, type TotesysTable } from "../../contracts/totesys.ts"
import { USED_SOURCE_COLUMNS } from "../../contracts/warehouse-catalogue.ts"
import { checkEvent, fitValue, NO_DECISIONS } from "../../services/warehouse/schema-check.ts"

const design = (after: Row | null, op: ChangeEvent["op"] = "u", before: Row | null = null, unchanged: Array<string> = []): ChangeEvent => ({
  kind: "change",
  schemaVersion: 1,
  id: "0/100:0",
  op,
  source: { db: "totesys", schema: "public", table: "design", commitLsn: "0/100", lsn: "0/F0", xid: 1, committedAt: "2024-03-01T10:00:00.000Z", index: 0, snapshot: false },
  key: { design_id: 1 },
  before,
  after,
  unchanged
})

const full = { design_id: 1, created_at: "2024-03-01T10:00:00.000", design_name: "Wooden", file_location: "/usr", file_name: "w.json", last_updated: "2024-03-01T10:00:00.000" }

describe("checkEvent", () => {
  it("lets a complete change through unchanged, also with a new column or without a column the warehouse does not use", () => {
    const event = design({ ...full, colour: "red" })
    expect(checkEvent(event)).toEqual({ _tag: "Fits", event })
    const { created_at: _dropped, ...withoutUnused } = full
    const narrower = design(withoutUnused)
    expect(checkEvent(narrower)).toEqual({ _tag: "Fits", event: narrower })
  })

  it("breaks on a used column that is missing (renamed or dropped), naming table and column, never the value", () => {
    const { design_name: _gone, ...rest } = full
    const result = checkEvent(design({ ...rest, title: "Secret name" }))
    expect(result).toEqual({
      _tag: "Breaks",
      violation: { table: "design", column: "design_name", problem: "missing", detail: "the change has no column design_name (renamed or dropped in the source)" }
    })
    expect(JSON.stringify(result)).not.toContain("Secret")
  })

  it("maps a renamed column once the operator has said so; accepts a dropped one as NULL", () => {
    const { design_name: _gone, ...rest } = full
    const renamed = checkEvent(design({ ...rest, title: "Wooden" }), { ...NO_DECISIONS, renamed: { design_name: "title" } })
    expect(renamed._tag === "Fits" && renamed.event.after).toEqual({ ...rest, title: "Wooden", design_name: "Wooden" })
    const dropped = checkEvent(design(rest), { ...NO_DECISIONS, missingAccepted: ["design_name"] })
    expect(dropped._tag === "Fits" && dropped.event.after).toEqual({ ...rest, design_name: null })
  })

  it("does not ask an unchanged TOAST column or a key-only delete for what they cannot carry", () => {
    const { file_location: _toast, ...rest } = full
    expect(checkEvent(design(rest, "u", null, ["file_location"]))._tag).toBe("Fits")
    expect(checkEvent(design(null, "d", { design_id: 1 }))._tag).toBe("Fits")
    const { design_name: _gone, ...oldRest } = full
    expect(checkEvent(design(null, "d", oldRest))).toMatchObject({ _tag: "Breaks", violation: { column: "design_name", problem: "missing" } })
  })

  it("normalises values that still fit a widened type and breaks on values that do not", () => {
    const order = (units: unknown): ChangeEvent => ({
      ...design(null),
      source: { ...design(null).source, table: "sales_order" },
      key: { sales_order_id: 1 },
      after: {
        sales_order_id: 1, created_at: "2024-03-01T10:00:00.000", last_updated: "2024-03-01T10:00:00.000", design_id: 1, staff_id: 1, counterparty_id: 1,
        units_sold: units as Row[string], unit_price: "2.50", currency_id: 1, agreed_delivery_date: "2024-03-02", agreed_payment_date: "2024-03-03", agreed_delivery_location_id: 1
      }
    })
    const widened = checkEvent(order("84755.00"))
    expect(widened._tag === "Fits" && widened.event.after?.units_sold).toBe(84755)
    expect(checkEvent(order("84755.50"))).toEqual({
      _tag: "Breaks",
      violation: { table: "sales_order", column: "units_sold", problem: "type", detail: "units_sold holds a number with decimals, which does not fit the warehouse's int column" }
    })
    expect(checkEvent(order("84755.50"), { ...NO_DECISIONS, typeAccepted: ["units_sold"] })._tag).toBe("Fits")
  })

  it("ignores truncations and tables the warehouse does not build on", () => {
    const truncate = { ...design(null, "t"), key: null }
    expect(checkEvent(truncate)).toEqual({ _tag: "Fits", event: truncate })
    const other = { ...design({ x: 1 }), source: { ...design(null).source, table: "audit_log" } }
    expect(checkEvent(other)).toEqual({ _tag: "Fits", event: other })
  })
})

describe("fitValue", () => {
  it.each([
    ["int", 5, 5], ["int", "5", 5], ["int", "5.000", 5], ["int", "5.5", undefined], ["int", 2_147_483_648, undefined], ["int", true, undefined],
    ["money", "12345678.99", "12345678.99"], ["money", "12.500", "12.500"], ["money", "123456789.00", undefined], ["money", "1.005", undefined], ["money", 3.5, "3.5"],
    ["text", "a", "a"], ["text", 42, "42"], ["text", { a: 1 }, undefined],
    ["timestamp", "2024-02-23T11:11:10.072", "2024-02-23T11:11:10.072"], ["timestamp", "2024-02-23T11:11:10.072Z", undefined],
    ["date", "2024-02-23", "2024-02-23"], ["date", "23/02/2024", undefined],
    ["bool", false, false], ["bool", "t", undefined],
    ["int", null, null]
  ] as const)("%s %j → %j", (kind, value, expected) => {
    expect(fitValue(kind, value as Row[string])).toEqual(expected)
  })

  it("the catalogue names only columns of the source schema, every primary key among them", () => {
    for (const [table, columns] of Object.entries(USED_SOURCE_COLUMNS)) {
      const source = SOURCE_COLUMNS[table as TotesysTable] as ReadonlyArray<string>
      expect(Object.keys(columns).filter((c) => !source.includes(c)), table).toEqual([])
      expect(columns, table).toHaveProperty(PRIMARY_KEYS[table as TotesysTable])
    }
  })
})
