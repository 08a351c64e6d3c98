/**
 * The pipeline's configuration, read from the environment (locally `.totes/stack.env`, in AWS
 * the variables that `sst` links set). Missing or invalid values fail fast naming the variable.
 */
import { Config, ConfigProvider, Effect, Redacted, Schema } from "effect"
import { TOTESYS_TABLES } from "../../contracts/totesys.ts"

const SqlIdentifier = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[a-z_][a-z0-9_]{0,62}$/, { message: "expected a lower-case SQL identifier ([a-z_][a-z0-9_]*)" }))
)
const identifier = (name: string) => Config.schema(SqlIdentifier, name)

export const SourceDatabaseUrl = Config.Redacted("SOURCE_DATABASE_URL")
export const WarehouseDatabaseUrl = Config.Redacted("WAREHOUSE_DATABASE_URL")
export const StreamName = Config.NonEmptyString("TOTES_STREAM").pipe(Config.withDefault("totes-changes"))
export const LakeBucket = Config.NonEmptyString("TOTES_LAKE_BUCKET").pipe(Config.withDefault("totes-lake"))
export const CheckpointTable = Config.NonEmptyString("TOTES_CHECKPOINT_TABLE").pipe(Config.withDefault("totes-checkpoints"))
export const SlotName = identifier("TOTES_SLOT").pipe(Config.withDefault("totes_cdc"))
export const PublicationName = identifier("TOTES_PUBLICATION").pipe(Config.withDefault("totes_cdc"))
export const Tables = Config.String("TOTES_TABLES").pipe(
  Config.map((text) => text.split(",").map((t) => t.trim()).filter(Boolean)),
  Config.withDefault([...TOTESYS_TABLES])
)
/** The stream's maximum record size: 1 MiB, or up to 10 MiB for a stream raised with UpdateMaxRecordSize. */
export const MaxRecordBytes = Config.schema(
  Schema.NumberFromString.pipe(
    Schema.check(Schema.isInt(), Schema.isBetween({ minimum: 65_536, maximum: 10 * 1024 * 1024 }, { message: "expected a whole number of bytes between 65536 and 10485760" }))
  ),
  "TOTES_MAX_RECORD_BYTES"
).pipe(Config.withDefault(1024 * 1024))
/** How often the reader writes a WAL marker and a heartbeat to every shard: the resolution of consistent_through. */
export const HeartbeatIntervalMs = Config.schema(
  Schema.NumberFromString.pipe(Schema.check(Schema.isInt(), Schema.isBetween({ minimum: 100, maximum: 60_000 }, { message: "expected milliseconds between 100 and 60000" }))),
  "TOTES_HEARTBEAT_MS"
).pipe(Config.withDefault(1_000))
/**
 * Create the reader's slot with `failover` (PostgreSQL 17+) so that a standby synchronising slots
 * keeps it through a promotion. On by default in production stages (infra/stage-config.ts).
 */
export const FailoverSlot = Config.Boolean("TOTES_FAILOVER_SLOT").pipe(Config.withDefault(false))
export const WarehouseSchema = identifier("TOTES_WAREHOUSE_SCHEMA").pipe(Config.withDefault("public"))
export const PipelineSchema = identifier("TOTES_PIPELINE_SCHEMA").pipe(Config.withDefault("totes"))

/** Reads a value from the process environment now (outside an Effect runtime, e.g. the CLI). */
export const readConfig = <A>(config: Config.Config<A>, env: Record<string, string | undefined> = process.env): A =>
  Effect.runSync(
    config.parse(ConfigProvider.fromEnv({ env: env as Record<string, string> })).pipe(
      Effect.mapError((error) => new Error(`configuration: ${error.message}`))
    )
  )

export const reveal = Redacted.value
