/**
 * The lake as a dataset, as plain data (no SST imports: unit-tested): the Glue Data Catalog
 * tables over the lake and the Athena workgroup's settings.
 *
 *   <source table>   one per totesys table over parquet/<table>/date=YYYY-MM-DD/ (compaction's
 *                    output). The columns are derived from the compaction schema itself
 *                    (services/lake/parquet-events.ts parquetColumns), so a column compaction
 *                    adds is in the catalog too; test/unit/lake-catalog.test.ts compares them
 *                    with the schema of files compaction really wrote.
 *   raw              the stream records under raw/YYYY/MM/DD/HH/ (gzip NDJSON, change events and
 *                    heartbeats), columns from the change-event contract (contracts/change-event.ts).
 *
 * Partitions are projected (no crawler, no MSCK REPAIR): `date` (the commit day) for Parquet,
 * `arrival_hour` (when the record reached the lake, the Firehose prefix) for raw. Athena reads
 * Parquet columns by name, so files written before a column was added read it as NULL.
 */
import { PARQUET_PREFIX, RAW_PREFIX } from "../contracts/lake.ts"
import { TOTESYS_TABLES } from "../contracts/totesys.ts"
import { parquetColumns } from "../services/lake/parquet-events.ts"
import type { ColumnType } from "../services/lake/parquet-writer.ts"
import { PARQUET_PARTITION, RAW_PARTITION, RAW_RECORD_FIELDS, type JsonFieldType } from "../services/lake/tables.ts"

export interface GlueColumn {
  readonly name: string
  readonly type: string
  readonly comment?: string
}

export interface GlueTableSpec<L = string> {
  readonly name: string
  readonly description: string
  /** The S3 location (infra: a Pulumi output). */
  readonly location: L
  readonly columns: ReadonlyArray<GlueColumn>
  readonly partitionKeys: ReadonlyArray<GlueColumn>
  readonly inputFormat: string
  readonly outputFormat: string
  readonly serializationLibrary: string
  readonly serdeParameters: Readonly<Record<string, string>>
  readonly parameters: Readonly<Record<string, L | string>>
}

export interface CatalogSettings<L = string> {
  /** `s3://<bucket>/<prefix>` for a lake prefix. */
  readonly location: (prefix: string) => L
  /** First day partition projection covers (YYYY-MM-DD): no data is older. */
  readonly firstDate: string
}

/** Glue database name for a stage: lower case letters, digits and underscores (Athena's identifiers). */
export const lakeDatabaseName = (stage: string): string => `totes_${stage.toLowerCase().replace(/[^a-z0-9_]/g, "_")}_lake`

/** The Hive/Athena type of a Parquet column as compaction writes it (parquet-writer.ts ColumnType). */
export const glueType = (type: ColumnType): string => {
  switch (type.kind) {
    case "utf8":
      return "string"
    case "int32":
      return "int"
    case "int64":
      return "bigint"
    case "boolean":
      return "boolean"
    case "timestamp_millis":
    case "timestamp_micros":
      return "timestamp"
    case "decimal":
      return `decimal(${type.precision},${type.scale})`
  }
}

const DATE = /^\d{4}-\d{2}-\d{2}$/

const validFirstDate = (firstDate: string): string => {
  if (!DATE.test(firstDate) || Number.isNaN(Date.parse(`${firstDate}T00:00:00Z`))) throw new Error(`lake catalog: firstDate must be YYYY-MM-DD, got ${JSON.stringify(firstDate)}`)
  return firstDate
}

const PARQUET_FORMAT = {
  inputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
  outputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
  serializationLibrary: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
}

export const parquetTableSpec = <L>(table: string, settings: CatalogSettings<L>): GlueTableSpec<L> => {
  const prefix = `${PARQUET_PREFIX}${table}/`
  return {
    name: table,
    description: `Every committed change of totesys ${table} (compacted Parquet): change metadata, then the row (the new row; for a delete the old one)`,
    location: settings.location(prefix),
    columns: parquetColumns(table).map((column) => ({ name: column.name, type: glueType(column.type) })),
    partitionKeys: [{ name: PARQUET_PARTITION, type: "string", comment: "UTC day of the commit, YYYY-MM-DD" }],
    ...PARQUET_FORMAT,
    serdeParameters: { "serialization.format": "1" },
    parameters: {
      EXTERNAL: "TRUE",
      classification: "parquet",
      "parquet.compression": "GZIP",
      "projection.enabled": "true",
      "projection.date.type": "date",
      "projection.date.format": "yyyy-MM-dd",
      "projection.date.range": `${validFirstDate(settings.firstDate)},NOW`,
      "projection.date.interval": "1",
      "projection.date.interval.unit": "DAYS",
      // "${date}" is Athena's placeholder, not a template literal
      "storage.location.template": settings.location(`${prefix}date=` + "${date}/")
    }
  }
}

/** Athena identifiers are lower case; the JSON SerDe matches keys case-insensitively. */
export const hiveFieldType = (type: JsonFieldType): string => {
  if (typeof type === "string") return type
  if ("map" in type) return `map<string,${type.map}>`
  if ("array" in type) return `array<${hiveFieldType(type.array)}>`
  return `struct<${type.struct.map((f) => `${f.key.toLowerCase()}:${hiveFieldType(f.type)}`).join(",")}>`
}

export const rawTableSpec = <L>(settings: CatalogSettings<L>): GlueTableSpec<L> => {
  const firstHour = `${validFirstDate(settings.firstDate).replace(/-/g, "/")}/00`
  return {
    name: "raw",
    description: "Every stream record as archived (gzip NDJSON): change events and heartbeats, exactly as on the stream",
    location: settings.location(RAW_PREFIX),
    columns: RAW_RECORD_FIELDS.map((field) => ({ name: field.key.toLowerCase(), type: hiveFieldType(field.type), ...(field.comment ? { comment: field.comment } : {}) })),
    partitionKeys: [{ name: RAW_PARTITION, type: "string", comment: "UTC hour the record reached the lake, YYYY/MM/DD/HH (not the commit time)" }],
    inputFormat: "org.apache.hadoop.mapred.TextInputFormat",
    outputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    serializationLibrary: "org.openx.data.jsonserde.JsonSerDe",
    // Keys such as schemaVersion and commitLsn match the lower-case columns; bad JSON fails the
    // query instead of vanishing (the consumer dead-letters such records anyway).
    serdeParameters: { "case.insensitive": "TRUE", "ignore.malformed.json": "FALSE" },
    parameters: {
      EXTERNAL: "TRUE",
      classification: "json",
      compressionType: "gzip",
      "projection.enabled": "true",
      "projection.arrival_hour.type": "date",
      "projection.arrival_hour.format": "yyyy/MM/dd/HH",
      "projection.arrival_hour.range": `${firstHour},NOW`,
      "projection.arrival_hour.interval": "1",
      "projection.arrival_hour.interval.unit": "HOURS",
      "storage.location.template": settings.location(RAW_PREFIX + "${arrival_hour}/")
    }
  }
}

/** Every table of the lake database: one per totesys table, then raw. */
export const lakeTableSpecs = <L>(settings: CatalogSettings<L>): Array<GlueTableSpec<L>> => [
  ...TOTESYS_TABLES.map((table) => parquetTableSpec(table, settings)),
  rawTableSpec(settings)
]

/** Where Athena writes query results: the workgroup's own prefix in the query-results bucket. */
export const ATHENA_RESULTS_PREFIX = "athena-results/"

export interface WorkgroupSettings {
  /** Queries scanning more are cancelled (Athena's minimum is 10 MiB). */
  readonly bytesScannedCutoffPerQuery: number
  /** Query results are deleted after this many days. */
  readonly resultsExpireAfterDays: number
}

export const validateWorkgroupSettings = (settings: WorkgroupSettings): WorkgroupSettings => {
  if (!Number.isInteger(settings.bytesScannedCutoffPerQuery) || settings.bytesScannedCutoffPerQuery < 10 * 1024 * 1024) {
    throw new Error(`Athena bytesScannedCutoffPerQuery must be an integer of at least 10 MiB, got ${settings.bytesScannedCutoffPerQuery}`)
  }
  if (!Number.isInteger(settings.resultsExpireAfterDays) || settings.resultsExpireAfterDays < 1) throw new Error(`resultsExpireAfterDays must be a positive integer, got ${settings.resultsExpireAfterDays}`)
  return settings
}

/** The `configuration` of aws.athena.Workgroup; results go to `outputLocation`, encrypted. */
export const workgroupConfiguration = <L>(settings: WorkgroupSettings, outputLocation: L) => ({
  // Clients can neither send results elsewhere nor turn their encryption off.
  enforceWorkgroupConfiguration: true,
  publishCloudwatchMetricsEnabled: true,
  bytesScannedCutoffPerQuery: validateWorkgroupSettings(settings).bytesScannedCutoffPerQuery,
  engineVersion: { selectedEngineVersion: "Athena engine version 3" },
  resultConfiguration: { outputLocation, encryptionConfiguration: { encryptionOption: "SSE_S3" } }
})
