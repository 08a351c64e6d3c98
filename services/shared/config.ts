/**
 * The pipeline's configuration, read from the environment (locally `.totes/stack.env`, in AWS
 * the variables that `sst` links set), validated in this one place.
 *
 * Every variable is declared once in CONFIGURATION: its name, purpose, what it accepts (in words,
 * for messages and the README), its default, and a parser. Each declaration is also an Effect
 * `Config`, so layers can read it the Effect way; `readConfig` reads one now, and
 * `checkConfiguration` validates every variable that is set, which the CLI does at start. A
 * refusal names the variable and the accepted values; it never echoes a secret. An empty or
 * blank variable counts as unset.
 */
import { Config, ConfigProvider, Effect, Redacted, Result, Schema } from "effect"
import { TOTESYS_TABLES } from "../../contracts/totesys.ts"

type Env = Record<string, string | undefined>

/** A configuration variable holds a value that is not accepted, or a required one is unset. */
export class ConfigurationError extends Schema.TaggedError<ConfigurationError>()("ConfigurationError", {
  variable: Schema.String,
  message: Schema.String
}) {}

export interface Variable<A> {
  readonly name: string
  /** What it is for (the README's configuration table). */
  readonly purpose: string
  /** What the variable accepts, in words ("one of debug, info, …"). */
  readonly accepted: string
  /** The default, in words for the README ("totes_cdc", "(required)"). */
  readonly defaultText: string
  /** A secret (a database URL with its password): its value is never echoed. */
  readonly secret?: boolean
  readonly parse: (text: string) => Result.Result<A, string>
  readonly fallback?: () => A
  /** The same variable as an Effect Config. */
  readonly config: Config.Config<A>
}

const CATALOGUE = new Map<string, Variable<unknown>>()

const declare = <A>(spec: Omit<Variable<A>, "config">): Variable<A> => {
  // The Effect Config: the same parser, as a Schema check on the raw text.
  const accepted = Schema.String.pipe(Schema.check(Schema.makeFilter((text: string) => Result.match(spec.parse(text), { onSuccess: () => true, onFailure: (problem) => problem }))))
  const parsed = Config.schema(accepted, spec.name).pipe(Config.map((text) => Result.getOrThrow(spec.parse(text))))
  const config = spec.fallback ? Config.withDefault(parsed, spec.fallback()) : parsed
  const variable: Variable<A> = { ...spec, config }
  CATALOGUE.set(spec.name, variable as Variable<unknown>)
  return variable
}

// ---------------------------------------------------------------------------------------------
// value shapes

const ok = Result.succeed
const fail = (problem: string) => Result.fail(problem)

const oneOf =
  <const L extends string>(values: ReadonlyArray<L>) =>
  (text: string): Result.Result<L, string> => {
    const value = text.trim().toLowerCase()
    return (values as ReadonlyArray<string>).includes(value) ? ok(value as L) : fail(`expected one of ${values.join(", ")}`)
  }

const matching = (pattern: RegExp, expected: string) => (text: string) => (pattern.test(text) ? ok(text) : fail(`expected ${expected}`))

const SQL_IDENTIFIER = "a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)"
const sqlIdentifier = matching(/^[a-z_][a-z0-9_]{0,62}$/, SQL_IDENTIFIER)

const wholeNumber = (min: number, max: number, unit: string) => (text: string) => {
  const value = Number(text.trim())
  return /^\s*\d+\s*$/.test(text) && Number.isSafeInteger(value) && value >= min && value <= max
    ? ok(value)
    : fail(`expected a whole number of ${unit} from ${min.toLocaleString("en")} to ${max.toLocaleString("en")}`)
}

const POSTGRES_URL = "a postgres:// or postgresql:// URL (e.g. postgres://user@host:5432/database)"

/**
 * A PostgreSQL URL, checked without echoing it: it holds a password. Returns the URL text as
 * given (pg parses it again), or the problem.
 */
export const parsePostgresUrl = (text: string): Result.Result<string, string> => {
  const value = text.trim()
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1]?.toLowerCase()
  if (!scheme) return fail(`expected ${POSTGRES_URL}; the value has no scheme`)
  if (scheme !== "postgres" && scheme !== "postgresql") return fail(`expected ${POSTGRES_URL}; the value is a ${scheme}: URL`)
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return fail(`expected ${POSTGRES_URL}; the value is not a well-formed URL`)
  }
  // postgres:///db?host=/socket is valid for libpq; pg reads a host parameter too.
  if (!url.hostname && !url.searchParams.get("host")) return fail(`expected ${POSTGRES_URL}; the value names no host`)
  if (url.port && !(Number(url.port) > 0 && Number(url.port) < 65536)) return fail(`expected ${POSTGRES_URL}; the port is not 1–65535`)
  return ok(value)
}

const httpUrl = (text: string): Result.Result<string, string> => {
  try {
    const url = new URL(text.trim())
    if ((url.protocol === "http:" || url.protocol === "https:") && url.hostname) return ok(text.trim())
  } catch {
    // reported below
  }
  return fail("expected an http:// or https:// URL (e.g. http://127.0.0.1:4567)")
}

const parseTables = (text: string): Result.Result<ReadonlyArray<string>, string> => {
  const names = text.split(",").map((t) => t.trim()).filter(Boolean)
  if (names.length === 0) return fail(`expected a comma-separated, non-empty list of totesys tables: ${TOTESYS_TABLES.join(", ")}`)
  const unknown = names.filter((n) => !(TOTESYS_TABLES as ReadonlyArray<string>).includes(n))
  if (unknown.length > 0) return fail(`unknown table(s) ${unknown.join(", ")}; expected a comma-separated list of ${TOTESYS_TABLES.join(", ")}`)
  const duplicates = names.filter((n, i) => names.indexOf(n) !== i)
  if (duplicates.length > 0) return fail(`table(s) listed twice: ${[...new Set(duplicates)].join(", ")}`)
  return ok(names)
}

// ---------------------------------------------------------------------------------------------
// the variables (in the order of the README's configuration table)

const databaseUrl = (name: string, purpose: string) =>
  declare<Redacted.Redacted<string>>({
    name,
    purpose,
    accepted: POSTGRES_URL,
    defaultText: "(required)",
    secret: true,
    parse: (text) => Result.map(parsePostgresUrl(text), (url) => Redacted.make(url))
  })

const SourceDatabaseUrlVariable = databaseUrl("SOURCE_DATABASE_URL", "the totesys source; the role needs REPLICATION and SELECT")
const WarehouseDatabaseUrlVariable = databaseUrl("WAREHOUSE_DATABASE_URL", "the warehouse")
const SECRET_ARN = "a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"
const WarehouseSecretArnVariable = declare({
  name: "TOTES_WAREHOUSE_SECRET_ARN",
  purpose: "in AWS, the consumer Lambda: the secret holding the warehouse URL, read at cold start when WAREHOUSE_DATABASE_URL is not set",
  accepted: SECRET_ARN,
  defaultText: "—",
  parse: matching(/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/, SECRET_ARN)
})

declare({
  name: "AWS_REGION",
  purpose: "region of the AWS clients",
  accepted: "an AWS region name (e.g. eu-west-2)",
  defaultText: "eu-west-2",
  parse: matching(/^[a-z]{2}(-[a-z]+)+-\d+$/, "an AWS region name (e.g. eu-west-2)")
})
for (const service of ["KINESIS", "DYNAMODB", "S3"]) {
  declare({
    name: `AWS_ENDPOINT_URL_${service}`,
    purpose: "the SDK's standard endpoint override (the local stack sets it)",
    accepted: "an http:// or https:// URL",
    defaultText: "AWS's",
    parse: httpUrl
  })
}

const KINESIS_NAME = "a Kinesis stream name (1–128 of a-z A-Z 0-9 _ . -)"
const StreamNameVariable = declare({
  name: "TOTES_STREAM",
  purpose: "Kinesis stream",
  accepted: KINESIS_NAME,
  defaultText: "totes-changes",
  parse: matching(/^[a-zA-Z0-9_.-]{1,128}$/, KINESIS_NAME),
  fallback: () => "totes-changes"
})
const BUCKET_NAME = "an S3 bucket name (3–63 of a-z 0-9 . -, starting and ending with a letter or digit)"
const LakeBucketVariable = declare({
  name: "TOTES_LAKE_BUCKET",
  purpose: "lake bucket (claim checks, dead letters, raw events, Parquet)",
  accepted: BUCKET_NAME,
  defaultText: "totes-lake",
  parse: matching(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, BUCKET_NAME),
  fallback: () => "totes-lake"
})
const TABLE_NAME = "a DynamoDB table name (3–255 of a-z A-Z 0-9 _ . -)"
const CheckpointTableVariable = declare({
  name: "TOTES_CHECKPOINT_TABLE",
  purpose: "DynamoDB checkpoint table (hash key `pk`, string)",
  accepted: TABLE_NAME,
  defaultText: "totes-checkpoints",
  parse: matching(/^[a-zA-Z0-9_.-]{3,255}$/, TABLE_NAME),
  fallback: () => "totes-checkpoints"
})
const identifier = (name: string, fallback: string, purpose: string) =>
  declare({ name, purpose, accepted: SQL_IDENTIFIER, defaultText: fallback, parse: sqlIdentifier, fallback: () => fallback })
const SlotNameVariable = identifier("TOTES_SLOT", "totes_cdc", "replication slot")
const PublicationNameVariable = identifier("TOTES_PUBLICATION", "totes_cdc", "publication (created if missing)")
const TablesVariable = declare<ReadonlyArray<string>>({
  name: "TOTES_TABLES",
  purpose: "tables to capture",
  accepted: `a comma-separated, non-empty list of totesys tables (${TOTESYS_TABLES.join(", ")})`,
  defaultText: "all 11 tables",
  parse: parseTables,
  fallback: () => [...TOTESYS_TABLES]
})
const WarehouseSchemaVariable = identifier("TOTES_WAREHOUSE_SCHEMA", "public", "schema of the star schema")
const PipelineSchemaVariable = identifier("TOTES_PIPELINE_SCHEMA", "totes", "schema of the pipeline's own warehouse tables (mirror, shard positions, migrations)")

const MiB = 1024 * 1024
const MaxRecordBytesVariable = declare({
  name: "TOTES_MAX_RECORD_BYTES",
  purpose: "reader: the stream's maximum record size (raise up to 10 MiB for a stream raised with UpdateMaxRecordSize); larger events travel as claim checks",
  accepted: "a whole number of bytes from 65,536 to 10,485,760",
  defaultText: "1048576 (1 MiB)",
  parse: wholeNumber(64 * 1024, 10 * MiB, "bytes"),
  fallback: () => MiB
})
const HeartbeatIntervalMsVariable = declare({
  name: "TOTES_HEARTBEAT_MS",
  purpose: "reader: how often it writes a WAL marker and a heartbeat to every shard (the resolution of consistent_through)",
  accepted: "a whole number of milliseconds from 100 to 60,000",
  defaultText: "1000",
  parse: wholeNumber(100, 60_000, "milliseconds"),
  fallback: () => 1_000
})
const FailoverSlotVariable = declare({
  name: "TOTES_FAILOVER_SLOT",
  purpose: "reader: create (or switch) the slot with FAILOVER on PostgreSQL 17+, so a promoted standby that synchronises slots keeps it; on in production stages",
  accepted: "true or false",
  defaultText: "false",
  parse: (text) => {
    const value = text.trim().toLowerCase()
    return value === "true" ? ok(true) : value === "false" ? ok(false) : fail("expected true or false")
  },
  fallback: () => false
})
const ArchiverFlushBytesVariable = declare({
  name: "TOTES_ARCHIVER_FLUSH_BYTES",
  purpose: "local archiver: buffer size per object (Firehose's buffering hint)",
  accepted: "a whole number of bytes from 1 to 134,217,728 (128 MiB, Firehose's largest buffer)",
  defaultText: "5242880 (5 MiB)",
  parse: wholeNumber(1, 128 * MiB, "bytes"),
  fallback: () => 5 * MiB
})
const ArchiverFlushMsVariable = declare({
  name: "TOTES_ARCHIVER_FLUSH_MS",
  purpose: "local archiver: time per object (Firehose's buffering hint)",
  accepted: "a whole number of milliseconds from 1 to 900,000 (15 minutes, Firehose's longest buffer)",
  defaultText: "60000 (60 s)",
  parse: wholeNumber(1, 900_000, "milliseconds"),
  fallback: () => 60_000
})

export const METRICS_DESTINATIONS = ["stdout", "stderr", "off"] as const
const MetricsDestinationVariable = declare({
  name: "TOTES_METRICS",
  purpose: "where EMF metric lines go",
  accepted: `one of ${METRICS_DESTINATIONS.join(", ")}`,
  defaultText: "stdout",
  parse: oneOf(METRICS_DESTINATIONS),
  fallback: () => "stdout" as const
})
const STAGE = "1–1024 printable ASCII characters"
const StageVariable = declare({
  name: "TOTES_STAGE",
  purpose: "the `Stage` dimension of every metric",
  accepted: STAGE,
  defaultText: "local",
  parse: matching(/^[\x20-\x7e]{1,1024}$/, STAGE),
  fallback: () => "local"
})
export const LOG_LEVELS = ["debug", "info", "warn", "error", "off"] as const
const LogLevelVariable = declare({
  name: "TOTES_LOG_LEVEL",
  purpose: "JSON log lines on stderr from this level up",
  accepted: `one of ${LOG_LEVELS.join(", ")}`,
  defaultText: "info",
  parse: oneOf(LOG_LEVELS),
  fallback: () => "info" as const
})

export const SourceDatabaseUrl = SourceDatabaseUrlVariable.config
export const WarehouseDatabaseUrl = WarehouseDatabaseUrlVariable.config
export const WarehouseSecretArn = WarehouseSecretArnVariable.config
export const StreamName = StreamNameVariable.config
export const LakeBucket = LakeBucketVariable.config
export const CheckpointTable = CheckpointTableVariable.config
export const SlotName = SlotNameVariable.config
export const PublicationName = PublicationNameVariable.config
export const Tables = TablesVariable.config
export const WarehouseSchema = WarehouseSchemaVariable.config
export const PipelineSchema = PipelineSchemaVariable.config
export const MaxRecordBytes = MaxRecordBytesVariable.config
export const HeartbeatIntervalMs = HeartbeatIntervalMsVariable.config
export const FailoverSlot = FailoverSlotVariable.config
export const ArchiverFlushBytes = ArchiverFlushBytesVariable.config
export const ArchiverFlushMs = ArchiverFlushMsVariable.config
export const MetricsDestination = MetricsDestinationVariable.config
export const Stage = StageVariable.config
export const LogLevel = LogLevelVariable.config

/** Every variable, in the order of the README's configuration table. */
export const CONFIGURATION: ReadonlyArray<Variable<unknown>> = [...CATALOGUE.values()]

// ---------------------------------------------------------------------------------------------
// reading and checking

const isUnset = (text: string | undefined): text is undefined => text === undefined || text.trim() === ""

const decode = <A>(variable: Variable<A>, env: Env): Result.Result<A, ConfigurationError> => {
  const text = env[variable.name]
  const refuse = (problem: string) => Result.fail(new ConfigurationError({ variable: variable.name, message: `${variable.name}: ${problem}` }))
  if (isUnset(text)) return variable.fallback ? ok(variable.fallback()) : refuse(`is not set; expected ${variable.accepted}`)
  return Result.match(variable.parse(text), {
    onSuccess: (value) => ok(value),
    onFailure: (problem) => refuse(`${variable.secret ? "the value" : JSON.stringify(text)} is not accepted: ${problem}`)
  })
}

const byConfig = new Map<Config.Config<unknown>, Variable<unknown>>(CONFIGURATION.map((v) => [v.config, v]))

/**
 * Reads a value from the environment now (outside an Effect runtime, e.g. the CLI); throws a
 * ConfigurationError naming the variable and what it accepts.
 */
export const readConfig = <A>(config: Config.Config<A>, env: Env = process.env): A => {
  const variable = byConfig.get(config as Config.Config<unknown>) as Variable<A> | undefined
  if (variable) return Result.getOrThrowWith(decode(variable, env), (error) => error)
  // A Config declared elsewhere: Effect's own parse, its message on one line.
  const nonEmpty = Object.fromEntries(Object.entries(env).filter(([, v]) => !isUnset(v))) as Record<string, string>
  return Effect.runSync(
    config.parse(ConfigProvider.fromEnv({ env: nonEmpty })).pipe(
      Effect.mapError((error) => new ConfigurationError({ variable: "", message: `configuration: ${error.message.replace(/\s*\n\s*/g, " ")}` }))
    )
  )
}

/** Like readConfig, but a value that is not accepted falls back to the default (for code that must not throw, e.g. the logger). */
export const readConfigOrDefault = <A>(config: Config.Config<A>, env: Env = process.env): A => {
  const variable = byConfig.get(config as Config.Config<unknown>) as Variable<A> | undefined
  if (!variable?.fallback) return readConfig(config, env)
  return Result.getOrElse(decode(variable, env), () => variable.fallback!())
}

/** Several variables refused at once: one line each. */
export class ConfigurationErrors extends Schema.TaggedError<ConfigurationErrors>()("ConfigurationErrors", {
  errors: Schema.Array(ConfigurationError),
  message: Schema.String
}) {
  static of(errors: ReadonlyArray<ConfigurationError>): ConfigurationErrors {
    return new ConfigurationErrors({ errors: [...errors], message: errors.map((e) => e.message).join("\n") })
  }
}

/** Validates every variable that is set (unset ones are checked when a component needs them). */
export const checkConfiguration = (env: Env = process.env): ReadonlyArray<ConfigurationError> =>
  CONFIGURATION.filter((v) => !isUnset(env[v.name])).flatMap((v) => Result.match(decode(v, env), { onSuccess: () => [], onFailure: (e) => [e] }))

export const reveal = Redacted.value
