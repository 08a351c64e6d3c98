/**
 * Metrics as CloudWatch Embedded Metric Format (EMF) lines, produced by the maintained
 * `aws-embedded-metrics` package (its MetricsContext + LogSerializer: validation, the 100
 * metrics / 100 values per line limits, the `_aws.CloudWatchMetrics` directive).
 *
 * One catalogue (METRICS) names every metric, its unit, the component that owns it and the
 * extra dimensions it may carry; infra/alarms-spec.ts builds alarms and the dashboard from the
 * same catalogue, so a renamed metric breaks the infra unit tests instead of silencing an alarm.
 *
 * Every metric is emitted under the dimension set [Stage, Component] (what alarms watch) and,
 * when the caller gives the metric's extra dimensions, also under [Stage, Component, ...extra].
 *
 * Output: one JSON line per flush, written synchronously to the current sink: stdout by default
 * (Lambda and ECS/awslogs ship stdout to CloudWatch Logs, which extracts the metrics); locally
 * the same lines are plain stdout. The environment is set explicitly through the package's
 * Configuration API (`Local`, or `Lambda` when AWS_LAMBDA_FUNCTION_NAME is set), and the
 * package's environment auto-detection (EC2 metadata probe, agent on port 25888) is never
 * loaded: only its context, serializer and Lambda environment modules are imported.
 *
 * Environment variables: TOTES_STAGE (the Stage dimension, default "local"), TOTES_METRICS
 * (`stdout` default, `stderr`, or `off`).
 */
import * as ConfigurationModule from "aws-embedded-metrics/lib/config/Configuration.js"
import type { IConfiguration } from "aws-embedded-metrics/lib/config/IConfiguration.js"
import { LambdaEnvironment } from "aws-embedded-metrics/lib/environment/LambdaEnvironment.js"
import { MetricsContext } from "aws-embedded-metrics/lib/logger/MetricsContext.js"
import { LogSerializer } from "aws-embedded-metrics/lib/serializers/LogSerializer.js"
import { MetricsDestination, readConfigOrDefault, Stage } from "./config.ts"

export const METRIC_NAMESPACE = "TotesCdc"

/** Components that emit metrics; the Component dimension's values. */
export type Component = "reader" | "consumer" | "archiver" | "lake" | "replay" | "cli"

/** Dimension names (the keys of the EMF root members). */
export const DIMENSIONS = {
  stage: "Stage",
  component: "Component",
  table: "Table",
  operation: "Operation",
  dependency: "Dependency"
} as const
export type ExtraDimension = "Table" | "Operation" | "Dependency"
export type Dimensions = Partial<Record<ExtraDimension, string>>

/** CloudWatch units used by the catalogue (a subset of the EMF unit list). */
export type MetricUnit = "Count" | "Milliseconds" | "Seconds" | "Bytes" | "Count/Second"

export interface MetricDefinition {
  /** The component that owns the metric; alarms watch Component=<this>. */
  readonly component: Component
  readonly unit: MetricUnit
  /** Extra dimensions the metric may be broken down by (always also emitted without them). */
  readonly dimensions: ReadonlyArray<ExtraDimension>
  readonly description: string
}

const define = <const T extends Record<string, MetricDefinition>>(catalogue: T): T => catalogue

export const METRICS = define({
  // reader
  EventsPublished: { component: "reader", unit: "Count", dimensions: ["Table", "Operation"], description: "change events accepted by Kinesis" },
  PublishLatency: { component: "reader", unit: "Milliseconds", dimensions: [], description: "PutRecords call duration including retries" },
  PublishBatchSize: { component: "reader", unit: "Count", dimensions: [], description: "records per PutRecords call" },
  PublishRetries: { component: "reader", unit: "Count", dimensions: [], description: "PutRecords entries retried (throttled or failed)" },
  ReplicationLagBytes: { component: "reader", unit: "Bytes", dimensions: [], description: "pg_current_wal_insert_lsn() - acknowledged LSN; emit at least once a minute (reader-down alarm)" },
  ReplicationLagSeconds: { component: "reader", unit: "Seconds", dimensions: [], description: "now - commit time of the last durable transaction while changes are pending" },
  RetainedWalBytes: { component: "reader", unit: "Bytes", dimensions: [], description: "pg_current_wal_insert_lsn() - slot restart_lsn: WAL the source keeps for the slot" },
  SlotSafeWalBytes: {
    component: "reader",
    unit: "Bytes",
    dimensions: [],
    description: "the slot's safe_wal_size: WAL that can still be written before the source invalidates the slot (max_slot_wal_keep_size); 0 once past it; absent without a limit"
  },
  HeartbeatAgeSeconds: { component: "reader", unit: "Seconds", dimensions: [], description: "age of the last heartbeat written to every shard" },
  SchemaChanges: { component: "reader", unit: "Count", dimensions: ["Table"], description: "source schema changes seen in relation messages (absorbed, or pausing the table in the warehouse)" },
  DependencyOutages: {
    component: "reader",
    unit: "Count",
    dimensions: ["Dependency"],
    description: "outages of a dependency (source database, Kinesis, DynamoDB, S3, warehouse) a component started waiting out; the consumer and archiver emit it under their own Component"
  },
  DependencyOutageSeconds: {
    component: "reader",
    unit: "Seconds",
    dimensions: ["Dependency"],
    description: "how long a dependency has been unavailable: once a minute while an outage lasts, and its total when it ends"
  },
  SnapshotRows: { component: "reader", unit: "Count", dimensions: ["Table"], description: "rows published by the initial snapshot" },
  RepairedRows: { component: "reader", unit: "Count", dimensions: ["Table"], description: "rows re-read and published by an online repair (totes resnapshot)" },
  // consumer
  EventsApplied: { component: "consumer", unit: "Count", dimensions: ["Table"], description: "change events applied to the warehouse" },
  EndToEndLatency: { component: "consumer", unit: "Milliseconds", dimensions: [], description: "source commit time to warehouse commit" },
  BatchDuration: { component: "consumer", unit: "Milliseconds", dimensions: [], description: "one batch: decode, project, apply, checkpoint" },
  DeadLetteredEvents: { component: "consumer", unit: "Count", dimensions: [], description: "events the consumer could not decode/apply and wrote to dead-letter/" },
  TablesPaused: { component: "consumer", unit: "Count", dimensions: [], description: "source tables paused by a schema change that breaks a column the warehouse uses (see pipeline_paused_tables)" },
  EventsParked: { component: "consumer", unit: "Count", dimensions: ["Table"], description: "changes of a paused table set aside until it is resumed" },
  ConsistentThroughAgeSeconds: { component: "consumer", unit: "Seconds", dimensions: [], description: "now - consistent_through (min over shards): warehouse freshness" },
  WarehouseRetries: { component: "consumer", unit: "Count", dimensions: [], description: "warehouse transactions retried (serialization, connection)" },
  // lake and replay
  LakeObjectsWritten: { component: "lake", unit: "Count", dimensions: [], description: "objects written to the lake (archiver, compaction)" },
  LakeBytesWritten: { component: "lake", unit: "Bytes", dimensions: [], description: "bytes written to the lake" },
  LakeWatermarkAgeSeconds: {
    component: "lake",
    unit: "Seconds",
    dimensions: [],
    description: "now - commit time of the lake watermark (minimum over shards of the newest archived heartbeat): how far behind the lake is complete"
  },
  EventsReplayed: { component: "replay", unit: "Count", dimensions: [], description: "events re-applied from the lake" },
  ReplayEventsPerSecond: { component: "replay", unit: "Count/Second", dimensions: [], description: "replay throughput" }
})

export type MetricName = keyof typeof METRICS
export const METRIC_NAMES = Object.keys(METRICS) as ReadonlyArray<MetricName>

/** Values by metric name: one number, or several samples of the same metric. */
export type MetricValues = Partial<Record<MetricName, number | ReadonlyArray<number>>>
/** Searchable, non-dimension members (correlation ids). Never row values. */
export type MetricProperties = Readonly<Record<string, string | number | boolean>>

// ---------------------------------------------------------------------------------------------
// sinks

export interface MetricsSink {
  readonly write: (line: string) => void
}

export const stdoutSink: MetricsSink = { write: (line) => void process.stdout.write(`${line}\n`) }
export const stderrSink: MetricsSink = { write: (line) => void process.stderr.write(`${line}\n`) }
export const nullSink: MetricsSink = { write: () => {} }

/** The parsed form of one EMF line (what CloudWatch reads). */
export interface EmfDocument {
  readonly _aws: {
    readonly Timestamp: number
    readonly CloudWatchMetrics: ReadonlyArray<{
      readonly Namespace: string
      readonly Dimensions: ReadonlyArray<ReadonlyArray<string>>
      readonly Metrics: ReadonlyArray<{ readonly Name: string; readonly Unit?: string; readonly StorageResolution?: number }>
    }>
  }
  readonly [member: string]: unknown
}

/** Parses a line if it is an EMF document, otherwise null (so mixed log output can be scanned). */
export const parseEmfLine = (line: string): EmfDocument | null => {
  const text = line.trim()
  if (!text.startsWith("{") || !text.includes("\"_aws\"")) return null
  try {
    const value = JSON.parse(text) as { _aws?: { CloudWatchMetrics?: unknown } }
    return value && typeof value === "object" && value._aws && Array.isArray(value._aws.CloudWatchMetrics) ? (value as unknown as EmfDocument) : null
  } catch {
    return null
  }
}

/** Collects lines in memory: for tests, and for capturing the figures of a real run. */
export class MemoryMetricsSink implements MetricsSink {
  readonly lines: Array<string> = []
  readonly write = (line: string): void => {
    this.lines.push(line)
  }
  documents(): Array<EmfDocument> {
    return this.lines.map(parseEmfLine).filter((d): d is EmfDocument => d !== null)
  }
  /**
   * Every sample of `name` (flattened), optionally only from lines whose root members match
   * `where` (e.g. `{ Component: "reader", Table: "sales_order" }`).
   */
  values(name: MetricName, where: Readonly<Record<string, string>> = {}): Array<number> {
    const out: Array<number> = []
    for (const doc of this.documents()) {
      if (!Object.entries(where).every(([k, v]) => doc[k] === v)) continue
      const declared = doc._aws.CloudWatchMetrics.some((d) => d.Metrics.some((m) => m.Name === name))
      if (!declared) continue
      const value = doc[name]
      if (typeof value === "number") out.push(value)
      else if (Array.isArray(value)) out.push(...value.filter((v): v is number => typeof v === "number"))
    }
    return out
  }
  /** Sum of all samples of `name` (0 when none). */
  sum(name: MetricName, where: Readonly<Record<string, string>> = {}): number {
    return this.values(name, where).reduce((a, b) => a + b, 0)
  }
  clear(): void {
    this.lines.length = 0
  }
}

/** Writes every line to each of the sinks. */
export const teeSink = (...sinks: ReadonlyArray<MetricsSink>): MetricsSink => ({
  write: (line) => {
    for (const sink of sinks) sink.write(line)
  }
})

// ---------------------------------------------------------------------------------------------
// the package's configuration (set in code, not only through AWS_EMF_* variables)

type Env = Record<string, string | undefined>

/** CJS default export under every loader (Node ESM, esbuild, vitest, tsx). */
const configuration: IConfiguration = (() => {
  let value: any = ConfigurationModule
  while (value && typeof value === "object" && !("namespace" in value) && "default" in value) value = value.default
  return value as IConfiguration
})()

const isLambda = (env: Env) => Boolean(env.AWS_LAMBDA_FUNCTION_NAME)

/**
 * Sets the package's environment explicitly: `Lambda` in a Lambda function, `Local` (stdout,
 * no agent) everywhere else, including ECS, whose awslogs driver ships stdout.
 */
export const configureEmf = (env: Env = process.env): void => {
  configuration.namespace = METRIC_NAMESPACE
  configuration.serviceName = "totes-cdc"
  configuration.serviceType = isLambda(env) ? "AWS::Lambda::Function" : "totes-cdc"
  configuration.environmentOverride = (isLambda(env) ? "Lambda" : "Local") as IConfiguration["environmentOverride"]
}
configureEmf()

/** The package's configuration object (read-only view, for tests and diagnostics). */
export const emfConfiguration = (): Readonly<IConfiguration> => configuration

// ---------------------------------------------------------------------------------------------
// emission

/** The sink TOTES_METRICS names (an invalid value is refused at start by checkConfiguration, not here). */
const defaultSink = (env: Env): MetricsSink => {
  switch (readConfigOrDefault(MetricsDestination, env)) {
    case "off":
      return nullSink
    case "stderr":
      return stderrSink
    default:
      return stdoutSink
  }
}

let currentSink: MetricsSink = defaultSink(process.env)
let stage = readConfigOrDefault(Stage, process.env)
const serializer = new LogSerializer()
const lambdaEnvironment = new LambdaEnvironment()

const isDimensionValue = (value: string | undefined): value is string =>
  typeof value === "string" && value.length > 0 && value.length <= 1024 && /^[\x20-\x7e]+$/.test(value)

const samplesOf = (value: number | ReadonlyArray<number> | undefined): Array<number> =>
  (typeof value === "number" ? [value] : value ? [...value] : []).filter((v) => Number.isFinite(v))

/**
 * Serializes metrics to EMF lines without writing them (what `emit` writes). Lines are grouped
 * by dimension sets: metrics whose extra dimensions were all given share one line carrying both
 * [Stage, Component] and [Stage, Component, ...extra]; the others one line with the base set.
 */
export const toEmfLines = (
  component: Component,
  values: MetricValues,
  dimensions: Dimensions = {},
  properties: MetricProperties = {},
  options: { readonly stage?: string; readonly timestamp?: Date | number; readonly env?: Env } = {}
): Array<string> => {
  const env = options.env ?? process.env
  const base: Record<string, string> = { [DIMENSIONS.stage]: options.stage ?? stage, [DIMENSIONS.component]: component }
  const groups = new Map<string, { extra: ReadonlyArray<ExtraDimension>; metrics: Array<[MetricName, Array<number>]> }>()
  for (const [name, value] of Object.entries(values) as Array<[string, number | ReadonlyArray<number> | undefined]>) {
    const definition = (METRICS as Record<string, MetricDefinition>)[name]
    if (!definition) throw new TypeError(`unknown metric ${JSON.stringify(name)} (add it to METRICS in services/shared/metrics.ts)`)
    const samples = samplesOf(value)
    if (samples.length === 0) continue
    const extra = definition.dimensions.filter((d) => isDimensionValue(dimensions[d]))
    const key = extra.join(",")
    const group = groups.get(key) ?? { extra, metrics: [] }
    group.metrics.push([name as MetricName, samples])
    groups.set(key, group)
  }
  const lines: Array<string> = []
  for (const { extra, metrics } of groups.values()) {
    const context = MetricsContext.empty()
    context.setNamespace(METRIC_NAMESPACE)
    if (options.timestamp !== undefined) context.setTimestamp(options.timestamp)
    const detailed: Record<string, string> = { ...base }
    for (const d of extra) detailed[d] = dimensions[d] as string
    context.setDimensions(extra.length > 0 ? [base, detailed] : [base], false)
    for (const [key, value] of Object.entries(properties)) {
      if (key === "_aws" || key in detailed || key in METRICS) continue
      context.setProperty(key, value)
    }
    if (isLambda(env)) lambdaEnvironment.configureContext(context)
    for (const [name, samples] of metrics) {
      for (const sample of samples) context.putMetric(name, sample, METRICS[name].unit)
    }
    lines.push(...serializer.serialize(context))
  }
  return lines
}

/**
 * Emits metrics now (synchronously) to the current sink, e.g.
 * `metrics.emit("reader", { EventsPublished: 120 }, { Table: "sales_order", Operation: "c" })`.
 * Non-finite values are dropped. Never throws: metrics must not stop the pipeline, so a line
 * the serializer rejects (unknown name, invalid value) is reported on stderr instead.
 */
const emit = (component: Component, values: MetricValues, dimensions: Dimensions = {}, properties: MetricProperties = {}): void => {
  let lines: Array<string>
  try {
    lines = toEmfLines(component, values, dimensions, properties)
  } catch (error) {
    process.stderr.write(
      `${JSON.stringify({ level: "error", time: new Date().toISOString(), component: "metrics", message: `metrics not emitted: ${(error as Error)?.message ?? String(error)}` })}\n`
    )
    return
  }
  for (const line of lines) currentSink.write(line)
}

/** Replaces the sink; returns a function restoring the previous one. */
const setSink = (sink: MetricsSink): (() => void) => {
  const previous = currentSink
  currentSink = sink
  return () => {
    currentSink = previous
  }
}

/**
 * Captures emitted lines in memory (optionally still writing to the previous sink) until
 * `restore()` is called.
 */
const capture = (options: { readonly passThrough?: boolean } = {}): { readonly sink: MemoryMetricsSink; readonly restore: () => void } => {
  const sink = new MemoryMetricsSink()
  const restore = setSink(options.passThrough ? teeSink(sink, currentSink) : sink)
  return { sink, restore }
}

/** Sets the Stage dimension for this process (default: TOTES_STAGE or "local"). */
const setStage = (value: string): void => {
  stage = value
}

/** Times an async operation and emits its duration (ms) under `name`. */
const time = async <A>(component: Component, name: MetricName, run: () => Promise<A>, dimensions: Dimensions = {}): Promise<A> => {
  const started = performance.now()
  try {
    return await run()
  } finally {
    emit(component, { [name]: Math.round((performance.now() - started) * 1000) / 1000 }, dimensions)
  }
}

export const metrics = {
  namespace: METRIC_NAMESPACE,
  definitions: METRICS,
  emit,
  time,
  setSink,
  capture,
  setStage,
  memorySink: () => new MemoryMetricsSink(),
  get stage() {
    return stage
  }
}
