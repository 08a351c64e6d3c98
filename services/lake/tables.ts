/**
 * The lake's tables as a query engine sees them, shared by the Glue catalog
 * (infra/lake-catalog-spec.ts) and the local DuckDB views (tools/lake/duckdb.ts):
 *
 *   <source table>  parquet/<table>/date=YYYY-MM-DD/*.parquet: the columns compaction writes
 *                   (parquet-events.ts parquetColumns), partition `date` (commit day, UTC)
 *   raw             raw/YYYY/MM/DD/HH/*.ndjson.gz: the stream records (RAW_RECORD_FIELDS),
 *                   partition `arrival_hour` (YYYY/MM/DD/HH the record reached the lake, UTC)
 */

export const PARQUET_PARTITION = "date"
export const RAW_TABLE = "raw"
export const RAW_PARTITION = "arrival_hour"

/** A field of a raw stream record, with the JSON key as the contract spells it. */
export type JsonFieldType =
  | "string"
  | "int"
  | "bigint"
  | "boolean"
  | { readonly map: "string" }
  | { readonly array: "string" | "bigint" | { readonly struct: ReadonlyArray<JsonField> } }
  | { readonly struct: ReadonlyArray<JsonField> }

export interface JsonField {
  readonly key: string
  readonly type: JsonFieldType
  readonly comment?: string
}

/**
 * Every kind of stream record in one row shape (contracts/change-event.ts: ChangeEvent, Heartbeat,
 * RepairedRange and SnapshotChunk); a field the record does not have is NULL. Row images are maps of column → value
 * as text (the contract's lossless JSON: numerics are already strings).
 */
export const RAW_RECORD_FIELDS: ReadonlyArray<JsonField> = [
  { key: "kind", type: "string", comment: "change, heartbeat, repair (a repaired key range) or snapshot-chunk (initial-snapshot rows under snapshots/)" },
  { key: "schemaVersion", type: "int" },
  { key: "id", type: "string", comment: "event id: <commit LSN>:<index> (snapshot rows: <consistent point>:snapshot:<table>:<key>)" },
  { key: "op", type: "string", comment: "c insert, u update, d delete, t truncate, r snapshot read" },
  {
    key: "source",
    type: {
      struct: [
        { key: "db", type: "string" },
        { key: "schema", type: "string" },
        { key: "table", type: "string" },
        { key: "commitLsn", type: "string" },
        { key: "lsn", type: "string" },
        { key: "xid", type: "bigint" },
        { key: "committedAt", type: "string" },
        { key: "index", type: "int" },
        { key: "snapshot", type: "boolean" }
      ]
    }
  },
  { key: "key", type: { map: "string" } },
  { key: "before", type: { map: "string" } },
  { key: "after", type: { map: "string" } },
  { key: "unchanged", type: { array: "string" } },
  { key: "claimCheck", type: { struct: [{ key: "bucket", type: "string" }, { key: "key", type: "string" }, { key: "bytes", type: "bigint" }] } },
  { key: "commitLsn", type: "string", comment: "heartbeat: everything committed at or before it has been published" },
  { key: "committedAt", type: "string", comment: "heartbeat" },
  { key: "emittedAt", type: "string", comment: "heartbeat" },
  { key: "shards", type: { array: "string" }, comment: "heartbeat: the stream's open shards as the reader listed them" },
  { key: "repair", type: "string", comment: "repair: the request id (totes resnapshot)" },
  { key: "keyColumn", type: "string", comment: "repair: the table's primary key" },
  { key: "afterKey", type: "bigint", comment: "repair: the range starts after this key (NULL: unbounded)" },
  { key: "throughKey", type: "bigint", comment: "repair: the range ends at this key (NULL: unbounded)" },
  { key: "presentKeys", type: { array: "bigint" }, comment: "repair: the keys of the range that existed or were changed while it was read" },
  { key: "keyColumns", type: { array: "string" }, comment: "snapshot-chunk: the table's primary key" },
  {
    key: "columns",
    type: {
      array: {
        struct: [
          { key: "name", type: "string" },
          { key: "typeOid", type: "bigint" },
          { key: "typeName", type: "string" },
          { key: "category", type: "string" }
        ]
      }
    },
    comment: "snapshot-chunk: the columns of its rows, in order, with their source types"
  },
  { key: "chunk", type: "int", comment: "snapshot-chunk: its position in the table's reading" },
  { key: "rows", type: "bigint", comment: "snapshot-chunk: how many rows its object holds" },
  {
    key: "object",
    type: { struct: [{ key: "bucket", type: "string" }, { key: "key", type: "string" }, { key: "bytes", type: "bigint" }] },
    comment: "snapshot-chunk: the rows (COPY text format, gzip)"
  }
]
