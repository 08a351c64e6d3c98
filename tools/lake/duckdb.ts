/**
 * The lake, pulled into a local folder (`totes lake pull`), as DuckDB views with the names and
 * columns of the Glue tables in AWS: one view per source table over its Parquet files, and `raw`
 * over the raw NDJSON. The example queries (services/lake/queries.ts) then run unchanged.
 *
 *   const lake = await openLocalLake(".totes/lake")
 *   const result = await lake.query("SELECT count(*) AS n FROM sales_order")
 *   lake.close()
 *
 * In-memory DuckDB (`@duckdb/node-api`, a development dependency): nothing is written; the
 * files are read where they are. DuckDB's httpfs extension cannot be installed offline, hence
 * the local copy instead of reading the local S3 server.
 */
import { existsSync, readdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { DuckDBInstance, type DuckDBValue } from "@duckdb/node-api"
import { PARQUET_PREFIX, PARQUET_MANIFEST_PREFIX, RAW_PREFIX } from "../../contracts/lake.ts"
import { PARQUET_PARTITION, RAW_PARTITION, RAW_RECORD_FIELDS, RAW_TABLE, type JsonFieldType } from "../../services/lake/tables.ts"

export type JsonValue = string | number | boolean | null | ReadonlyArray<JsonValue> | { readonly [key: string]: JsonValue }

export interface QueryResult {
  readonly columns: ReadonlyArray<{ readonly name: string; readonly type: string }>
  /** Values as JSON: DECIMAL, BIGINT and timestamps as text (exact), maps and structs as objects. */
  readonly rows: ReadonlyArray<Record<string, JsonValue>>
}

export interface LocalLake {
  readonly dir: string
  /** The views created: source tables with Parquet files, and raw when raw/ holds objects. */
  readonly views: ReadonlyArray<string>
  readonly query: (sql: string, parameters?: ReadonlyArray<string>) => Promise<QueryResult>
  readonly close: () => void
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/
const literal = (text: string) => `'${text.replace(/'/g, "''")}'`

const hasFile = (dir: string, suffix: string): boolean =>
  existsSync(dir) && readdirSync(dir, { withFileTypes: true, recursive: true }).some((entry) => entry.isFile() && entry.name.endsWith(suffix))

export const duckdbType = (type: JsonFieldType): string => {
  if (type === "string") return "VARCHAR"
  if (type === "int") return "INTEGER"
  if (type === "bigint") return "BIGINT"
  if (type === "boolean") return "BOOLEAN"
  if ("map" in type) return "MAP(VARCHAR, VARCHAR)"
  if ("array" in type) return `${duckdbType(type.array)}[]`
  return `STRUCT(${type.struct.map((field) => `"${field.key}" ${duckdbType(field.type)}`).join(", ")})`
}

/** The SQL of the views over a pulled lake folder (exported for tests). */
export const localLakeViews = (dir: string): Array<{ readonly name: string; readonly sql: string }> => {
  const root = resolve(dir)
  const views: Array<{ name: string; sql: string }> = []
  const parquet = join(root, PARQUET_PREFIX)
  const manifests = PARQUET_MANIFEST_PREFIX.slice(PARQUET_PREFIX.length, -1)
  if (existsSync(parquet)) {
    for (const entry of readdirSync(parquet, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (!entry.isDirectory() || entry.name === manifests || !IDENTIFIER.test(entry.name) || !hasFile(join(parquet, entry.name), ".parquet")) continue
      // The partition column as Athena's projection gives it (text); union_by_name: files written before a column was added read it as NULL.
      const files = join(parquet, entry.name, `${PARQUET_PARTITION}=*`, "*.parquet")
      views.push({
        name: entry.name,
        sql: `CREATE VIEW "${entry.name}" AS SELECT * FROM read_parquet(${literal(files)}, hive_partitioning = true, hive_types = {'${PARQUET_PARTITION}': VARCHAR}, union_by_name = true)`
      })
    }
  }
  const raw = join(root, RAW_PREFIX)
  if (hasFile(raw, ".ndjson.gz")) {
    const columns = RAW_RECORD_FIELDS.map((field) => `${literal(field.key)}: ${literal(duckdbType(field.type))}`).join(", ")
    const files = join(raw, "*", "*", "*", "*", "*.ndjson.gz")
    views.push({
      name: RAW_TABLE,
      sql:
        `CREATE VIEW ${RAW_TABLE} AS SELECT * EXCLUDE (filename), regexp_extract(filename, 'raw/([0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9]{2})/', 1) AS ${RAW_PARTITION} ` +
        `FROM read_json(${literal(files)}, format = 'newline_delimited', compression = 'gzip', columns = {${columns}}, filename = true)`
    })
  }
  return views
}

/** A DuckDB value as JSON, exactly: DECIMAL, BIGINT and times as their text. */
const toJson = (value: DuckDBValue): JsonValue => {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value
  if (typeof value === "number") return value
  if (typeof value === "bigint") return value.toString()
  if (typeof value === "object" && "entries" in value && Array.isArray((value as { entries: unknown }).entries)) {
    const entries = (value as { entries: Array<{ key: DuckDBValue; value: DuckDBValue }> }).entries
    return Object.fromEntries(entries.map((entry) => [String(toJson(entry.key)), toJson(entry.value)]))
  }
  if (typeof value === "object" && "entries" in value) {
    return Object.fromEntries(Object.entries((value as { entries: Record<string, DuckDBValue> }).entries).map(([key, inner]) => [key, toJson(inner)]))
  }
  if (typeof value === "object" && "items" in value) return (value as { items: Array<DuckDBValue> }).items.map(toJson)
  return String(value)
}

export const openLocalLake = async (dir: string): Promise<LocalLake> => {
  const instance = await DuckDBInstance.create(":memory:")
  const connection = await instance.connect()
  // Timestamps are UTC throughout the lake, whatever this machine's zone.
  await connection.run("SET TimeZone = 'UTC'")
  const views = localLakeViews(dir)
  for (const view of views) await connection.run(view.sql)
  return {
    dir: resolve(dir),
    views: views.map((view) => view.name),
    query: async (sql, parameters = []) => {
      const reader = await connection.runAndReadAll(sql, [...parameters])
      const names = reader.columnNames()
      const types = reader.columnTypes().map((type) => type.toString())
      const rows = reader.getRows().map((row) => Object.fromEntries(row.map((value, index) => [names[index]!, toJson(value)])))
      return { columns: names.map((name, index) => ({ name, type: types[index]! })), rows }
    },
    close: () => {
      connection.closeSync()
      instance.closeSync()
    }
  }
}
