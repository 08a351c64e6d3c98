/**
 * Structured JSON log lines: `{"level","time","component","message", ...fields}`, one per line.
 *
 * Only allow-listed field names are accepted (LOG_FIELDS: positions, ids, counts, durations,
 * names of things), each with a scalar value, so a row image can never be logged by accident;
 * other keys are dropped and only their names are reported (`droppedFields`). Every string
 * (message, field values, error messages and stacks) goes through `redact`, which masks
 * passwords in connection URLs and conninfo strings, AWS access keys and secret keys, bearer
 * tokens and presigned-URL signatures; `redactFields` masks values under sensitive key names.
 *
 * Lines go to stderr by default (stdout stays free for command output and EMF metric lines;
 * Lambda and ECS ship both). TOTES_LOG_LEVEL = debug | info | warn | error | off (default info).
 *
 * The logger is Effect's: `jsonLineLogger` is an Effect `Logger` that writes these records.
 * Effect code logs with `Effect.logInfo` / `Effect.logWarning` (annotated with `component` and
 * fields) under `loggerLayer`; plain code uses `makeLogger(component)`, which logs through the
 * same Logger.
 */

import { Cause, Effect, Layer, type LogLevel as EffectLogLevel, Logger as EffectLogger, References } from "effect"
import { LogLevel as LogLevelSetting, readConfigOrDefault } from "./config.ts"

export type LogLevel = "debug" | "info" | "warn" | "error"
const LEVELS: Record<LogLevel | "off", number> = { debug: 10, info: 20, warn: 30, error: 40, off: 100 }

/** The only field names a log line may carry. Add names here, never row columns. */
export const LOG_FIELDS = [
  // replication and positions
  "slot",
  "publication",
  "systemId",
  "lsn",
  "commitLsn",
  "fromLsn",
  "toLsn",
  "confirmedLsn",
  "restartLsn",
  "xid",
  "snapshotLsn",
  // stream
  "stream",
  "shardId",
  "shardCount",
  "sequenceNumber",
  "fromSequence",
  "toSequence",
  "partitionKeyHash",
  "batchId",
  "batchSize",
  "eventId",
  "eventCount",
  "records",
  "failedRecords",
  // tables and counts (table names, never row values)
  "table",
  "tables",
  "column",
  "problem",
  "action",
  "operation",
  "count",
  "rows",
  "events",
  "bytes",
  "lagBytes",
  "lagSeconds",
  "ageSeconds",
  "durationMs",
  "elapsedMs",
  "attempt",
  "maxAttempts",
  "retryInMs",
  // outages (outage-book.ts): the dependency, failed attempts, what was retried
  "dependency",
  "retries",
  "operations",
  // lake, checkpoints, warehouse
  "bucket",
  "objectKey",
  "prefix",
  "objects",
  "checkpointTable",
  "checkpoint",
  "position",
  "consistentThrough",
  "schema",
  "database",
  "host",
  "port",
  // process and AWS context
  "command",
  "phase",
  "status",
  "reason",
  "stage",
  "region",
  "functionName",
  "requestId",
  "awsRequestId",
  "errorCode",
  "taskArn",
  "pid",
  "version"
] as const
export type LogField = (typeof LOG_FIELDS)[number]
const ALLOWED = new Set<string>(LOG_FIELDS)

export type LogValue = string | number | boolean | bigint | null | undefined | ReadonlyArray<string | number>
/** Allow-listed fields, plus `error` (an Error or anything thrown), serialized safely. */
export type LogFields = { readonly [K in LogField]?: LogValue } & { readonly error?: unknown }

// ---------------------------------------------------------------------------------------------
// redaction

const MASK = "[REDACTED]"
const SENSITIVE_KEY = /pass(word|wd)?|secret|token|credential|authorization|api[-_]?key|private[-_]?key|session[-_]?key|signature|cookie/i

const PATTERNS: ReadonlyArray<readonly [RegExp, string | ((...groups: Array<string>) => string)]> = [
  // scheme://user:password@host (postgres, postgresql, redis, amqp, https, ...)
  [/\b([a-z][a-z0-9+.-]*:\/\/)([^:@/\s?#]*):([^\s/]*)@/gi, (_m, scheme, user) => `${scheme}${user}:${MASK}@`],
  // conninfo / query string / env style: password=..., PGPASSWORD=..., "password": "..."
  [/\b([a-z_]*(?:password|passwd|pwd|secret|token)[a-z_]*)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s&;,"'}]+)/gi, (_m, key, sep) => `${key}${sep}${MASK}`],
  // JSON style: "SecretAccessKey":"...", "sessionToken": "..."
  [/("[A-Za-z_]*(?:password|secret|token|credential)[A-Za-z_]*"\s*:\s*)"(?:[^"\\]|\\.)*"/gi, (_m, key) => `${key}"${MASK}"`],
  // AWS access key ids
  [/\b(?:AKIA|ASIA|AROA|AIDA|ANPA|ANVA|AGPA)[A-Z0-9]{16}\b/g, MASK],
  // presigned URL / SigV4 parameters
  [/\b(X-Amz-(?:Signature|Security-Token|Credential))=[^&\s]+/gi, (_m, key) => `${key}=${MASK}`],
  // bearer / basic authorization values
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g, (_m, kind) => `${kind} ${MASK}`]
]

/** 40 characters of base64 with upper case, lower case and a digit: the shape of an AWS secret key. */
const SECRET_KEY_SHAPE = /(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g
const looksLikeSecretKey = (s: string) => /[A-Z]/.test(s) && /[a-z]/.test(s) && /[0-9]/.test(s)

/** Masks secrets inside free text (messages, error messages, stacks, field values). */
export const redact = (text: string): string => {
  let out = text
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement as any)
  return out.replace(SECRET_KEY_SHAPE, (m) => (looksLikeSecretKey(m) ? MASK : m))
}

/** Deep copy with values under sensitive key names masked and every string redacted. */
export const redactFields = (value: unknown, depth = 0): unknown => {
  if (typeof value === "string") return redact(value)
  if (value === null || typeof value !== "object") return typeof value === "bigint" ? value.toString() : value
  if (depth > 6) return "[…]"
  if (Array.isArray(value)) return value.map((v) => redactFields(v, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) out[key] = SENSITIVE_KEY.test(key) ? MASK : redactFields(v, depth + 1)
  return out
}

// ---------------------------------------------------------------------------------------------
// records

export interface LogRecord {
  readonly level: LogLevel
  readonly time: string
  readonly component: string
  readonly message: string
  readonly [field: string]: unknown
}

const MAX_STRING = 2_000

const scalar = (value: LogValue): unknown => {
  if (typeof value === "string") return redact(value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value)
  if (typeof value === "bigint") return value.toString()
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value)
  if (Array.isArray(value)) return value.slice(0, 100).map((v) => (typeof v === "string" ? redact(v) : v))
  return value
}

/** An error as `{name, message, code?, stack?, cause?}`, every string redacted; no other own properties. */
export const serializeError = (error: unknown, depth = 0): Record<string, unknown> => {
  if (!(error instanceof Error)) return { message: redact(typeof error === "string" ? error : safeString(error)) }
  const e = error as Error & { code?: unknown; _tag?: unknown; cause?: unknown }
  const out: Record<string, unknown> = { name: typeof e._tag === "string" ? e._tag : e.name, message: redact(e.message) }
  if (typeof e.code === "string" || typeof e.code === "number") out.code = e.code
  if (e.stack) out.stack = redact(e.stack.split("\n").slice(0, 12).join("\n"))
  if (e.cause !== undefined && depth < 3) out.cause = serializeError(e.cause, depth + 1)
  return out
}

const safeString = (value: unknown): string => {
  try {
    return typeof value === "object" ? JSON.stringify(redactFields(value)) ?? String(value) : String(value)
  } catch {
    return String(value)
  }
}

/** Builds the record: allow-listed fields only (unknown names reported by name, values never). */
export const buildRecord = (level: LogLevel, component: string, message: string, fields: LogFields = {}, now: Date = new Date()): LogRecord => {
  const record: Record<string, unknown> = { level, time: now.toISOString(), component, message: redact(message) }
  const dropped: Array<string> = []
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue
    if (key === "error") {
      record.error = serializeError(value)
    } else if (ALLOWED.has(key) && (value === null || typeof value !== "object" || Array.isArray(value))) {
      record[key] = scalar(value as LogValue)
    } else {
      dropped.push(key.length > 64 ? `${key.slice(0, 64)}…` : key)
    }
  }
  if (dropped.length > 0) record.droppedFields = dropped
  return record as LogRecord
}

// ---------------------------------------------------------------------------------------------
// loggers and sinks

export interface LogSink {
  readonly write: (line: string) => void
}
export const stderrLogSink: LogSink = { write: (line) => void process.stderr.write(`${line}\n`) }
export const stdoutLogSink: LogSink = { write: (line) => void process.stdout.write(`${line}\n`) }

export class MemoryLogSink implements LogSink {
  readonly lines: Array<string> = []
  readonly write = (line: string): void => {
    this.lines.push(line)
  }
  records(): Array<LogRecord> {
    return this.lines.map((l) => JSON.parse(l) as LogRecord)
  }
  clear(): void {
    this.lines.length = 0
  }
}

let defaultSink: LogSink = stderrLogSink

/** Replaces the default sink of loggers created without one; returns a restore function. */
export const setDefaultLogSink = (sink: LogSink): (() => void) => {
  const previous = defaultSink
  defaultSink = sink
  return () => {
    defaultSink = previous
  }
}

/** TOTES_LOG_LEVEL (an invalid value is refused at start by checkConfiguration, not here). */
const levelFromEnv = (): LogLevel | "off" => readConfigOrDefault(LogLevelSetting, process.env)

const SEVERITY: Record<LogLevel, EffectLogLevel.Severity> = { debug: "Debug", info: "Info", warn: "Warn", error: "Error" }
const minimumLevel = (setting: LogLevel | "off"): EffectLogLevel.LogLevel => (setting === "off" ? "None" : SEVERITY[setting])
const levelOf = (level: EffectLogLevel.LogLevel): LogLevel =>
  level === "Fatal" || level === "Error" ? "error" : level === "Warn" ? "warn" : level === "Info" ? "info" : "debug"

const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((part) => (typeof part === "string" ? part : safeString(part))).join(" ")
}

const writeRecord = (sink: LogSink, record: LogRecord): void => {
  let line: string
  try {
    line = JSON.stringify(record)
  } catch {
    line = JSON.stringify({ level: record.level, time: record.time, component: record.component, message: record.message, droppedFields: ["unserializable"] })
  }
  sink.write(line)
}

/**
 * Effect's Logger writing our records: the log annotations are the fields (`component` names
 * the component; only allow-listed names pass), and a logged Cause becomes `error`. Every line
 * of the pipeline, from Effect code (`Effect.logInfo` under `loggerLayer`) or from plain code
 * (`makeLogger`), goes through it.
 */
export const jsonLineLogger = (options: { readonly sink?: LogSink; readonly now?: () => Date } = {}): EffectLogger.Logger<unknown, void> =>
  EffectLogger.make(({ cause, date, fiber, logLevel, message }) => {
    const { component, error, ...fields } = fiber.getRef(References.CurrentLogAnnotations) as Record<string, unknown>
    const failure = error ?? (cause.reasons.length > 0 ? Cause.squash(cause) : undefined)
    const record = buildRecord(levelOf(logLevel), typeof component === "string" ? component : "totes", messageText(message), { ...fields, error: failure } as LogFields, options.now?.() ?? date)
    writeRecord(options.sink ?? defaultSink, record)
  })

/**
 * The logger of Effect programs, provided at their edges (Lambda runtimes, pollers, CLI):
 * replaces Effect's default console logger and sets the minimum level from TOTES_LOG_LEVEL.
 * Effect code logs with `Effect.logInfo(...)` annotated with `{ component, ...fields }`.
 */
export const loggerLayer = (options: { readonly sink?: LogSink; readonly level?: LogLevel | "off" } = {}): Layer.Layer<never> =>
  Layer.mergeAll(EffectLogger.layer([jsonLineLogger({ sink: options.sink })]), Layer.succeed(References.MinimumLogLevel, minimumLevel(options.level ?? levelFromEnv())))

/** A logger for plain (non-Effect) code: each call logs through `jsonLineLogger`. */
export interface Logger {
  readonly component: string
  readonly debug: (message: string, fields?: LogFields) => void
  readonly info: (message: string, fields?: LogFields) => void
  readonly warn: (message: string, fields?: LogFields) => void
  readonly error: (message: string, fields?: LogFields) => void
  /** A logger whose lines also carry `fields` (e.g. slot, stream, shardId). */
  readonly child: (fields: LogFields) => Logger
  readonly enabled: (level: LogLevel) => boolean
}

export interface LoggerOptions {
  readonly sink?: LogSink
  readonly level?: LogLevel | "off"
  readonly fields?: LogFields
  readonly now?: () => Date
}

export const makeLogger = (component: string, options: LoggerOptions = {}): Logger => {
  const setting = options.level ?? levelFromEnv()
  const threshold = LEVELS[setting]
  const base = options.fields ?? {}
  const loggers: ReadonlySet<EffectLogger.Logger<unknown, unknown>> = new Set([jsonLineLogger({ sink: options.sink, now: options.now })])
  const enabled = (level: LogLevel) => LEVELS[level] >= threshold
  const log = (level: LogLevel) => (message: string, fields?: LogFields) => {
    if (!enabled(level)) return
    Effect.runSync(
      Effect.logWithLevel(SEVERITY[level])(message).pipe(
        Effect.annotateLogs({ ...base, ...fields, component }),
        Effect.provideService(EffectLogger.CurrentLoggers, loggers),
        Effect.provideService(References.MinimumLogLevel, minimumLevel(setting))
      )
    )
  }
  return {
    component,
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    child: (fields) => makeLogger(component, { ...options, fields: { ...base, ...fields } }),
    enabled
  }
}

/**
 * Error messages from the data path can quote a value (e.g. `invalid input syntax for type
 * timestamp: "…"`, `Key (id)=(42) already exists`, `Failing row contains (…)`): quoted text,
 * key and row images and long digit runs are replaced before such a message is logged. Quoted
 * names the pipeline knows (`keep`: the slot, publication, stream, table names) stay readable.
 */
export const scrubValues = (message: string, keep: ReadonlyArray<string> = []): string =>
  message
    .replace(/\)=\([^)]*\)/g, ")=(«value»)")
    .replace(/(row contains )\([^\n]*\)/g, "$1(«values»)")
    .replace(/"([^"]*)"|'([^']*)'/g, (quoted, double?: string, single?: string) => (keep.includes(double ?? single ?? "") ? quoted : "«value»"))
    .replace(/\b\d{6,}\b/g, "«number»")

/**
 * Errors whose messages the pipeline writes itself, from names, positions and settings and never
 * from row values: logged and printed as they are (secrets still masked).
 */
export const OPERATOR_ERRORS: ReadonlySet<string> = new Set([
  "ReaderStartError",
  "ReaderRefused",
  "ResumeRefused",
  "SourceValidationError",
  "ConfigurationError",
  "DatabaseConnectionError",
  "UsageError",
  "CsvLoadError"
])

/** The text to log for an error: as written for an operator errors, scrubbed of values otherwise. */
export const errorReason = (error: unknown, keep: ReadonlyArray<string> = []): string => {
  const e = error as { _tag?: unknown; name?: unknown; message?: unknown } | null | undefined
  const name = typeof e?._tag === "string" ? e._tag : typeof e?.name === "string" ? e.name : ""
  const message = typeof e?.message === "string" ? e.message : String(error)
  return OPERATOR_ERRORS.has(name) ? redact(message) : redact(scrubValues(message, keep))
}
