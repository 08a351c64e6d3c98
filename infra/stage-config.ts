/**
 * Per-stage settings of the AWS deployment, as plain data (no SST imports: unit-tested).
 *
 * Production stages ("production", "prod") are retained on removal and protected from
 * `sst remove`, use provisioned-capacity-free defaults that favour durability (PITR, object
 * lock retention, Multi-AZ databases, TLS verified against the RDS CA), and tighter alarms.
 *
 * A few settings can be overridden from the environment of `sst deploy`:
 *   TOTES_STREAM_MODE=on-demand|provisioned, TOTES_STREAM_SHARDS=<n>   stream capacity
 *   TOTES_DATABASES=managed|existing     existing: URLs from the sst secrets SourceDatabaseUrl,
 *                                        WarehouseDatabaseUrl (`sst secret set …`)
 *   TOTES_ALARM_EMAIL=<address>          e-mail subscription of the alarm topic
 *   TOTES_NAT=none|ec2|managed           NAT for the VPC (the consumer Lambda runs in private subnets)
 *
 * The reader of a production stage creates its slot with failover (TOTES_FAILOVER_SLOT, PostgreSQL
 * 17+): a standby that synchronises slots then keeps it through a promotion.
 */
import type { AlarmThresholds } from "./alarms-spec.ts"

export const PRODUCTION_STAGES: ReadonlyArray<string> = ["production", "prod"]
export const isProduction = (stage: string): boolean => PRODUCTION_STAGES.includes(stage)

/** What `$config({ app })` returns for removal and protection. */
export const appSettings = (stage: string): { readonly removal: "retain" | "remove"; readonly protect: boolean } =>
  isProduction(stage) ? { removal: "retain", protect: true } : { removal: "remove", protect: false }

export type StreamCapacity = { readonly mode: "ON_DEMAND" } | { readonly mode: "PROVISIONED"; readonly shards: number }
/**
 * How services connect to Postgres. node-postgres treats `sslmode=require` as `verify-full`
 * (and warns), so `verify-full` is written explicitly; it needs the RDS CA bundle
 * (NODE_EXTRA_CA_CERTS). `no-verify` encrypts without checking the certificate.
 */
export type DatabaseTls = "verify-full" | "no-verify" | "disable"
export type Nat = "none" | "ec2" | "managed"
export type LogRetention = "1 week" | "1 month" | "3 months" | "1 year"

export interface ManagedDatabase {
  readonly instance: string
  readonly storage: `${number} GB`
  readonly multiAz: boolean
  readonly version: string
}

export interface StageConfig {
  readonly stage: string
  readonly production: boolean
  readonly network: { readonly nat: Nat }
  readonly stream: { readonly capacity: StreamCapacity; readonly retentionHours: number }
  readonly lake: {
    /** Default retention for new objects (null: Object Lock enabled, no default retention). */
    readonly objectLock: { readonly mode: "GOVERNANCE" | "COMPLIANCE"; readonly days: number } | null
    readonly infrequentAccessAfterDays: number
    readonly glacierAfterDays: number
    readonly errorsExpireAfterDays: number
    readonly noncurrentExpireAfterDays: number
  }
  readonly firehose: { readonly bufferingIntervalSeconds: number; readonly bufferingSizeMb: number }
  /** The lake as a dataset (infra/lake-catalog.ts): Glue tables and the Athena workgroup. */
  readonly analytics: {
    /** First day partition projection covers (no lake data is older). */
    readonly firstDate: string
    readonly bytesScannedCutoffPerQuery: number
    readonly resultsExpireAfterDays: number
  }
  readonly checkpoints: { readonly deletionProtection: boolean }
  readonly databases:
    | {
        readonly mode: "managed"
        readonly tls: DatabaseTls
        readonly source: ManagedDatabase & { readonly maxSlotWalKeepSizeMb: number }
        readonly warehouse: ManagedDatabase
      }
    | { readonly mode: "existing"; readonly tls: DatabaseTls }
  readonly reader: {
    readonly cpu: "0.25 vCPU" | "0.5 vCPU" | "1 vCPU"
    readonly memory: `${number} GB`
    /** TOTES_FAILOVER_SLOT: create the slot with failover (PostgreSQL 17+) so that a promoted standby keeps it. */
    readonly failoverSlot: boolean
  }
  readonly tasks: { readonly cpu: "0.5 vCPU" | "1 vCPU" | "2 vCPU"; readonly memory: `${number} GB` }
  readonly consumer: {
    readonly memoryMb: number
    readonly timeoutSeconds: number
    readonly batchSize: number
    readonly batchingWindowSeconds: number
    readonly maximumRetryAttempts: number
    readonly maximumRecordAgeSeconds: number
    readonly parallelizationFactor: number
  }
  readonly logRetention: LogRetention
  /** The thresholds of infra/alarms-spec.ts, and where the alarms are mailed. */
  readonly alarms: AlarmThresholds & { readonly email: string | undefined }
}

const MiB = 1024 * 1024
const GiB = 1024 * MiB

type Env = Readonly<Record<string, string | undefined>>

const streamCapacity = (production: boolean, env: Env): StreamCapacity => {
  const mode = (env.TOTES_STREAM_MODE ?? "").toLowerCase().replace(/_/g, "-")
  const shards = env.TOTES_STREAM_SHARDS === undefined ? undefined : Number(env.TOTES_STREAM_SHARDS)
  if (shards !== undefined && (!Number.isInteger(shards) || shards < 1 || shards > 500)) {
    throw new Error(`TOTES_STREAM_SHARDS must be an integer between 1 and 500, got ${JSON.stringify(env.TOTES_STREAM_SHARDS)}`)
  }
  if (mode === "") return shards !== undefined ? { mode: "PROVISIONED", shards } : production ? { mode: "ON_DEMAND" } : { mode: "PROVISIONED", shards: 1 }
  if (mode === "on-demand" || mode === "ondemand") return { mode: "ON_DEMAND" }
  if (mode === "provisioned") return { mode: "PROVISIONED", shards: shards ?? 2 }
  throw new Error(`TOTES_STREAM_MODE must be on-demand or provisioned, got ${JSON.stringify(env.TOTES_STREAM_MODE)}`)
}

const oneOf = <A extends string>(name: string, value: string | undefined, allowed: ReadonlyArray<A>, fallback: A): A => {
  if (value === undefined || value === "") return fallback
  if ((allowed as ReadonlyArray<string>).includes(value)) return value as A
  throw new Error(`${name} must be one of ${allowed.join(", ")}, got ${JSON.stringify(value)}`)
}

const email = (value: string | undefined): string | undefined => {
  if (value === undefined || value === "") return undefined
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) throw new Error(`TOTES_ALARM_EMAIL is not an e-mail address: ${JSON.stringify(value)}`)
  return value
}

export const stageConfig = (stage: string, env: Env = {}): StageConfig => {
  const production = isProduction(stage)
  const databasesMode = oneOf("TOTES_DATABASES", env.TOTES_DATABASES, ["managed", "existing"] as const, "managed")
  const tls: DatabaseTls = production ? "verify-full" : "no-verify"
  const maxSlotWalKeepSizeMb = production ? 50 * 1024 : 5 * 1024
  const firehose = production ? { bufferingIntervalSeconds: 300, bufferingSizeMb: 64 } : { bufferingIntervalSeconds: 60, bufferingSizeMb: 5 }
  return {
    stage,
    production,
    network: { nat: oneOf("TOTES_NAT", env.TOTES_NAT, ["none", "ec2", "managed"] as const, production ? "managed" : "ec2") },
    stream: { capacity: streamCapacity(production, env), retentionHours: production ? 168 : 24 },
    lake: {
      objectLock: production ? { mode: "GOVERNANCE", days: 365 } : null,
      infrequentAccessAfterDays: 30,
      glacierAfterDays: production ? 180 : 90,
      errorsExpireAfterDays: production ? 400 : 30,
      noncurrentExpireAfterDays: production ? 90 : 7
    },
    firehose,
    analytics: {
      firstDate: "2024-01-01",
      bytesScannedCutoffPerQuery: production ? 100 * GiB : 10 * GiB,
      resultsExpireAfterDays: production ? 30 : 7
    },
    checkpoints: { deletionProtection: production },
    databases:
      databasesMode === "existing"
        ? { mode: "existing", tls }
        : {
            mode: "managed",
            tls,
            source: { instance: production ? "m7g.large" : "t4g.micro", storage: production ? "200 GB" : "20 GB", multiAz: production, version: "17", maxSlotWalKeepSizeMb },
            warehouse: { instance: production ? "m7g.large" : "t4g.micro", storage: production ? "100 GB" : "20 GB", multiAz: production, version: "17" }
          },
    reader: production ? { cpu: "0.5 vCPU", memory: "1 GB", failoverSlot: true } : { cpu: "0.25 vCPU", memory: "0.5 GB", failoverSlot: false },
    tasks: production ? { cpu: "1 vCPU", memory: "4 GB" } : { cpu: "0.5 vCPU", memory: "2 GB" },
    consumer: {
      memoryMb: production ? 1024 : 512,
      timeoutSeconds: 120,
      // Records are KPL aggregates of up to 1 MiB (a thousand events or more); the event source
      // mapping also keeps a batch under Lambda's 6 MB payload.
      batchSize: 10,
      batchingWindowSeconds: production ? 2 : 1,
      // The handler sets poison records aside itself (dead-letter/) and reports a batch as failed
      // only while the warehouse or the lake is unavailable; each attempt already retries ~20 s.
      // 10,000 (the AWS maximum) waits out long outages instead of sending good records to the
      // on-failure queue, yet stays bounded.
      maximumRetryAttempts: 10_000,
      // -1: records are retried until they expire from the stream
      maximumRecordAgeSeconds: -1,
      parallelizationFactor: 1
    },
    logRetention: production ? "1 year" : "1 week",
    alarms: {
      email: email(env.TOTES_ALARM_EMAIL),
      periodSeconds: 60,
      readerSilentMinutes: 5,
      replicationLagBytes: production ? 1 * GiB : 256 * MiB,
      replicationLagSeconds: production ? 300 : 900,
      // half of what the source may keep for the slot before invalidating it
      retainedWalBytes: (maxSlotWalKeepSizeMb / 2) * MiB,
      // a quarter of it left before the source invalidates the slot (measured by the server: safe_wal_size)
      slotWalHeadroomBytes: (maxSlotWalKeepSizeMb / 4) * MiB,
      iteratorAgeMs: production ? 5 * 60_000 : 15 * 60_000,
      freshnessMinutes: production ? 10 : 30,
      // The lake watermark's age: a heartbeat interval, one Firehose buffer interval, the minute
      // between two computations, plus margin
      firehoseFreshnessSeconds: firehose.bufferingIntervalSeconds + 600
    }
  }
}

export interface DatabaseParts {
  readonly username: string
  readonly password: string
  readonly host: string
  readonly port: number | string
  readonly database: string
}

/** A postgres:// URL with the user and password percent-encoded and the TLS mode set. */
export const databaseUrl = (parts: DatabaseParts, tls: DatabaseTls): string => {
  const user = encodeURIComponent(parts.username)
  const password = encodeURIComponent(parts.password)
  const host = parts.host.includes(":") && !parts.host.startsWith("[") ? `[${parts.host}]` : parts.host
  return `postgres://${user}:${password}@${host}:${parts.port}/${encodeURIComponent(parts.database)}?sslmode=${tls}`
}

const WEAK_SSL_MODES = new Set(["disable", "allow", "prefer"])

/**
 * For a URL given by an operator (existing databases): keeps its `sslmode` when it has one,
 * otherwise adds the stage's. When TLS is required (`verify-full` stages) a URL that turns TLS
 * off or makes it optional is refused.
 */
export const withSslMode = (url: string, tls: DatabaseTls): string => {
  const [base, query = ""] = url.split("?", 2) as [string, string?]
  const params = query.split("&").filter((p) => p !== "")
  const existing = params.find((p) => /^sslmode=/i.test(p))
  if (existing) {
    const mode = existing.slice("sslmode=".length).toLowerCase()
    if (tls === "verify-full" && WEAK_SSL_MODES.has(mode)) {
      throw new Error(`database URL has sslmode=${mode}, but this stage requires TLS (sslmode=require/verify-ca/verify-full)`)
    }
    return url
  }
  params.push(`sslmode=${tls}`)
  return `${base}?${params.join("&")}`
}
