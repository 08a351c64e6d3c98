/**
 * Checkpoint items in the DynamoDB table (hash key `pk`). `position` is a fixed-width string
 * that sorts like the position it encodes, so `position <= :new` in a ConditionExpression makes
 * every checkpoint monotonic (Kinesis sequence numbers exceed DynamoDB's 38-digit numbers).
 */
import { lsnSortable } from "./lsn.ts"

export const readerCheckpointKey = (slot: string) => `reader#${slot}`
export const snapshotStateKey = (slot: string) => `snapshot#${slot}`
/** The source schema changes the reader has seen (for `totes status`); under the reader's own key prefix. */
export const schemaChangesKey = (slot: string) => `reader#${slot}#schema`

/** The reader's record of source schemas: the last columns seen per table, and the changes seen. */
export interface SchemaRecord {
  /** Table → [column, type OID] in the table's order, as last seen. */
  readonly tables: Readonly<Record<string, ReadonlyArray<readonly [string, number]>>>
  /** The newest changes, newest last. */
  readonly changes: ReadonlyArray<SeenSchemaChange>
}

export interface SeenSchemaChange {
  readonly table: string
  readonly lsn: string
  readonly at: string
  readonly summary: string
  readonly breaksWarehouse: ReadonlyArray<string>
}
/** What the local poller stores under shardCheckpointKey: the last Kinesis record applied. */
export interface ShardCheckpoint {
  readonly sequenceNumber: string
}

export const shardCheckpointKey = (stream: string, shardId: string) => `consumer#${stream}#${shardId}`
export const archiverCheckpointKey = (stream: string, shardId: string) => `archiver#${stream}#${shardId}`
export const replayCheckpointKey = (name: string) => `replay#${name}`

/**
 * Each component's keys start with its own prefix: IAM limits every role to its prefixes
 * (`dynamodb:LeadingKeys`, infra/policies.ts), so no component can overwrite another's checkpoint.
 */
export const CHECKPOINT_KEY_PREFIXES = {
  reader: ["reader#", "snapshot#"],
  consumer: ["consumer#"],
  archiver: ["archiver#"],
  replay: ["replay#"]
} as const

export const lsnPosition = lsnSortable

/** Kinesis sequence numbers are decimal strings of up to ~56 digits. */
export const sequencePosition = (sequenceNumber: string) => sequenceNumber.padStart(64, "0")

export interface ReaderCheckpoint {
  /** Last commit whose events are all durable on the stream (the acknowledged position). */
  readonly lsn: string
  readonly committedAt: string
  /** pg_control_system().system_identifier of the source, to detect a different server. */
  readonly systemId: string
  readonly slot: string
}

export interface SnapshotState {
  readonly consistentPoint: string
  /** When the slot was created (the snapshot's moment). */
  readonly createdAt: string
  readonly tablesDone: ReadonlyArray<string>
  readonly complete: boolean
  /** Per table read so far in this run (for `totes status`): rows published, the planner's estimate, when it started and finished. */
  readonly progress?: ReadonlyArray<SnapshotTableProgress>
}

export interface SnapshotTableProgress {
  readonly table: string
  readonly rows: number
  readonly estimatedRows: number | null
  readonly startedAt: string
  readonly updatedAt: string
  readonly done: boolean
}

const count = (n: number) => n.toLocaleString("en-GB")

/** A table's snapshot figures at `now`: seconds so far (until done), rows/s, and the ETA from the estimate while it runs. */
export const snapshotTableFigures = (p: SnapshotTableProgress, now: number): { seconds: number; rowsPerSecond: number; etaSeconds: number | null } => {
  const until = p.done ? Date.parse(p.updatedAt) : now
  const seconds = Math.max(0.001, (until - Date.parse(p.startedAt)) / 1000)
  const rowsPerSecond = p.rows / seconds
  const left = p.done || p.estimatedRows === null ? null : Math.max(0, p.estimatedRows - p.rows)
  return { seconds, rowsPerSecond, etaSeconds: left === null || rowsPerSecond <= 0 ? null : left / rowsPerSecond }
}

/** One line per table for `totes status`: rows, rows/s and, while it runs, the ETA from the estimate. */
export const describeSnapshotProgress = (p: SnapshotTableProgress, now: number): string => {
  const { seconds, rowsPerSecond, etaSeconds } = snapshotTableFigures(p, now)
  if (p.done) return `${p.table}: done, ${count(p.rows)} rows in ${seconds.toFixed(1)} s, ${count(Math.round(rowsPerSecond))} rows/s`
  const eta = etaSeconds === null ? "ETA –" : `ETA ${etaSeconds.toFixed(1)} s`
  const of = p.estimatedRows === null ? "" : ` of ~${count(p.estimatedRows)}`
  return `${p.table}: ${count(p.rows)}${of} rows, ${count(Math.round(rowsPerSecond))} rows/s, ${eta}`
}
