/**
 * Pure parts of the bulk initial snapshot: COPY's text format read back, the set-wise merge's
 * fact mapping held to the projection's, the choice of the set-wise path, and the progress line.
 */
import { describe, expect, it } from "@effect/vitest"
import { SCHEMA_VERSION, type ChunkColumn, type Row, type SnapshotChunk } from "../../contracts/change-event.ts"
import { describeSnapshotProgress } from "../../contracts/checkpoint.ts"
import { PgType } from "../../contracts/pg-text-values.ts"
import { Effect } from "effect"
import { chunkEvents, expandSnapshotChunks, parseCopyText } from "../../services/lake/snapshot-chunks.ts"
import { LakeError, type LakeStoreShape } from "../../services/shared/lake-store.ts"
import { memoryLake } from "../support/lake-memory.ts"
import { FACT_COLUMNS, FACT_SOURCES, splitTimestamp, toFactRow, type FactTable, type RowChange } from "../../services/warehouse/projection.ts"
import { FACT_DERIVATIONS, setWiseCheck } from "../../services/warehouse/snapshot-merge.ts"
import { renderDashboard } from "../../tools/dev/dashboard.ts"
import { pipelineStatus } from "../fixtures/status.ts"

const column = (name: string, typeOid: number, category = "N", typeName = "integer"): ChunkColumn => ({ name, typeOid, typeName, category })

const pointer = (table: string, columns: ReadonlyArray<ChunkColumn>, keyColumns = [columns[0]!.name]): SnapshotChunk => ({
  kind: "snapshot-chunk",
  schemaVersion: SCHEMA_VERSION,
  id: `0/3000000:snapshot-chunk:${table}:abc:0`,
  source: { db: "totesys", schema: "public", table, commitLsn: "0/3000000", lsn: null, xid: null, committedAt: "2024-02-23T12:00:00.000Z", index: -1, snapshot: true },
  keyColumns,
  columns,
  chunk: 0,
  rows: 1,
  object: { bucket: "lake", key: "snapshots/x", bytes: 1 }
})

describe("COPY text format", () => {
  it("reads fields back: tabs, NULL, every escape COPY writes", () => {
    expect(parseCopyText("1\t\\N\ta\\tb\\nc\\\\d\\re\\bf\\fg\\vh\n2\t\t\\\\N\n")).toEqual([
      ["1", null, "a\tb\nc\\d\re\bf\fg\vh"],
      ["2", "", "\\N"]
    ])
  })

  it("a chunk's rows become the row-by-row snapshot's events: same id, key and lossless values", () => {
    const chunk = pointer("design", [
      column("design_id", PgType.int4),
      column("created_at", PgType.timestamp, "D", "timestamp(3) without time zone"),
      column("design_name", 25, "S", "text"),
      column("price", PgType.numeric, "N", "numeric(10,2)"),
      column("flag", PgType.bool, "B", "boolean")
    ])
    const [event] = chunkEvents(chunk, "7\t2024-02-23 11:11:10.07\tWood\\tOak\t12.50\tt\n")
    expect(event).toEqual({
      kind: "change",
      schemaVersion: SCHEMA_VERSION,
      id: "0/3000000:snapshot:design:7",
      op: "r",
      source: chunk.source,
      key: { design_id: 7 },
      before: null,
      after: { design_id: 7, created_at: "2024-02-23T11:11:10.07", design_name: "Wood\tOak", price: "12.50", flag: true },
      unchanged: []
    })
  })
})

/** FACT_DERIVATIONS read in JavaScript, as the set-wise SQL reads them. */
const derived = (fact: FactTable, image: Row) =>
  Object.fromEntries(
    Object.entries(FACT_DERIVATIONS[fact]).map(([target, [from, how]]) => {
      const value = image[from] ?? null
      if (how === "date-of") return [target, splitTimestamp(value, from).date]
      if (how === "time-of") return [target, splitTimestamp(value, from).time]
      return [target, value]
    })
  )

describe("the set-wise merge's fact mapping", () => {
  const images: Record<FactTable, Row> = {
    fact_sales_order: {
      sales_order_id: 5, created_at: "2024-02-23T11:11:10.072", last_updated: "2024-02-24T09:00:00", design_id: 3, staff_id: 9, counterparty_id: 2,
      units_sold: 40, unit_price: "3.50", currency_id: 1, agreed_delivery_date: "2024-03-01", agreed_payment_date: "2024-03-02", agreed_delivery_location_id: 7
    },
    fact_purchase_order: {
      purchase_order_id: 6, created_at: "2024-02-23T11:11:10.072", last_updated: "2024-02-24T09:00:00", staff_id: 9, counterparty_id: 2, item_code: "X1",
      item_quantity: 4, item_unit_price: "10.00", currency_id: 2, agreed_delivery_date: "2024-03-01", agreed_payment_date: "2024-03-02", agreed_delivery_location_id: 7
    },
    fact_payment: {
      payment_id: 8, created_at: "2024-02-23T11:11:10.072", last_updated: "2024-02-24T09:00:00", transaction_id: 11, counterparty_id: 2, payment_amount: "140.00",
      currency_id: 1, payment_type_id: 1, paid: false, payment_date: "2024-03-02", company_ac_number: 1, counterparty_ac_number: 2
    }
  }

  for (const fact of Object.keys(images) as Array<FactTable>) {
    it(`${fact}: every diagram column, as the projection maps it`, () => {
      const image = images[fact]
      const key = image[Object.keys(image)[0]!] as number
      const change: RowChange = {
        table: FACT_SOURCES[fact], key, op: "r", eventId: "e", position: { lsn: "0/3000000", seq: -1 }, committedAt: "2024-02-23T12:00:00.000Z", image, fill: [], fillKey: key
      }
      const row = toFactRow(fact, change, image)
      expect(Object.keys(FACT_DERIVATIONS[fact]).sort()).toEqual([...FACT_COLUMNS[fact]].sort())
      expect(derived(fact, image)).toEqual(Object.fromEntries(FACT_COLUMNS[fact].map((c) => [c, row[c]])))
    })
  }
})

describe("when a chunk takes the set-wise path", () => {
  const sales = [
    column("sales_order_id", PgType.int4),
    column("created_at", PgType.timestamp, "D"),
    column("last_updated", PgType.timestamp, "D"),
    column("design_id", PgType.int4),
    column("staff_id", PgType.int4),
    column("counterparty_id", PgType.int4),
    column("units_sold", PgType.int4),
    column("unit_price", PgType.numeric, "N", "numeric(10,2)"),
    column("currency_id", PgType.int4),
    column("agreed_delivery_date", 25, "S", "text"),
    column("agreed_payment_date", 25, "S", "text"),
    column("agreed_delivery_location_id", PgType.int4)
  ]

  it("the totesys types: yes, with value checks for money and text dates", () => {
    const check = setWiseCheck(pointer("sales_order", sales))
    expect("valueChecks" in check && check.valueChecks.length).toBe(3)
  })

  it("a type the schema check would normalise or pause, a missing column, an unknown table or key: the row path", () => {
    const widened = sales.map((c) => (c.name === "units_sold" ? column("units_sold", PgType.int8, "N", "bigint") : c))
    expect(setWiseCheck(pointer("sales_order", widened))).toEqual({ reason: "column units_sold is bigint, not what the warehouse's int column takes as it is" })
    expect(setWiseCheck(pointer("sales_order", sales.filter((c) => c.name !== "unit_price")))).toEqual({ reason: "column unit_price is missing" })
    expect(setWiseCheck(pointer("audit_log", sales))).toEqual({ reason: "audit_log is not a table of the star schema" })
    expect(setWiseCheck(pointer("sales_order", sales, ["design_id"]))).toEqual({ reason: "key design_id is not sales_order_id" })
  })
})

describe("snapshot progress in totes status and the dashboard", () => {
  it("the dashboard shows a line per table while the snapshot runs, none after", () => {
    const startedAt = "2026-11-27T09:59:50.000Z"
    const progress = [{ table: "sales_order", rows: 100_000, estimatedRows: 400_000, startedAt, updatedAt: startedAt, done: false }]
    const figures = { published: 0, applied: 0, deadLettered: 0, warehouseRetries: 0, publishRetries: 0, lakeObjects: 0, lakeBytes: 0, replicationLagBytes: null, latencies: [], latenciesSeen: 0, history: [] }
    const input = (status: ReturnType<typeof pipelineStatus>) => ({ startedAt: 0, figures, status, simulated: { transactions: 0, rowChanges: 0 }, lake: undefined, errors: [], envPath: ".env" })
    const running = renderDashboard(input(pipelineStatus({ snapshot: { consistentPoint: "0/3000000", createdAt: startedAt, tablesDone: [], complete: false, progress } })), Date.parse("2026-11-27T10:00:00.000Z"))
    expect(running.filter((line) => line.includes("snapshot"))).toEqual(["  snapshot sales_order: 100,000 of ~400,000 rows, 10,000 rows/s, ETA 30.0 s"])
    expect(renderDashboard(input(pipelineStatus()), Date.parse("2026-11-27T10:00:00.000Z")).filter((line) => line.includes("snapshot"))).toEqual([])
  })

  it("rows, rows/s and the ETA from the estimate while a table runs; its time and rate once done", () => {
    const startedAt = "2026-01-01T00:00:00.000Z"
    expect(describeSnapshotProgress({ table: "sales_order", rows: 250_000, estimatedRows: 1_000_000, startedAt, updatedAt: startedAt, done: false }, Date.parse(startedAt) + 5_000)).toBe(
      "sales_order: 250,000 of ~1,000,000 rows, 50,000 rows/s, ETA 15.0 s"
    )
    expect(describeSnapshotProgress({ table: "staff", rows: 20, estimatedRows: 20, startedAt, updatedAt: "2026-01-01T00:00:00.500Z", done: true }, Date.parse(startedAt) + 60_000)).toBe(
      "staff: done, 20 rows in 0.5 s, 40 rows/s"
    )
  })
})

describe("expanding chunks in a lake read", () => {
  it.effect("lists a chunk missing from the lake as unresolved, and stops on a lake that cannot be read", () =>
    Effect.gen(function* () {
      const chunk = pointer("currency", [column("currency_id", PgType.int4)])
      const lake = memoryLake()
      expect(yield* expandSnapshotChunks(lake, [chunk])).toEqual({ records: [], unresolved: [chunk.id] })
      const down: LakeStoreShape = { ...lake, get: (key) => Effect.fail(new LakeError({ key, message: "connect ECONNREFUSED 127.0.0.1:4566" })) }
      const failure = yield* Effect.flip(expandSnapshotChunks(down, [chunk]))
      expect([failure._tag, failure.key, failure.message]).toEqual(["LakeError", chunk.object.key, "connect ECONNREFUSED 127.0.0.1:4566"])
    })
  )
})
