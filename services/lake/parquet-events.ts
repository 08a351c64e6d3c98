/**
 * Change events of one source table ⇄ typed Parquet columns, losslessly.
 *
 * Columns: the change metadata first (event_id, op, commit_lsn, commit_lsn_int, commit_index,
 * committed_at, snapshot, then what rebuilding the exact event needs: row_lsn, xid, source_db,
 * source_schema, event_key, event_before, unchanged, absent, overrides, claim_check), then the
 * source table's columns in the source's order with the source's types:
 *
 *   integer          INT32
 *   numeric(10,2)    DECIMAL(10,2) stored as INT64 unscaled (parquet-writer.ts)
 *   timestamp(3)     TIMESTAMP_MILLIS (naive values mean UTC)
 *   text, enums      UTF8 (the text dates agreed_*_date / payment_date stay text, as in the source)
 *   boolean          BOOLEAN
 *   committed_at     TIMESTAMP_MICROS (commit times carry microseconds)
 *   commit_lsn_int   INT64: the commit LSN as a number (`0/493D1F8` → 76796408), so that readers can
 *                    sort and compare positions; `ORDER BY commit_lsn_int, commit_index` is commit
 *                    order. The text `commit_lsn` stays (Postgres' own form); files written before
 *                    this column existed lack it, and decoding never needs it.
 *
 * The row image is `after` (insert, update, snapshot read) or `before` (delete). Any value the
 * typed column cannot hold exactly (a timestamp whose text would not round-trip, a number outside
 * the declared scale, a column the table did not have when this was written) goes to `overrides`
 * (JSON object column → original JSON value) instead, and `absent` lists the table's columns the
 * image did not carry (unsent TOAST values, key-only delete images), so decoding gives back the
 * very event that was on the stream.
 */
import { SCHEMA_VERSION, type ChangeEvent, type Row } from "../../contracts/change-event.ts"
import { lsnToBigInt } from "../../contracts/lsn.ts"
import { isTotesysTable, SOURCE_COLUMNS, type TotesysTable } from "../../contracts/totesys.ts"
import type { ColumnSpec, ColumnType, ColumnValue } from "./parquet-writer.ts"
import type { ParquetFileRead, RawValue } from "./parquet-file-reader.ts"

type Json = Row[string]

const INT32: ColumnType = { kind: "int32" }
const TEXT: ColumnType = { kind: "utf8" }
const TIMESTAMP: ColumnType = { kind: "timestamp_millis" }
const MONEY: ColumnType = { kind: "decimal", precision: 10, scale: 2 }

/** Source column types (totesys-schema.md §1): by name, as every table follows the same conventions. */
export const sourceColumnType = (column: string): ColumnType => {
  if (column === "created_at" || column === "last_updated") return TIMESTAMP
  if (column === "unit_price" || column === "item_unit_price" || column === "payment_amount") return MONEY
  if (column === "paid") return { kind: "boolean" }
  if (column.endsWith("_id") || ["units_sold", "item_quantity", "company_ac_number", "counterparty_ac_number"].includes(column)) return INT32
  return TEXT
}

export const METADATA_COLUMNS: ReadonlyArray<ColumnSpec> = [
  { name: "event_id", type: TEXT, required: true },
  { name: "op", type: TEXT, required: true },
  { name: "commit_lsn", type: TEXT, required: true },
  { name: "commit_lsn_int", type: { kind: "int64" }, required: true },
  { name: "commit_index", type: INT32, required: true },
  { name: "committed_at", type: { kind: "timestamp_micros" }, required: true },
  { name: "snapshot", type: { kind: "boolean" }, required: true },
  { name: "row_lsn", type: TEXT, required: false },
  { name: "xid", type: { kind: "int64" }, required: false },
  { name: "source_db", type: TEXT, required: true },
  { name: "source_schema", type: TEXT, required: true },
  { name: "event_key", type: TEXT, required: false },
  { name: "event_before", type: TEXT, required: false },
  { name: "unchanged", type: TEXT, required: false },
  { name: "absent", type: TEXT, required: false },
  { name: "overrides", type: TEXT, required: false },
  { name: "claim_check", type: TEXT, required: false }
]

const METADATA_NAMES = new Set(METADATA_COLUMNS.map((c) => c.name))

/** Metadata columns for readers only: derived from others, so decoding an event never reads them. */
const DERIVED_COLUMNS = new Set(["commit_lsn_int"])

/** The table's own columns (unknown tables: none, everything goes to overrides). */
export const tableColumns = (table: string): ReadonlyArray<ColumnSpec> =>
  isTotesysTable(table)
    ? SOURCE_COLUMNS[table as TotesysTable].filter((name) => !METADATA_NAMES.has(name)).map((name) => ({ name, type: sourceColumnType(name), required: false }))
    : []

export const parquetColumns = (table: string): ReadonlyArray<ColumnSpec> => [...METADATA_COLUMNS, ...tableColumns(table)]

// --- exact conversions ------------------------------------------------------------------------

const NAIVE_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?$/

/** Postgres prints fractions without trailing zeros; the reader keeps its text. */
export const naiveTimestampText = (millis: number): string => {
  const iso = new Date(millis).toISOString().slice(0, 23)
  return iso.replace(/\.?0+$/, "")
}

const toMillis = (value: Json): number | undefined => {
  if (typeof value !== "string" || !NAIVE_TIMESTAMP.test(value)) return undefined
  const millis = Date.parse(`${value}Z`)
  return Number.isFinite(millis) && naiveTimestampText(millis) === value ? millis : undefined
}

export const unscaledDecimal = (value: Json, scale: number, precision: number): number | undefined => {
  if (typeof value !== "string") return undefined
  const match = /^(-?)(\d+)\.(\d+)$/.exec(value)
  if (!match || match[3]!.length !== scale || match[2]!.length > precision - scale) return undefined
  if (match[2]!.length > 1 && match[2]!.startsWith("0")) return undefined
  const unscaled = Number(`${match[2]}${match[3]}`) * (match[1] ? -1 : 1)
  return Number.isSafeInteger(unscaled) && !Object.is(unscaled, -0) ? unscaled : undefined
}

export const decimalText = (unscaled: bigint | number, scale: number): string => {
  const value = BigInt(unscaled)
  const negative = value < 0n
  const digits = (negative ? -value : value).toString().padStart(scale + 1, "0")
  return `${negative ? "-" : ""}${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`
}

const isoMicrosText = (micros: bigint): string => {
  const millis = micros >= 0n ? micros / 1000n : -((-micros + 999n) / 1000n)
  const rest = micros - millis * 1000n
  return `${new Date(Number(millis)).toISOString().slice(0, 23)}${String(rest).padStart(3, "0")}Z`
}

const commitMicros = (text: string): bigint | undefined => {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{6})Z$/.exec(text)
  if (!match) return undefined
  const seconds = Date.parse(`${match[1]}Z`)
  if (!Number.isFinite(seconds)) return undefined
  const micros = BigInt(seconds) * 1000n + BigInt(match[2]!)
  return isoMicrosText(micros) === text ? micros : undefined
}

/** Microseconds of any ISO time (for the typed column when the text itself goes to overrides). */
const anyMicros = (text: string): bigint => {
  const match = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})$/.exec(text)
  if (!match) return BigInt(Date.parse(text)) * 1000n
  return BigInt(Date.parse(`${match[1]}${match[3]}`)) * 1000n + BigInt((match[2] ?? "").padEnd(6, "0").slice(0, 6))
}

/** A typed column value for `value`, or undefined when the column cannot hold it exactly. */
const typed = (type: ColumnType, value: Json): ColumnValue | undefined => {
  if (value === null) return null
  switch (type.kind) {
    case "int32":
      return typeof value === "number" && Number.isInteger(value) && value >= -2147483648 && value <= 2147483647 && !Object.is(value, -0) ? value : undefined
    case "utf8":
      return typeof value === "string" ? value : undefined
    case "boolean":
      return typeof value === "boolean" ? value : undefined
    case "timestamp_millis":
      return toMillis(value)
    case "decimal":
      return unscaledDecimal(value, type.scale, type.precision)
    default:
      return undefined
  }
}

const jsonOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value))

// --- events → columns -------------------------------------------------------------------------

export interface EncodedColumns {
  readonly columns: ReadonlyArray<ColumnSpec>
  readonly data: Record<string, Array<ColumnValue>>
  readonly rows: number
}

export const encodeEvents = (table: string, events: ReadonlyArray<ChangeEvent>): EncodedColumns => {
  const columns = parquetColumns(table)
  const own = tableColumns(table)
  const data: Record<string, Array<ColumnValue>> = Object.fromEntries(columns.map((c) => [c.name, Array.from<ColumnValue>({ length: events.length })]))
  events.forEach((event, row) => {
    if (event.source.table !== table) throw new Error(`event ${event.id} is of table ${event.source.table}, not ${table}`)
    const image: Row | null = event.op === "d" ? event.before : event.after
    const overrides: Record<string, Json> = {}
    const micros = commitMicros(event.source.committedAt)
    if (micros === undefined) overrides.$committedAt = event.source.committedAt
    data.event_id![row] = event.id
    data.op![row] = event.op
    data.commit_lsn![row] = event.source.commitLsn
    data.commit_lsn_int![row] = lsnToBigInt(event.source.commitLsn)
    data.commit_index![row] = event.source.index
    data.committed_at![row] = Number(micros ?? anyMicros(event.source.committedAt))
    data.snapshot![row] = event.source.snapshot
    data.row_lsn![row] = event.source.lsn
    data.xid![row] = event.source.xid
    data.source_db![row] = event.source.db
    data.source_schema![row] = event.source.schema
    data.event_key![row] = jsonOrNull(event.key)
    // The other image, when the event has one besides the row image (an update's old row).
    data.event_before![row] = event.op === "d" ? null : jsonOrNull(event.before)
    if (event.op === "d" && event.after !== null) overrides.$after = event.after
    data.unchanged![row] = event.unchanged.length > 0 ? JSON.stringify(event.unchanged) : null
    data.claim_check![row] = jsonOrNull(event.claimCheck)
    const absent: Array<string> = []
    for (const column of own) {
      if (!image || !(column.name in image)) {
        data[column.name]![row] = null
        if (image) absent.push(column.name)
        continue
      }
      const value = typed(column.type, image[column.name]!)
      if (value === undefined) {
        overrides[column.name] = image[column.name]!
        data[column.name]![row] = null
      } else data[column.name]![row] = value
    }
    if (image) for (const [name, value] of Object.entries(image)) if (!own.some((c) => c.name === name)) overrides[name] = value
    data.absent![row] = absent.length > 0 ? JSON.stringify(absent) : null
    // `image === null` on a change with an image slot is recorded too (truncate has none by nature).
    if (!image && event.op !== "t") overrides.$noImage = true
    data.overrides![row] = Object.keys(overrides).length > 0 ? JSON.stringify(overrides) : null
  })
  return { columns, data, rows: events.length }
}

// --- columns → events -------------------------------------------------------------------------

const column = (file: ParquetFileRead, name: string) => {
  const found = file.columns.find((c) => c.name === name)
  if (!found) throw new Error(`Parquet file lacks column ${name}`)
  return found.values
}

const fromTyped = (type: ColumnType, value: RawValue): Json => {
  if (value === null) return null
  switch (type.kind) {
    case "timestamp_millis":
      return naiveTimestampText(Number(value))
    case "decimal":
      return decimalText(value as bigint, type.scale)
    case "int32":
      return Number(value)
    default:
      return value as Json
  }
}

/** Rebuilds the change events of a file written from encodeEvents. */
export const decodeEvents = (table: string, file: ParquetFileRead): Array<ChangeEvent> => {
  const own = tableColumns(table).filter((c) => file.columns.some((f) => f.name === c.name))
  const get = Object.fromEntries([...METADATA_COLUMNS.filter((c) => !DERIVED_COLUMNS.has(c.name)), ...own].map((c) => [c.name, column(file, c.name)]))
  const events: Array<ChangeEvent> = []
  for (let row = 0; row < file.rows; row++) {
    const at = (name: string) => get[name]![row] ?? null
    const overrides = at("overrides") === null ? {} : (JSON.parse(at("overrides") as string) as Record<string, Json>)
    const absent = new Set(at("absent") === null ? [] : (JSON.parse(at("absent") as string) as Array<string>))
    const op = at("op") as ChangeEvent["op"]
    let image: Record<string, Json> | null = null
    if (op !== "t" && overrides.$noImage !== true) {
      image = {}
      for (const c of own) {
        if (absent.has(c.name)) continue
        image[c.name] = c.name in overrides ? overrides[c.name]! : fromTyped(c.type, at(c.name))
      }
      for (const [name, value] of Object.entries(overrides)) if (!name.startsWith("$") && !(name in image)) image[name] = value
    }
    const xid = at("xid")
    const claimCheck = at("claim_check")
    const event: ChangeEvent = {
      kind: "change",
      schemaVersion: SCHEMA_VERSION,
      id: at("event_id") as string,
      op,
      source: {
        db: at("source_db") as string,
        schema: at("source_schema") as string,
        table,
        commitLsn: at("commit_lsn") as string,
        lsn: at("row_lsn") as string | null,
        xid: xid === null ? null : Number(xid),
        committedAt: (overrides.$committedAt as string | undefined) ?? isoMicrosText(BigInt(at("committed_at") as bigint)),
        index: Number(at("commit_index")),
        snapshot: at("snapshot") as boolean
      },
      key: at("event_key") === null ? null : (JSON.parse(at("event_key") as string) as Row),
      before: op === "d" ? image : at("event_before") === null ? null : (JSON.parse(at("event_before") as string) as Row),
      after: op === "d" ? ((overrides.$after as Row | undefined) ?? null) : image,
      unchanged: at("unchanged") === null ? [] : (JSON.parse(at("unchanged") as string) as Array<string>),
      ...(claimCheck === null ? {} : { claimCheck: JSON.parse(claimCheck as string) })
    }
    events.push(event)
  }
  return events
}
