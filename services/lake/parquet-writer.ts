/**
 * Writes one flat Parquet file (one row group, one data page per column) from columns of values.
 *
 * Writer choice, measured by bench/compact.ts (2-core box, one run; 100,000 sales_order events,
 * 28 columns: change metadata + the source row):
 *
 *   writer                                          codec         write     size
 *   parquetjs-lite row API (appendRow, shredder)    SNAPPY/GZIP   8–11 s    5.4 / 2.9 MiB
 *   parquetjs-lite page encoder fed whole columns   UNCOMPRESSED  ~1.4–3 s  23.4 MiB
 *     (this module)                                 SNAPPY                  5.3 MiB
 *                                                   GZIP                    2.9 MiB
 *   for reference: gzip NDJSON (raw/) 1.6 s, 4.4 MiB; apache-arrow IPC file 3.2 s, 26.3 MiB
 *
 * The row API's Dremel shredder allocates per row and per value; the page encoder itself is
 * fast, so this module builds the column buffers directly (a flat schema needs no repetition
 * levels) and lets the library encode pages and the row group. apache-arrow has no Parquet
 * writer in JS (only Arrow IPC), so it cannot write the lake's Parquet. GZIP: about half the size
 * of SNAPPY at the same speed (the library writes no dictionary pages, so the codec does all the
 * compression); Spark, Athena, DuckDB and hyparquet (given zlib's gunzip) read it.
 *
 * parquetjs-lite 0.8.7 has no DECIMAL type, so the footer is written here: DECIMAL(precision,
 * scale) columns are INT64 holding the unscaled value with the DECIMAL converted type, scale and
 * precision set, which Spark, Athena, DuckDB and hyparquet read as decimals. Statistics are off:
 * the library's min/max compare encoded Buffers as strings (wrong and slow).
 */
import { createRequire } from "node:module"

const require = createRequire(import.meta.url)
// parquetjs-lite ships no types; these are the pieces used (present since 0.8).
const parquet = require("parquetjs-lite") as {
  ParquetSchema: new (definition: Record<string, unknown>) => ParquetSchemaInstance
  ParquetWriter: new (schema: ParquetSchemaInstance, envelope: unknown, options: Record<string, unknown>) => ParquetWriterInstance
  ParquetEnvelopeWriter: new (
    schema: ParquetSchemaInstance,
    write: (buffer: Buffer) => Promise<void>,
    close: () => Promise<void>,
    offset: number,
    options: Record<string, unknown>
  ) => EnvelopeInstance
}
const thrift = require("parquetjs-lite/gen-nodejs/parquet_types") as Record<string, any>
const { serializeThrift } = require("parquetjs-lite/lib/util") as { serializeThrift: (value: unknown) => Buffer }

interface ParquetField {
  readonly name: string
  readonly primitiveType: string
  readonly originalType?: string
  readonly path: ReadonlyArray<string>
  readonly repetitionType: string
  readonly dLevelMax: number
  readonly typeLength?: number
}
interface ParquetSchemaInstance {
  readonly fieldList: ReadonlyArray<ParquetField>
  readonly fields: Record<string, ParquetField>
}
interface EnvelopeInstance {
  rowCount: number
  rowGroups: Array<unknown>
  writeSection: (buffer: Buffer) => Promise<void>
  writeFooter: (metadata?: Record<string, string>) => Promise<void>
}
interface ParquetWriterInstance {
  rowBuffer: unknown
  envelopeWriter: EnvelopeInstance
  appendRow: (row: Record<string, unknown>) => Promise<void>
  close: () => Promise<void>
}

export type ColumnType =
  | { readonly kind: "utf8" }
  | { readonly kind: "int32" }
  /** A number or a bigint (signed 64-bit). */
  | { readonly kind: "int64" }
  | { readonly kind: "boolean" }
  /** Milliseconds since the epoch (number). */
  | { readonly kind: "timestamp_millis" }
  /** Microseconds since the epoch (number; safe up to year 2255). */
  | { readonly kind: "timestamp_micros" }
  /** The unscaled value (number, |x| < 2^53). */
  | { readonly kind: "decimal"; readonly precision: number; readonly scale: number }

export interface ColumnSpec {
  readonly name: string
  readonly type: ColumnType
  readonly required: boolean
}

export type Compression = "UNCOMPRESSED" | "SNAPPY" | "GZIP"

/** int64 columns take a bigint too (every 64-bit value, e.g. an LSN). */
export type ColumnValue = string | number | bigint | boolean | null

const libraryType = (type: ColumnType): string => {
  switch (type.kind) {
    case "utf8":
      return "UTF8"
    case "int32":
      return "INT32"
    case "int64":
    case "decimal":
      return "INT64"
    case "boolean":
      return "BOOLEAN"
    case "timestamp_millis":
      return "TIMESTAMP_MILLIS"
    case "timestamp_micros":
      return "TIMESTAMP_MICROS"
  }
}

const makeSchema = (columns: ReadonlyArray<ColumnSpec>, compression: Compression) =>
  new parquet.ParquetSchema(
    Object.fromEntries(columns.map((c) => [c.name, { type: libraryType(c.type), optional: !c.required, compression, statistics: false }]))
  )

/** The file footer with the converted types the library cannot express (DECIMAL). */
const encodeFooter = (columns: ReadonlyArray<ColumnSpec>, schema: ParquetSchemaInstance, envelope: EnvelopeInstance, keyValues: Record<string, string>) => {
  const metadata = new thrift.FileMetaData()
  metadata.version = 1
  metadata.created_by = "totes-cdc (parquetjs-lite page encoder)"
  metadata.num_rows = envelope.rowCount
  metadata.row_groups = envelope.rowGroups
  metadata.key_value_metadata = Object.entries(keyValues).map(([key, value]) => Object.assign(new thrift.KeyValue(), { key, value }))
  const root = new thrift.SchemaElement()
  root.name = "root"
  root.num_children = columns.length
  metadata.schema = [root]
  columns.forEach((column, index) => {
    const field = schema.fieldList[index]!
    const element = new thrift.SchemaElement()
    element.name = column.name
    element.repetition_type = thrift.FieldRepetitionType[field.repetitionType]
    element.type = thrift.Type[field.primitiveType]
    if (column.type.kind === "decimal") {
      element.converted_type = thrift.ConvertedType.DECIMAL
      element.scale = column.type.scale
      element.precision = column.type.precision
    } else if (field.originalType) {
      element.converted_type = thrift.ConvertedType[field.originalType]
    }
    metadata.schema.push(element)
  })
  const body = serializeThrift(metadata)
  const footer = Buffer.alloc(body.length + 8)
  body.copy(footer)
  footer.writeUInt32LE(body.length, body.length)
  footer.write("PAR1", body.length + 4)
  return footer
}

const openWriter = (columns: ReadonlyArray<ColumnSpec>, compression: Compression, keyValues: Record<string, string>) => {
  const schema = makeSchema(columns, compression)
  const chunks: Array<Buffer> = []
  const options = { useDataPageV2: false, pageIndex: false }
  const envelope = new parquet.ParquetEnvelopeWriter(schema, async (buffer) => void chunks.push(Buffer.from(buffer)), async () => {}, 0, options)
  const writer = new parquet.ParquetWriter(schema, envelope, options)
  envelope.writeFooter = () => envelope.writeSection(encodeFooter(columns, schema, envelope, keyValues))
  return { schema, writer, bytes: () => new Uint8Array(Buffer.concat(chunks)) }
}

/**
 * Columns → one Parquet file. `data[name][row]` is the value (null = NULL) already in the
 * column's primitive form (see ColumnType).
 */
export const writeParquetColumns = async (
  columns: ReadonlyArray<ColumnSpec>,
  data: Readonly<Record<string, ReadonlyArray<ColumnValue>>>,
  rowCount: number,
  options: { readonly compression?: Compression; readonly keyValues?: Record<string, string> } = {}
): Promise<Uint8Array> => {
  const { schema, writer, bytes } = openWriter(columns, options.compression ?? "GZIP", options.keyValues ?? {})
  const columnData: Record<string, unknown> = {}
  const pages: Record<string, Array<unknown>> = {}
  schema.fieldList.forEach((field, index) => {
    const column = columns[index]!
    const source = data[column.name] ?? []
    const values: Array<unknown> = []
    const dlevels: Array<number> = Array.from({ length: rowCount }, () => 0)
    for (let row = 0; row < rowCount; row++) {
      const value = source[row] ?? null
      if (value === null) {
        if (column.required) throw new Error(`parquet: required column ${column.name} is null in row ${row}`)
        dlevels[row] = 0
      } else {
        dlevels[row] = field.dLevelMax
        values.push(value)
      }
    }
    // The shape the library's shredder would have produced for a flat schema.
    columnData[String(field.path)] = { dlevels, rlevels: Array.from({ length: rowCount }, () => 0), values, distinct_values: new Set(), count: rowCount }
    pages[String(field.path)] = []
  })
  if (rowCount > 0) writer.rowBuffer = { rowCount, pageRowCount: rowCount, columnData, pages }
  await writer.close()
  return bytes()
}

/** The library's own row API with the same schema and footer: kept for the writer benchmark. */
export const writeParquetRows = async (
  columns: ReadonlyArray<ColumnSpec>,
  rows: ReadonlyArray<Readonly<Record<string, ColumnValue>>>,
  options: { readonly compression?: Compression } = {}
): Promise<Uint8Array> => {
  const { writer, bytes } = openWriter(columns, options.compression ?? "GZIP", {})
  for (const row of rows) {
    const converted: Record<string, unknown> = {}
    for (const column of columns) {
      const value = row[column.name]
      if (value === null || value === undefined) continue
      // Its TIMESTAMP_MILLIS conversion refuses negative numbers but takes a Date.
      converted[column.name] = column.type.kind === "timestamp_millis" ? new Date(value as number) : value
    }
    await writer.appendRow(converted)
  }
  await writer.close()
  return bytes()
}
