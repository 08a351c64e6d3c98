import { Redacted } from "effect"
import { describe, expect, it } from "vitest"
import {
  ArchiverFlushBytes,
  checkConfiguration,
  CONFIGURATION,
  ConfigurationError,
  FailoverSlot,
  HeartbeatIntervalMs,
  LogLevel,
  MaxRecordBytes,
  MetricsDestination,
  PublicationName,
  readConfig,
  readConfigOrDefault,
  reveal,
  SlotName,
  SourceDatabaseUrl,
  Tables,
  WarehouseSchema
} from "../../services/shared/config.ts"

const refusal = (run: () => unknown): ConfigurationError => {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError)
    return error as ConfigurationError
  }
  throw new Error("expected a ConfigurationError")
}

describe("configuration", () => {
  it("uses the documented defaults", () => {
    expect(readConfig(SlotName, {})).toBe("totes_cdc")
    expect(readConfig(PublicationName, {})).toBe("totes_cdc")
    expect(readConfig(WarehouseSchema, {})).toBe("public")
    expect(readConfig(Tables, {})).toHaveLength(11)
    expect(readConfig(ArchiverFlushBytes, {})).toBe(5 * 1024 * 1024)
    expect(readConfig(LogLevel, {})).toBe("info")
    expect(readConfig(MetricsDestination, {})).toBe("stdout")
  })

  it("fails fast naming a missing required variable and what it accepts", () => {
    expect(refusal(() => readConfig(SourceDatabaseUrl, {})).message).toBe(
      "SOURCE_DATABASE_URL: is not set; expected a postgres:// or postgresql:// URL (e.g. postgres://user@host:5432/database)"
    )
    // blank counts as unset
    expect(refusal(() => readConfig(SourceDatabaseUrl, { SOURCE_DATABASE_URL: "  " })).variable).toBe("SOURCE_DATABASE_URL")
  })

  it("rejects identifiers that could inject SQL, naming the variable", () => {
    expect(refusal(() => readConfig(SlotName, { TOTES_SLOT: 'x"; DROP TABLE payment; --' })).message).toBe(
      `TOTES_SLOT: "x\\"; DROP TABLE payment; --" is not accepted: expected a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)`
    )
  })

  it("keeps secrets redacted until revealed", () => {
    const url = readConfig(SourceDatabaseUrl, { SOURCE_DATABASE_URL: "postgres://u:secret@h/db" })
    expect(String(url)).not.toContain("secret")
    expect(reveal(url)).toBe("postgres://u:secret@h/db")
  })

  it("splits TOTES_TABLES", () => {
    expect(readConfig(Tables, { TOTES_TABLES: "payment, sales_order" })).toEqual(["payment", "sales_order"])
  })

  it.each([
    ["SOURCE_DATABASE_URL", "http://example.com", "expected a postgres:// or postgresql:// URL (e.g. postgres://user@host:5432/database); the value is a http: URL"],
    ["SOURCE_DATABASE_URL", "garbage", "expected a postgres:// or postgresql:// URL (e.g. postgres://user@host:5432/database); the value has no scheme"],
    ["WAREHOUSE_DATABASE_URL", "postgres:///warehouse", "the value names no host"],
    ["WAREHOUSE_DATABASE_URL", "postgresql://u:pw@h:99999/db", "the value is not a well-formed URL"],
    ["TOTES_LOG_LEVEL", "verbose", `"verbose" is not accepted: expected one of debug, info, warn, error, off`],
    ["TOTES_METRICS", "file", `"file" is not accepted: expected one of stdout, stderr, off`],
    ["TOTES_ARCHIVER_FLUSH_BYTES", "-5", `"-5" is not accepted: expected a whole number of bytes from 1 to 134,217,728`],
    ["TOTES_ARCHIVER_FLUSH_BYTES", "1.5", "expected a whole number of bytes"],
    ["TOTES_ARCHIVER_FLUSH_MS", "0", "expected a whole number of milliseconds from 1 to 900,000"],
    ["TOTES_TABLES", " , ", "expected a comma-separated, non-empty list of totesys tables"],
    ["TOTES_TABLES", "sales_order,nope", "unknown table(s) nope; expected a comma-separated list of address"],
    ["TOTES_TABLES", "staff,staff", "table(s) listed twice: staff"],
    ["TOTES_STREAM", "bad name", "expected a Kinesis stream name"],
    ["TOTES_LAKE_BUCKET", "Upper_Case", "expected an S3 bucket name"],
    ["TOTES_CHECKPOINT_TABLE", "x", "expected a DynamoDB table name"],
    ["TOTES_PIPELINE_SCHEMA", "Totes", "expected a lower-case SQL identifier"],
    ["TOTES_STAGE", "tab\there", "expected 1–1024 printable ASCII characters"],
    ["AWS_REGION", "Europe", "expected an AWS region name"],
    ["AWS_ENDPOINT_URL_S3", "localhost:9000", "expected an http:// or https:// URL"]
  ])("refuses %s=%j, naming the variable and what it accepts", (variable, value, problem) => {
    const errors = checkConfiguration({ [variable]: value })
    expect(errors.map((e) => e.variable)).toEqual([variable])
    expect(errors[0]!.message.startsWith(`${variable}: `)).toBe(true)
    expect(errors[0]!.message).toContain(problem)
    expect(errors[0]!.message).not.toContain("\n")
  })

  it("never echoes a database URL, which holds a password", () => {
    const [error] = checkConfiguration({ WAREHOUSE_DATABASE_URL: "mysql://admin:hunter2@db/warehouse" })
    expect(error!.message).toBe(
      "WAREHOUSE_DATABASE_URL: the value is not accepted: expected a postgres:// or postgresql:// URL (e.g. postgres://user@host:5432/database); the value is a mysql: URL"
    )
  })

  it("accepts every documented value and a complete valid environment", () => {
    const env = {
      SOURCE_DATABASE_URL: "postgresql://totes:pw@db.internal:5432/totesys?sslmode=verify-full",
      WAREHOUSE_DATABASE_URL: "postgres://totes@127.0.0.1/warehouse",
      AWS_REGION: "eu-west-2",
      AWS_ENDPOINT_URL_KINESIS: "http://127.0.0.1:4567",
      TOTES_STREAM: "totes-dev-changes",
      TOTES_LAKE_BUCKET: "totes-dev-lake.example",
      TOTES_CHECKPOINT_TABLE: "totes-dev-checkpoints",
      TOTES_TABLES: "sales_order, payment",
      TOTES_ARCHIVER_FLUSH_BYTES: "1048576",
      TOTES_ARCHIVER_FLUSH_MS: "300",
      TOTES_METRICS: "off",
      TOTES_STAGE: "prod",
      TOTES_LOG_LEVEL: "DEBUG"
    }
    expect(checkConfiguration(env)).toEqual([])
    expect(readConfig(LogLevel, env)).toBe("debug")
  })

  it("falls back to the default where refusing is not an option (the logger), never silently at start", () => {
    expect(readConfigOrDefault(LogLevel, { TOTES_LOG_LEVEL: "verbose" })).toBe("info")
    expect(checkConfiguration({ TOTES_LOG_LEVEL: "verbose" })).toHaveLength(1)
  })

  it("declares each variable once, with the accepted values in words", () => {
    const names = CONFIGURATION.map((v) => v.name)
    expect(new Set(names).size).toBe(names.length)
    for (const v of CONFIGURATION) expect(v.accepted.length, v.name).toBeGreaterThan(5)
    expect(Redacted.isRedacted(readConfig(SourceDatabaseUrl, { SOURCE_DATABASE_URL: "postgres://h/db" }))).toBe(true)
  })
})

describe("the reader's variables", () => {
  it("read their defaults, accept what they document and refuse the rest naming the variable", () => {
    expect(readConfig(FailoverSlot, {})).toBe(false)
    expect(readConfig(FailoverSlot, { TOTES_FAILOVER_SLOT: "true" })).toBe(true)
    expect(() => readConfig(FailoverSlot, { TOTES_FAILOVER_SLOT: "maybe" })).toThrow(/TOTES_FAILOVER_SLOT/)
    expect(readConfig(MaxRecordBytes, {})).toBe(1024 * 1024)
    expect(readConfig(MaxRecordBytes, { TOTES_MAX_RECORD_BYTES: "10485760" })).toBe(10 * 1024 * 1024)
    expect(() => readConfig(MaxRecordBytes, { TOTES_MAX_RECORD_BYTES: "20000000" })).toThrow(/TOTES_MAX_RECORD_BYTES.*65,536 to 10,485,760/)
    expect(readConfig(HeartbeatIntervalMs, {})).toBe(1_000)
    expect(() => readConfig(HeartbeatIntervalMs, { TOTES_HEARTBEAT_MS: "0" })).toThrow(/TOTES_HEARTBEAT_MS/)
  })
})
