/**
 * The lake as a dataset: the Glue table specs (infra/lake-catalog-spec.ts) against what
 * compaction really writes and what the stream really carries, and the local DuckDB views
 * (tools/lake/duckdb.ts) against the same specs, with the example queries
 * (services/lake/queries.ts) answering what an independent computation over the events says.
 *
 * The events: the synthetic history of the benchmarks (all 11 tables, the reader's encoding),
 * plus updates, a delete, a duplicate delivery and a truncate of sales orders, written as raw
 * objects and compacted by the real compaction.
 */
import { randomUUID } from "node:crypto"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { parquetMetadata, type SchemaElement } from "hyparquet"
import type { ChangeEvent, Heartbeat, Row, StreamRecord } from "../../contracts/change-event.ts"
import { PARQUET_PREFIX, rawObjectKey } from "../../contracts/lake.ts"
import { lsnFromBigInt } from "../../contracts/lsn.ts"
import { TOTESYS_TABLES } from "../../contracts/totesys.ts"
import {
  glueType,
  hiveFieldType,
  lakeDatabaseName,
  lakeTableSpecs,
  parquetTableSpec,
  rawTableSpec,
  validateWorkgroupSettings,
  workgroupConfiguration,
  type GlueTableSpec
} from "../../infra/lake-catalog-spec.ts"
import { stageConfig } from "../../infra/stage-config.ts"
import { compactLake } from "../../services/lake/compact.ts"
import { readManifests } from "../../services/lake/manifest.ts"
import { parquetColumns } from "../../services/lake/parquet-events.ts"
import { CHANGES_PER_TABLE_PER_HOUR, EXAMPLE_QUERIES, SALES_ORDER_HISTORY, SALES_ORDERS_AT } from "../../services/lake/queries.ts"
import { encodeRawObject } from "../../services/lake/raw.ts"
import { RAW_RECORD_FIELDS } from "../../services/lake/tables.ts"
import { makeMemoryLakeStore } from "../../services/shared/lake-store.ts"
import { openLocalLake, type LocalLake } from "../../tools/lake/duckdb.ts"
import { changeEvent, heartbeatEvent, truncateEvent } from "../fixtures/events.ts"
import { syntheticEvents } from "../support/synthetic-lake.ts"

const BUCKET = "totes-dev-lake"
const settings = { location: (prefix: string) => `s3://${BUCKET}/${prefix}`, firstDate: "2024-01-01" }

// --- the events ---------------------------------------------------------------------------------

const synthetic = [...syntheticEvents(700, 7)]
const lastSynthetic = synthetic.at(-1)!
const at = (offsetSeconds: number, index = 0) => {
  const ms = Date.parse(lastSynthetic.source.committedAt) + offsetSeconds * 1000
  return { commitLsn: lsnFromBigInt(0x9000000n + BigInt(offsetSeconds) * 0x100n), index, committedAt: `${new Date(ms).toISOString().slice(0, 19)}.${String(offsetSeconds * 1001).padStart(6, "0")}Z` }
}
const orderOf = (id: number) => synthetic.find((e) => e.source.table === "sales_order" && e.after?.sales_order_id === id)!.after!
/** After the synthetic history: order 2 updated twice, order 3 deleted, then all truncated and order 1 inserted again. */
const extra: Array<ChangeEvent> = [
  changeEvent("u", "sales_order", at(10), { before: orderOf(2), after: { ...orderOf(2), units_sold: 11, staff_id: 3, last_updated: "2024-02-27T09:00:00.5" } }),
  changeEvent("u", "sales_order", at(20, 1), { before: orderOf(2), after: { ...orderOf(2), units_sold: 12, unit_price: "0.10", last_updated: "2024-02-27T09:00:10.25" } }),
  changeEvent("d", "sales_order", at(30), { before: { sales_order_id: 3 } }),
  truncateEvent("sales_order", at(40)),
  changeEvent("c", "sales_order", at(40, 1), { after: { ...orderOf(1), units_sold: 99 } })
]
const heartbeat: Heartbeat = heartbeatEvent(at(41).commitLsn, at(41).committedAt)
const events: Array<ChangeEvent> = [...synthetic, ...extra]
/** Duplicate delivery: the first update arrives twice, in two raw objects. */
const delivered: Array<StreamRecord> = [...events, extra[0]!, heartbeat]

const dayOf = (event: ChangeEvent) => event.source.committedAt.slice(0, 10)

// --- pure specs ---------------------------------------------------------------------------------

describe("Glue table specs", () => {
  it("one table per source table over parquet/<table>/, with the compaction schema's columns and types, and raw", () => {
    const specs = lakeTableSpecs(settings)
    expect(specs.map((s) => s.name)).toEqual([...TOTESYS_TABLES, "raw"])
    const sales = parquetTableSpec("sales_order", settings)
    expect(sales.location).toBe(`s3://${BUCKET}/parquet/sales_order/`)
    expect(sales.columns).toEqual(parquetColumns("sales_order").map((c) => ({ name: c.name, type: glueType(c.type) })))
    const typeOf = (name: string) => sales.columns.find((c) => c.name === name)!.type
    expect([typeOf("unit_price"), typeOf("units_sold"), typeOf("created_at"), typeOf("committed_at"), typeOf("xid"), typeOf("snapshot"), typeOf("agreed_payment_date")]).toEqual([
      "decimal(10,2)",
      "int",
      "timestamp",
      "timestamp",
      "bigint",
      "boolean",
      "string"
    ])
    expect(sales.columns.slice(0, 7).map((c) => c.name)).toEqual(["event_id", "op", "commit_lsn", "commit_lsn_int", "commit_index", "committed_at", "snapshot"])
    expect(sales.partitionKeys.map((k) => [k.name, k.type])).toEqual([["date", "string"]])
    expect(sales.serializationLibrary).toBe("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
    expect(sales.parameters).toMatchObject({
      "projection.enabled": "true",
      "projection.date.type": "date",
      "projection.date.format": "yyyy-MM-dd",
      "projection.date.range": "2024-01-01,NOW",
      "projection.date.interval.unit": "DAYS",
      "storage.location.template": `s3://${BUCKET}/parquet/sales_order/date=\${date}/`
    })
  })

  it("the raw table: JSON records under raw/, hourly partition projection matching the Firehose prefix", () => {
    const raw = rawTableSpec(settings)
    expect(raw.location).toBe(`s3://${BUCKET}/raw/`)
    expect(raw.serializationLibrary).toBe("org.openx.data.jsonserde.JsonSerDe")
    expect(raw.serdeParameters["case.insensitive"]).toBe("TRUE")
    expect(raw.columns.find((c) => c.name === "source")!.type).toBe(
      "struct<db:string,schema:string,table:string,commitlsn:string,lsn:string,xid:bigint,committedat:string,index:int,snapshot:boolean>"
    )
    expect(raw.columns.filter((c) => ["key", "before", "after", "unchanged"].includes(c.name)).map((c) => c.type)).toEqual(["map<string,string>", "map<string,string>", "map<string,string>", "array<string>"])
    expect(raw.partitionKeys.map((k) => k.name)).toEqual(["arrival_hour"])
    expect(raw.parameters).toMatchObject({
      "projection.arrival_hour.format": "yyyy/MM/dd/HH",
      "projection.arrival_hour.range": "2024/01/01/00,NOW",
      "projection.arrival_hour.interval.unit": "HOURS",
      "storage.location.template": `s3://${BUCKET}/raw/\${arrival_hour}/`
    })
    // The Firehose prefix (raw/!{timestamp:yyyy/MM/dd/HH}/) and the archiver's keys are what the template names.
    expect(rawObjectKey(new Date("2024-02-26T08:15:00Z"), "s", "1", randomUUID()).startsWith("raw/2024/02/26/08/")).toBe(true)
  })

  it("raw columns are exactly the fields of every stream record kind in the committed JSON Schema", () => {
    const schema = JSON.parse(readFileSync(new URL("../../contracts/change-event.schema.json", import.meta.url), "utf8")) as { anyOf: Array<JsonSchema> }
    // The JSON Schema's shape of a field, in the raw spec's terms.
    interface JsonSchema {
      type?: string
      properties?: Record<string, JsonSchema>
      items?: JsonSchema
      anyOf?: Array<JsonSchema>
    }
    const shape = (node: JsonSchema): unknown => {
      const variants = (node.anyOf ?? [node]).filter((v) => v.type !== "null" && !(v.type === "string" && node.anyOf && node.anyOf.some((o) => o.type === "number")))
      const v = variants[0]!
      if (v.type === "object") return v.properties ? Object.fromEntries(Object.entries(v.properties).map(([k, p]) => [k, shape(p)])) : "map"
      if (v.type === "array") {
        const items = shape(v.items!)
        return `array<${typeof items === "object" ? JSON.stringify(items) : items}>`
      }
      if (v.type === "number" || v.type === "integer") return "number"
      return v.type
    }
    const fromSchema: Record<string, unknown> = {}
    for (const kind of schema.anyOf) Object.assign(fromSchema, shape(kind) as object)
    const fromSpec = (fields: typeof RAW_RECORD_FIELDS): Record<string, unknown> =>
      Object.fromEntries(
        fields.map((f) => [
          f.key,
          typeof f.type === "string"
            ? f.type === "int" || f.type === "bigint" ? "number" : f.type
            : "map" in f.type
              ? "map"
              : "array" in f.type
                ? typeof f.type.array === "object"
                  ? `array<${JSON.stringify(fromSpec(f.type.array.struct))}>`
                  : `array<${f.type.array === "bigint" ? "number" : f.type.array}>`
                : fromSpec(f.type.struct)
        ])
      )
    expect(fromSpec(RAW_RECORD_FIELDS)).toEqual(fromSchema)
  })

  it("names and settings are validated", () => {
    expect(lakeDatabaseName("dev")).toBe("totes_dev_lake")
    expect(lakeDatabaseName("PR-42.test")).toBe("totes_pr_42_test_lake")
    expect(() => parquetTableSpec("sales_order", { ...settings, firstDate: "2024-13-45" })).toThrow(/firstDate/)
    expect(() => rawTableSpec({ ...settings, firstDate: "yesterday" })).toThrow(/firstDate/)
    expect(() => validateWorkgroupSettings({ bytesScannedCutoffPerQuery: 1024, resultsExpireAfterDays: 7 })).toThrow(/10 MiB/)
    expect(() => validateWorkgroupSettings({ bytesScannedCutoffPerQuery: 10 * 1024 * 1024, resultsExpireAfterDays: 0 })).toThrow(/positive/)
    for (const stage of ["dev", "production"]) {
      const analytics = stageConfig(stage, {}).analytics
      expect(workgroupConfiguration(analytics, "s3://results/athena-results/")).toEqual({
        enforceWorkgroupConfiguration: true,
        publishCloudwatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: analytics.bytesScannedCutoffPerQuery,
        engineVersion: { selectedEngineVersion: "Athena engine version 3" },
        resultConfiguration: { outputLocation: "s3://results/athena-results/", encryptionConfiguration: { encryptionOption: "SSE_S3" } }
      })
    }
  })

  it("example queries read only catalogued tables and declare each ? parameter", () => {
    const tables = new Set(lakeTableSpecs(settings).map((s) => s.name))
    for (const query of EXAMPLE_QUERIES) {
      const code = query.sql.replace(/--.*$/gm, "")
      const referenced = [...code.matchAll(/\bFROM\s+([a-z_]+)/gi)].map((m) => m[1]!).filter((name) => !["versions", "moment", "truncated"].includes(name))
      expect(referenced.length, query.id).toBeGreaterThan(0)
      for (const table of referenced) expect(tables.has(table), `${query.id}: ${table}`).toBe(true)
      expect((code.match(/\?/g) ?? []).length, query.id).toBe(query.parameters.length)
    }
  })
})

// --- against files compaction wrote -------------------------------------------------------------

/** The Hive type of a Parquet column, from the file's own schema (hyparquet). */
const hiveTypeOf = (element: SchemaElement): string => {
  if (element.converted_type === "DECIMAL") return `decimal(${element.precision},${element.scale})`
  if (element.type === "INT64" && (element.converted_type === "TIMESTAMP_MILLIS" || element.converted_type === "TIMESTAMP_MICROS")) return "timestamp"
  if (element.type === "BYTE_ARRAY" && element.converted_type === "UTF8") return "string"
  if (element.converted_type === undefined && element.type === "INT32") return "int"
  if (element.converted_type === undefined && element.type === "INT64") return "bigint"
  if (element.converted_type === undefined && element.type === "BOOLEAN") return "boolean"
  throw new Error(`no Hive type for ${JSON.stringify(element)}`)
}

/** The Hive type of a DuckDB column type as DESCRIBE prints it. */
const hiveTypeOfDuckDb = (type: string): string => {
  const simple: Record<string, string> = { VARCHAR: "string", INTEGER: "int", BIGINT: "bigint", BOOLEAN: "boolean", TIMESTAMP: "timestamp", "VARCHAR[]": "array<string>", "BIGINT[]": "array<bigint>", "MAP(VARCHAR, VARCHAR)": "map<string,string>" }
  if (simple[type]) return simple[type]
  const decimal = /^DECIMAL\((\d+),(\d+)\)$/.exec(type)
  if (decimal) return `decimal(${decimal[1]},${decimal[2]})`
  const list = /^(.*)\[\]$/.exec(type)
  if (list) return `array<${hiveTypeOfDuckDb(list[1]!)}>`
  const struct = /^STRUCT\((.*)\)$/.exec(type)
  if (struct) {
    const fields = struct[1]!.split(/, (?=[^,]*? )/).map((field) => {
      const [, name, inner] = /^"?([^" ]+)"? (.+)$/.exec(field)!
      return `${name!.toLowerCase()}:${hiveTypeOfDuckDb(inner!)}`
    })
    return `struct<${fields.join(",")}>`
  }
  throw new Error(`no Hive type for DuckDB ${type}`)
}

describe("the lake compacted and queried locally", () => {
  const lake = makeMemoryLakeStore()
  let dir: string
  let local: LocalLake

  /** Raw objects as the archiver writes them (one per ~100 records, the duplicate in a later one), then compacted. */
  const archiveAndCompact = Effect.gen(function* () {
    for (let i = 0; i < delivered.length; i += 100) {
      const chunk = delivered.slice(i, i + 100)
      const first = chunk[0]!
      const arrival = new Date(Date.parse(first.kind === "heartbeat" ? first.committedAt : first.source.committedAt) + 1_000)
      yield* lake.putNew(rawObjectKey(arrival, "totes", String(i + 1).padStart(20, "0"), randomUUID()), encodeRawObject(chunk.map((r) => JSON.stringify(r))), "application/x-ndjson")
    }
    yield* compactLake({ lake, maxEventsPerRun: 400 })
  })

  // DuckDB's API is promises: the shared lake is built in a plain hook, its queries are awaited.
  beforeAll(async () => {
    await Effect.runPromise(archiveAndCompact)
    dir = mkdtempSync(join(tmpdir(), "totes-lake-catalog-"))
    for (const [key, body] of lake.objects) {
      mkdirSync(dirname(join(dir, key)), { recursive: true })
      writeFileSync(join(dir, key), body)
    }
    local = await openLocalLake(dir)
  }, 60_000)

  afterAll(() => {
    local?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it.effect("every compacted file's schema has exactly the Glue table's columns and types", () =>
    Effect.gen(function* () {
      const outputs = (yield* readManifests(lake)).flatMap((m) => m.outputs)
      expect([...new Set(outputs.map((o) => o.table))].sort()).toEqual([...TOTESYS_TABLES].sort())
      for (const output of outputs) {
        const body = lake.objects.get(output.key)!
        const file = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer
        const [, ...columns] = parquetMetadata(file).schema
        const spec = parquetTableSpec(output.table, settings)
        expect(columns.map((c) => ({ name: c.name, type: hiveTypeOf(c) })), output.key).toEqual(spec.columns)
        expect(output.key.startsWith(`${PARQUET_PREFIX}${output.table}/date=${output.date}/`)).toBe(true)
      }
    })
  )

  it("DuckDB's views have the Glue tables' names, columns and types (partition column last)", async () => {
    const specs: Array<GlueTableSpec> = lakeTableSpecs(settings)
    expect([...local.views].sort()).toEqual(specs.map((s) => s.name).sort())
    for (const spec of specs) {
      const described = (await local.query(`DESCRIBE "${spec.name}"`)).rows.map((r) => ({ name: String(r.column_name).toLowerCase(), type: hiveTypeOfDuckDb(String(r.column_type)) }))
      expect(described, spec.name).toEqual([...spec.columns, ...spec.partitionKeys].map((c) => ({ name: c.name, type: c.type })))
    }
    expect(hiveFieldType({ struct: [{ key: "commitLsn", type: "string" }] })).toBe("struct<commitlsn:string>")
  })

  /** DuckDB prints `2024-02-26 08:00:02.000426`; the events carry ISO text. Both as microseconds since the epoch. */
  const micros = (text: string) => {
    const [, whole, fraction = ""] = /^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z?$/.exec(text)!
    return BigInt(Date.parse(`${whole!.replace(" ", "T")}Z`)) * 1000n + BigInt(fraction.padEnd(6, "0"))
  }
  const byPosition = (a: ChangeEvent, b: ChangeEvent) => (a.source.committedAt < b.source.committedAt ? -1 : a.source.committedAt > b.source.committedAt ? 1 : a.source.index - b.source.index)
  const salesEvents = events.filter((e) => e.source.table === "sales_order").sort(byPosition)
  const image = (e: ChangeEvent): Row => (e.op === "d" ? e.before : e.after) ?? {}

  it(`"${SALES_ORDER_HISTORY.title}": every version once, oldest first, exact values`, async () => {
    for (const id of [2, 3, 4]) {
      const result = await local.query(SALES_ORDER_HISTORY.sql, [String(id)])
      const expected = salesEvents
        .filter((e) => image(e).sales_order_id === id)
        .map((e) => ({
          committed_at: micros(e.source.committedAt),
          op: e.op,
          event_id: e.id,
          units_sold: image(e).units_sold ?? null,
          unit_price: image(e).unit_price ?? null,
          staff_id: image(e).staff_id ?? null,
          last_updated: image(e).last_updated === undefined ? null : micros(image(e).last_updated as string)
        }))
      const actual = result.rows.map((r) => ({
        committed_at: micros(r.committed_at as string),
        op: r.op,
        event_id: r.event_id,
        units_sold: r.units_sold,
        unit_price: r.unit_price,
        staff_id: r.staff_id,
        last_updated: r.last_updated === null ? null : micros(r.last_updated as string)
      }))
      expect(actual, `order ${id}`).toEqual(expected)
    }
    // Order 2: inserted, updated twice (the first update delivered twice, listed once).
    expect((await local.query(SALES_ORDER_HISTORY.sql, ["2"])).rows.map((r) => [r.op, r.units_sold, r.unit_price])).toEqual([
      ["c", orderOf(2).units_sold, orderOf(2).unit_price],
      ["u", 11, orderOf(2).unit_price],
      ["u", 12, "0.10"]
    ])
  })

  it(`"${SALES_ORDERS_AT.title}": the newest version of each order at T, deletes and truncates applied`, async () => {
    /** Independent: replay the events in commit order up to T. */
    const expectedAt = (moment: string) => {
      const limit = micros(moment)
      const current = new Map<number, { row: Row; committedAt: string }>()
      for (const e of salesEvents) {
        if (micros(e.source.committedAt) > limit) break
        if (e.op === "t") current.clear()
        else if (e.op === "d") current.delete(image(e).sales_order_id as number)
        else current.set(image(e).sales_order_id as number, { row: image(e), committedAt: e.source.committedAt })
      }
      return [...current.entries()]
        .sort(([a], [b]) => a - b)
        .map(([id, v]) => ({ sales_order_id: id, units_sold: v.row.units_sold, unit_price: v.row.unit_price, staff_id: v.row.staff_id, version: micros(v.committedAt) }))
    }
    const moments = [synthetic.find((e) => e.source.table === "sales_order" && e.after?.sales_order_id === 20)!.source.committedAt, at(25).committedAt, at(35).committedAt, at(45).committedAt].map((iso) =>
      iso.slice(0, 19).replace("T", " ")
    )
    for (const moment of moments) {
      const result = await local.query(SALES_ORDERS_AT.sql, [moment])
      const actual = result.rows.map((r) => ({ sales_order_id: r.sales_order_id, units_sold: r.units_sold, unit_price: r.unit_price, staff_id: r.staff_id, version: micros(r.version_committed_at as string) }))
      expect(actual, moment).toEqual(expectedAt(moment))
    }
    // After the truncate only the order inserted after it remains.
    expect((await local.query(SALES_ORDERS_AT.sql, [moments[3]!])).rows.map((r) => [r.sales_order_id, r.units_sold])).toEqual([[1, 99]])
    expect((await local.query(SALES_ORDERS_AT.sql, [moments[2]!])).rows.some((r) => r.sales_order_id === 3)).toBe(false)
  })

  it(`"${CHANGES_PER_TABLE_PER_HOUR.title}": each event once, from the raw records`, async () => {
    const counts = new Map<string, Set<string>>()
    for (const record of delivered) {
      if (record.kind !== "change") continue
      const group = `${record.source.table}|${record.source.committedAt.slice(0, 13)}|${record.op}`
      counts.set(group, (counts.get(group) ?? new Set()).add(record.id))
    }
    const expected = [...counts.entries()]
      .map(([group, ids]) => {
        const [source_table, commit_hour, op] = group.split("|")
        return { source_table, commit_hour, op, changes: String(ids.size) }
      })
      .sort((a, b) => {
        for (const column of ["commit_hour", "source_table", "op"] as const) if (a[column] !== b[column]) return a[column]! < b[column]! ? -1 : 1
        return 0
      })
    const result = await local.query(CHANGES_PER_TABLE_PER_HOUR.sql)
    expect(result.rows).toEqual(expected)
    expect(dayOf(events[0]!)).toBe("2024-02-26")
  })
})
