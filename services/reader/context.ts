/**
 * What the stages of one reader session share: the outbox and its routing, the signals that
 * wake the lanes and the checkpointer, the adapters, and the reader's statistics.
 */
import type pg from "pg"
import type { SeenSchemaChange } from "../../contracts/checkpoint.ts"
import type { CheckpointStoreShape } from "../shared/checkpoint-store.ts"
import type { KinesisPublisherShape } from "../shared/kinesis/publisher.ts"
import type { ShardMap } from "../shared/kinesis/shard-map.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"
import type { OutageTracker } from "./outage.ts"
import type { Intake } from "./intake.ts"
import type { Outbox, SourcePosition } from "./outbox.ts"
import type { ReplicationStream } from "./replication-stream.ts"
import type { Signal } from "./signal.ts"

export interface ReaderSettings {
  readonly sourceUrl: string
  readonly slot: string
  readonly publication: string
  readonly tables: ReadonlyArray<string>
  readonly publisher: KinesisPublisherShape
  readonly checkpoints: CheckpointStoreShape
  readonly lake: LakeStoreShape | undefined
  readonly heartbeatIntervalMs: number
  readonly statusIntervalMs: number
  readonly shardRefreshMs: number
  readonly lagIntervalMs: number
  readonly maxBufferedRecords: number
  readonly maxBufferedBytes: number
  /** The largest Kinesis record the stream takes (1 MiB by default; up to 10 MiB if raised). */
  readonly maxRecordBytes: number
  /** Events per Kinesis record at most (1: no aggregation, for comparison). */
  readonly maxEventsPerRecord: number
  readonly resnapshot: boolean
  /** Create the slot with failover (PostgreSQL 17+) and check the standbys that would keep it. */
  readonly failoverSlot: boolean
  /** How long a standby may take to synchronise the slot before the reader says it does not. */
  readonly slotSyncGraceMs: number
  /** How often the reader looks for a repair request (`totes resnapshot`). */
  readonly repairPollMs: number
  /** Rows per initial-snapshot chunk in the lake (snapshot-copy.ts). */
  readonly snapshotChunkRows: number
}

export type ReaderProgress =
  | { readonly phase: "snapshot"; readonly table: string; readonly rows: number; readonly done: boolean }
  | { readonly phase: "streaming"; readonly durableLsn: string; readonly published: number }
  | { readonly phase: "info"; readonly message: string }
  /** Something the reader can run with, but an operator should fix (e.g. a standby that would lose the slot). */
  | { readonly phase: "warning"; readonly message: string }
  | { readonly phase: "outage"; readonly dependency: string; readonly state: "started" | "ended"; readonly message: string }
  | { readonly phase: "schema"; readonly table: string; readonly lsn: string; readonly breaksWarehouse: ReadonlyArray<string>; readonly message: string }
  | { readonly phase: "repair"; readonly table: string; readonly rows: number; readonly done: boolean; readonly through: string | undefined }

export interface ReaderStats {
  /** Change events accepted by Kinesis. */
  published: number
  /** Kinesis records (aggregates) accepted. */
  records: number
  /** Bytes of those records (aggregate framing included) and of the user records in them. */
  recordBytes: number
  userRecordBytes: number
  publishCalls: number
  publishRetries: number
  durableLsn: string | null
  durableCommittedAt: string | null
  lastHeartbeatAt: string | null
  byTableOp: Record<string, number>
  /** Most records ever waiting in memory (bounded by maxBufferedRecords: backpressure). */
  maxQueued: number
  /** Sessions restarted after the source connection was lost. */
  reconnects: number
}

export const emptyStats = (): ReaderStats => ({
  published: 0,
  records: 0,
  recordBytes: 0,
  userRecordBytes: 0,
  publishCalls: 0,
  publishRetries: 0,
  durableLsn: null,
  durableCommittedAt: null,
  lastHeartbeatAt: null,
  byTableOp: {},
  maxQueued: 0,
  reconnects: 0
})

export interface SessionContext {
  readonly settings: ReaderSettings
  readonly stats: ReaderStats
  readonly progress: (p: ReaderProgress) => void
  readonly systemId: string
  readonly database: string
  /** The admin connection (holds the slot's advisory lock); one query at a time. */
  readonly admin: AdminConnection
  readonly outbox: Outbox
  readonly intake: Intake
  routing: ShardMap
  stream: ReplicationStream | undefined
  /** The last position written to the checkpoint (and confirmed to the server). */
  durable: SourcePosition | undefined
  /** Wakes the lane senders (one signal per lane id). */
  readonly laneSignal: (laneId: string) => Signal
  /** One Kinesis outage for all lanes: a line when the first lane fails, one when the last recovers. */
  readonly kinesisOutage: OutageTracker
  /** Kinesis accepted something: durability and capacity may have changed. */
  readonly accepted: Signal
  /** The checkpointer wrote a new position. */
  readonly checkpointed: Signal
  /** Ask for the shards to be listed again (a record landed on an unexpected shard). */
  readonly shardsChanged: Signal
  /** Per-table/op counts and latencies not yet emitted as metrics. */
  readonly pendingMetrics: PendingMetrics
  /** Schema changes seen and not yet recorded for `totes status`, with the schemas as last seen. */
  readonly schemaChanges: Array<SeenSchemaChange>
  schemas: Readonly<Record<string, ReadonlyArray<readonly [string, number]>>> | undefined
}

export interface PendingMetrics {
  publishLatency: Array<number>
  eventsPerRecord: Array<number>
  retries: number
  byTableOp: Map<string, number>
}

/** A pg client used by several tasks, one query at a time (pg 9 forbids overlapping queries). */
export class AdminConnection {
  private tail: Promise<unknown> = Promise.resolve()
  constructor(readonly client: pg.Client) {}

  query<R extends pg.QueryResultRow = any>(text: string, params?: ReadonlyArray<unknown>): Promise<pg.QueryResult<R>> {
    const run = this.tail.then(
      () => this.client.query<R>(text, params as Array<unknown>),
      () => this.client.query<R>(text, params as Array<unknown>)
    )
    this.tail = run.catch(() => undefined)
    return run
  }
}
