/**
 * The change event, version 1: the one vocabulary shared by the reader, the stream, the lake,
 * the consumer and replay. A stream record is a ChangeEvent, a Heartbeat, (written by an online
 * table repair) a RepairedRange or (written by the initial snapshot) a SnapshotChunk.
 *
 * Values are lossless JSON: numeric/int8 as strings, date as `YYYY-MM-DD`, timestamp without
 * zone as ISO text without zone, timestamptz as ISO UTC (`…Z`), enums as text, json as JSON,
 * bytea as base64. A TOAST column whose value the server did not send is absent from `after`
 * and listed in `unchanged`; it is never replaced by a placeholder.
 */
import { Effect, Result, Schema } from "effect"
import { isLsn } from "./lsn.ts"

export const SCHEMA_VERSION = 1 as const

export const LsnText = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) => isLsn(s) || "expected an LSN such as 0/16B3748"))
)

/** A row image: column name → lossless JSON value. */
export const Row = Schema.Record(Schema.String, Schema.Json)
export type Row = typeof Row.Type

export const Operation = Schema.Literals(["c", "u", "d", "t", "r"])
/** c insert, u update, d delete, t truncate, r row read by the initial snapshot. */
export type Operation = typeof Operation.Type

export const Source = Schema.Struct({
  db: Schema.String,
  schema: Schema.String,
  table: Schema.String,
  /** Commit LSN of the transaction (snapshot rows: the slot's consistent point). */
  commitLsn: LsnText,
  /** The row message's own LSN (null for snapshot rows). */
  lsn: Schema.NullOr(LsnText),
  xid: Schema.NullOr(Schema.Number),
  /** Commit time, ISO UTC with microseconds where the server gave them. */
  committedAt: Schema.String,
  /** Position of the change within its transaction (snapshot rows: -1). */
  index: Schema.Number.pipe(Schema.check(Schema.isInt())),
  snapshot: Schema.Boolean
})
export type Source = typeof Source.Type

/** Where an oversize event's row images were stored instead of inline (claim check). */
export const ClaimCheck = Schema.Struct({
  bucket: Schema.String,
  key: Schema.String,
  bytes: Schema.Number
})
export type ClaimCheck = typeof ClaimCheck.Type

export const ChangeEvent = Schema.Struct({
  kind: Schema.Literal("change"),
  schemaVersion: Schema.Literal(SCHEMA_VERSION),
  id: Schema.NonEmptyString,
  op: Operation,
  source: Source,
  key: Schema.NullOr(Row),
  before: Schema.NullOr(Row),
  after: Schema.NullOr(Row),
  unchanged: Schema.Array(Schema.String),
  claimCheck: Schema.optionalKey(ClaimCheck)
})
export type ChangeEvent = typeof ChangeEvent.Type

/**
 * Written by the reader to every shard: everything committed at or before `commitLsn` has been
 * published, so a shard that has applied this heartbeat is consistent through it. `shards` lists
 * the stream's open shards as the reader saw them: a consumer registers them all, so that the
 * warehouse's freshness waits for every shard, also one whose first batch has not arrived yet
 * (absent in heartbeats written before it was added).
 */
export const Heartbeat = Schema.Struct({
  kind: Schema.Literal("heartbeat"),
  schemaVersion: Schema.Literal(SCHEMA_VERSION),
  id: Schema.NonEmptyString,
  commitLsn: LsnText,
  committedAt: Schema.String,
  emittedAt: Schema.String,
  shards: Schema.optionalKey(Schema.Array(Schema.NonEmptyString))
})
export type Heartbeat = typeof Heartbeat.Type

const Integer = Schema.Number.pipe(Schema.check(Schema.isInt()))

/**
 * Written by an online repair of a table (`totes resnapshot`) after each chunk it re-read: at
 * the position (source.commitLsn, source.index) no row of `source.table` existed whose key lies
 * in (afterKey, throughKey] (null: unbounded on that side) and is not listed in `presentKeys`. The chunk's
 * rows travel as op "r" change events at the same position; `presentKeys` lists them and the keys
 * the stream changed while the chunk was read (their own changes decide them). A consumer deletes
 * the other rows it holds in the range that are older than the position: rows deleted in the
 * source while no change was captured (a lost slot) go too.
 */
export const RepairedRange = Schema.Struct({
  kind: Schema.Literal("repair"),
  schemaVersion: Schema.Literal(SCHEMA_VERSION),
  id: Schema.NonEmptyString,
  /** The repair request this chunk belongs to. */
  repair: Schema.NonEmptyString,
  source: Source,
  /** The table's primary key (a single integer column). */
  keyColumn: Schema.NonEmptyString,
  afterKey: Schema.NullOr(Integer),
  throughKey: Schema.NullOr(Integer),
  presentKeys: Schema.Array(Integer)
})
export type RepairedRange = typeof RepairedRange.Type

/** One column of a snapshot chunk: its name and the source's type (OID, and as format_type names it). */
export const ChunkColumn = Schema.Struct({
  name: Schema.NonEmptyString,
  typeOid: Integer,
  typeName: Schema.String,
  /** pg_type.typcategory ("S" string, "E" enum, "N" numeric…): an enum's OID differs per database. */
  category: Schema.String
})
export type ChunkColumn = typeof ChunkColumn.Type

/**
 * Written by the initial snapshot in place of the rows of one chunk of a table (a claim check for
 * many rows): the rows, as `COPY … TO STDOUT` wrote them (text format, gzip), are the lake object
 * `object.key`. Each row means an op "r" change event at `source` (the slot's consistent point,
 * index -1) with the id snapshotEventId(consistent point, table, key): reading the rows back
 * (services/lake/snapshot-chunks.ts) gives exactly the events the row-by-row snapshot published.
 */
export const SnapshotChunk = Schema.Struct({
  kind: Schema.Literal("snapshot-chunk"),
  schemaVersion: Schema.Literal(SCHEMA_VERSION),
  id: Schema.NonEmptyString,
  source: Source,
  /** The table's primary key, in order. */
  keyColumns: Schema.Array(Schema.NonEmptyString),
  columns: Schema.Array(ChunkColumn),
  /** Position of the chunk in its table's reading (from 0). */
  chunk: Integer,
  rows: Integer,
  object: ClaimCheck
})
export type SnapshotChunk = typeof SnapshotChunk.Type

export const StreamRecord = Schema.Union([ChangeEvent, Heartbeat, RepairedRange, SnapshotChunk])
export type StreamRecord = typeof StreamRecord.Type

export class EventDecodeError extends Schema.TaggedError<EventDecodeError>()("EventDecodeError", {
  /** Dotted path of the offending field, or "" for the whole record. */
  field: Schema.String,
  message: Schema.String
}) {}

const decodeRecord = Schema.decodeUnknownResult(StreamRecord, { errors: "first" })

/** Parses and validates one stream/lake record, synchronously; names the failing field on error. */
export const decodeStreamRecordResult = (input: string | unknown): Result.Result<StreamRecord, EventDecodeError> => {
  let value: unknown = input
  if (typeof input === "string") {
    try {
      value = JSON.parse(input)
    } catch (cause) {
      return Result.fail(new EventDecodeError({ field: "", message: `not JSON: ${String(cause)}` }))
    }
  }
  if (typeof value === "object" && value !== null && "schemaVersion" in value && value.schemaVersion !== SCHEMA_VERSION) {
    return Result.fail(
      new EventDecodeError({ field: "schemaVersion", message: `unsupported schemaVersion ${JSON.stringify(value.schemaVersion)} (this build reads ${SCHEMA_VERSION})` })
    )
  }
  const result = decodeRecord(value)
  if (result._tag === "Success") return Result.succeed(result.success)
  const issue = result.failure
  return Result.fail(new EventDecodeError({ field: firstPath(issue.issue), message: issue.message }))
}

/** Why a record did not decode, as dead letters and lake readers report it: `field: message`. */
export const decodeFailureReason = (error: EventDecodeError): string => `${error.field ? `${error.field}: ` : ""}${error.message}`

/** decodeStreamRecordResult as an Effect. */
export const decodeStreamRecord = (input: string | unknown): Effect.Effect<StreamRecord, EventDecodeError> => Effect.suspend(() => Effect.fromResult(decodeStreamRecordResult(input)))

const firstPath = (issue: unknown): string => {
  const path: Array<string> = []
  let cursor: any = issue
  while (cursor) {
    if (cursor._tag === "Pointer") {
      path.push(...cursor.path.map(String))
      cursor = cursor.issue
    } else if (cursor._tag === "Composite" || cursor._tag === "AnyOf") {
      cursor = cursor.issues?.[0]
    } else if (cursor.issue) {
      cursor = cursor.issue
    } else break
  }
  return path.join(".")
}

const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/
const str = (text: string) => (PLAIN.test(text) ? `"${text}"` : JSON.stringify(text))
const json = (value: unknown) => (value === null ? "null" : JSON.stringify(value))

/**
 * The event's JSON, exactly `JSON.stringify(event)` (same keys, same order; checked by the unit
 * tests), built without walking the envelope generically: the reader serialises every event.
 */
export const serializeChangeEvent = (event: ChangeEvent): string => {
  const s = event.source
  return (
    `{"kind":"change","schemaVersion":${event.schemaVersion},"id":${str(event.id)},"op":"${event.op}",` +
    `"source":{"db":${str(s.db)},"schema":${str(s.schema)},"table":${str(s.table)},"commitLsn":${str(s.commitLsn)},` +
    `"lsn":${s.lsn === null ? "null" : str(s.lsn)},"xid":${s.xid === null ? "null" : json(s.xid)},"committedAt":${str(s.committedAt)},` +
    `"index":${json(s.index)},"snapshot":${s.snapshot}},` +
    `"key":${json(event.key)},"before":${json(event.before)},"after":${json(event.after)},"unchanged":${json(event.unchanged)}` +
    (event.claimCheck === undefined ? "}" : `,"claimCheck":${JSON.stringify(event.claimCheck)}}`)
  )
}

/** Event id for a streamed change: unique because of the index within the transaction. */
export const changeEventId = (commitLsn: string, index: number): string => `${commitLsn}:${index}`

/**
 * Event id of a row re-read by an online repair, published at the chunk's high watermark
 * (`highWatermark`: the LSN of that WAL marker; no transaction commits at it).
 */
export const repairEventId = (highWatermark: string, table: string, key: number): string => `${highWatermark}:repair:${table}:${key}`

/** Id of a repair's range record; `<its id>:<key>` names the deletes a consumer derives from it. */
export const repairedRangeId = (highWatermark: string, table: string, after: number | null, through: number | null): string =>
  `${highWatermark}:repair-range:${table}:${after ?? ""}..${through ?? ""}`

/** Event id for a snapshot row: stable if the snapshot is resumed. */
export const snapshotEventId = (snapshotLsn: string, table: string, key: Row): string =>
  `${snapshotLsn}:snapshot:${table}:${Object.values(key).map((v) => String(v)).join(",")}`

/** Id of a snapshot chunk's pointer record (`attempt`: one reading of the table; a resumed snapshot reads it again). */
export const snapshotChunkId = (snapshotLsn: string, table: string, attempt: string, chunk: number): string =>
  `${snapshotLsn}:snapshot-chunk:${table}:${attempt}:${chunk}`

export const changeEventJsonSchema = () => Schema.toJsonSchemaDocument(StreamRecord)

/** The committed contracts/change-event.schema.json, as text (for other languages and tools). */
export const changeEventJsonSchemaText = () => {
  const document = changeEventJsonSchema()
  const definitions = document.definitions as Record<string, unknown>
  return `${JSON.stringify(
    {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      title: "totes-cdc stream record (change event, heartbeat, repaired range or snapshot chunk), schemaVersion 1",
      ...(document.schema as object),
      ...(Object.keys(definitions).length > 0 ? { $defs: definitions } : {})
    },
    null,
    2
  )}\n`
}
