import { gunzipSync } from "node:zlib"
import { parquetMetadata, parquetReadObjects } from "hyparquet"
import { describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { decodeEvents, decimalText, encodeEvents, naiveTimestampText, unscaledDecimal } from "../../services/lake/parquet-events.ts"
import { readParquetFile } from "../../services/lake/parquet-file-reader.ts"
import { writeParquetColumns, writeParquetRows } from "../../services/lake/parquet-writer.ts"
import { changeEvent, snapshotEvent, truncateEvent } from "../fixtures/events.ts"

const at = (n: number) => ({ commitLsn: `0/${(0x3000000 + n * 0x100).toString(16).toUpperCase()}`, index: n % 3, committedAt: `2024-02-23T12:${String(n % 60).padStart(2, "0")}:00.${String(n * 7919 % 1_000_000).padStart(6, "0")}Z` })

const order = (id: number, extra: Record<string, unknown> = {}) => ({
  sales_order_id: id,
  created_at: "2024-02-23T11:11:10.072",
  last_updated: "2024-02-23T11:11:10",
  design_id: 3,
  staff_id: 4,
  counterparty_id: 5,
  units_sold: 84754,
  unit_price: "12345678.91",
  currency_id: 1,
  agreed_delivery_date: "2024-03-01",
  agreed_payment_date: "2024-03-02",
  agreed_delivery_location_id: 7,
  ...extra
})

const salesEvents = (): Array<ChangeEvent> => [
  snapshotEvent("sales_order", order(1)),
  changeEvent("c", "sales_order", at(1), { after: order(2, { unit_price: "-0.50", last_updated: "2024-02-23T11:11:10.1" }) }),
  // An update whose TOAST column was not sent, with the old row (REPLICA IDENTITY FULL).
  changeEvent("u", "sales_order", at(2), { before: order(2), after: order(2, { units_sold: 1 }), unchanged: ["agreed_delivery_date"] }),
  // Values the typed columns cannot hold exactly: they must come back as they were.
  changeEvent("u", "sales_order", at(3), { after: order(3, { unit_price: "1.5", created_at: "0099-01-01T00:00:00", new_column: { a: 1 }, units_sold: 2 ** 40 }) }),
  changeEvent("d", "sales_order", at(4), { before: { sales_order_id: 2 } }),
  changeEvent("d", "sales_order", at(5), { before: order(3) }),
  changeEvent("c", "sales_order", at(6), { after: order(9, { design_id: null, agreed_delivery_date: "", counterparty_id: null }) }),
  truncateEvent("sales_order", at(7))
]

describe("parquet events", () => {
  it("round-trips every event exactly through the writer and the file reader", async () => {
    const events = salesEvents()
    const encoded = encodeEvents("sales_order", events)
    const bytes = await writeParquetColumns(encoded.columns, encoded.data, encoded.rows)
    expect(decodeEvents("sales_order", readParquetFile(bytes))).toEqual(events)
  })

  it("keeps events of tables it has no schema for, in overrides", async () => {
    const events = [changeEvent("c", "mystery", at(1), { after: { id: 1, v: "x", n: 1.5 } })]
    const encoded = encodeEvents("mystery", events)
    const bytes = await writeParquetColumns(encoded.columns, encoded.data, encoded.rows)
    expect(decodeEvents("mystery", readParquetFile(bytes))).toEqual(events)
  })

  it("writes types an independent reader (hyparquet) reads as the source values", async () => {
    const events = salesEvents()
    const encoded = encodeEvents("sales_order", events)
    const bytes = await writeParquetColumns(encoded.columns, encoded.data, encoded.rows)
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
    const schema = parquetMetadata(file).schema
    const element = (name: string) => schema.find((e) => e.name === name)!
    expect(element("unit_price")).toMatchObject({ type: "INT64", converted_type: "DECIMAL", scale: 2, precision: 10 })
    expect(element("sales_order_id")).toMatchObject({ type: "INT32" })
    expect(element("created_at")).toMatchObject({ type: "INT64", converted_type: "TIMESTAMP_MILLIS" })
    expect(element("committed_at")).toMatchObject({ type: "INT64", converted_type: "TIMESTAMP_MICROS" })
    expect(element("agreed_delivery_date")).toMatchObject({ type: "BYTE_ARRAY", converted_type: "UTF8" })

    const rows = (await parquetReadObjects({ file, compressors: { GZIP: (input: Uint8Array) => new Uint8Array(gunzipSync(input)) } })) as Array<Record<string, any>>
    expect(rows).toHaveLength(events.length)
    const created = rows[1]!
    expect(created.event_id).toBe(events[1]!.id)
    expect(created.op).toBe("c")
    expect(Math.round(created.unit_price * 100)).toBe(-50)
    expect((created.last_updated as Date).toISOString()).toBe("2024-02-23T11:11:10.100Z")
    expect(created.committed_at.getTime()).toBe(Date.parse(events[1]!.source.committedAt))
    expect(rows[0]!.snapshot).toBe(true)
    expect(rows[6]!.design_id).toBeNull()
    expect(rows[6]!.agreed_delivery_date).toBe("")
    expect(rows[7]!.op).toBe("t")
  })

  it("carries the commit LSN as a 64-bit integer that sorts in commit order where the text does not", async () => {
    // 0/9ABCDE0 < 0/10ABCDE0 as positions, but not as text ("0/9" > "0/1").
    const positions = ["0/10ABCDE0", "0/9ABCDE0", "1/0", "0/FFFFFFFF"]
    const events = positions.map((commitLsn, n) => changeEvent("c", "sales_order", { commitLsn, index: 0, committedAt: at(n).committedAt }, { after: order(n + 1) }))
    const encoded = encodeEvents("sales_order", events)
    const bytes = await writeParquetColumns(encoded.columns, encoded.data, encoded.rows)
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
    expect(parquetMetadata(file).schema.find((e) => e.name === "commit_lsn_int")).toMatchObject({ type: "INT64", repetition_type: "REQUIRED" })
    const rows = (await parquetReadObjects({ file, compressors: { GZIP: (input: Uint8Array) => new Uint8Array(gunzipSync(input)) } })) as Array<Record<string, any>>
    expect(rows.map((r) => r.commit_lsn_int)).toEqual([0x10abcde0n, 0x9abcde0n, 0x100000000n, 0xffffffffn])
    const numeric = [...rows].sort((a, b) => (a.commit_lsn_int < b.commit_lsn_int ? -1 : 1)).map((r) => r.commit_lsn)
    expect(numeric).toEqual(["0/9ABCDE0", "0/10ABCDE0", "0/FFFFFFFF", "1/0"])
    expect([...rows].map((r) => r.commit_lsn as string).sort()).not.toEqual(numeric)
  })

  it("decodes files written before commit_lsn_int existed", async () => {
    const events = salesEvents()
    const encoded = encodeEvents("sales_order", events)
    const columns = encoded.columns.filter((c) => c.name !== "commit_lsn_int")
    const bytes = await writeParquetColumns(columns, encoded.data, encoded.rows)
    expect(readParquetFile(bytes).columns.map((c) => c.name)).not.toContain("commit_lsn_int")
    expect(decodeEvents("sales_order", readParquetFile(bytes))).toEqual(events)
  })

  it("gives the same file content through the library's row API", async () => {
    const events = salesEvents()
    const encoded = encodeEvents("sales_order", events)
    const rows = Array.from({ length: encoded.rows }, (_, i) => Object.fromEntries(encoded.columns.map((c) => [c.name, encoded.data[c.name]![i] ?? null])))
    const bytes = await writeParquetRows(encoded.columns, rows)
    expect(decodeEvents("sales_order", readParquetFile(bytes))).toEqual(events)
  })

  it("converts decimals and naive timestamps exactly or not at all", () => {
    expect(unscaledDecimal("12345678.91", 2, 10)).toBe(1234567891)
    expect(unscaledDecimal("-0.50", 2, 10)).toBe(-50)
    expect(unscaledDecimal("1.5", 2, 10)).toBeUndefined()
    expect(unscaledDecimal("123456789.00", 2, 10)).toBeUndefined()
    expect(unscaledDecimal("-0.00", 2, 10)).toBeUndefined()
    expect(decimalText(-50n, 2)).toBe("-0.50")
    expect(decimalText(1234567891, 2)).toBe("12345678.91")
    expect(naiveTimestampText(Date.parse("2024-02-23T11:11:10.120Z"))).toBe("2024-02-23T11:11:10.12")
    expect(naiveTimestampText(Date.parse("2024-02-23T11:11:10.000Z"))).toBe("2024-02-23T11:11:10")
  })
})
