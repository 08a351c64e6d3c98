/**
 * Pipeline status: where the reader and the consumer are, how far behind the source, the
 * warehouse's consistent_through watermark and, beside it, the lake's watermark (how far the lake
 * is complete, from the heartbeats it holds). Read-only everywhere.
 */
import { Effect, Option } from "effect"
import pg from "pg"
import { readerCheckpointKey, shardCheckpointKey, snapshotStateKey, type ReaderCheckpoint, type ShardCheckpoint, schemaChangesKey, type SchemaRecord, type SeenSchemaChange, type SnapshotState } from "../../contracts/checkpoint.ts"
import { compareLsn, lsnToBigInt, normalizeLsn } from "../../contracts/lsn.ts"
import { repairRequestKey, withRate, type RepairRequest } from "../../contracts/repair.ts"
import { readShardPositions } from "../warehouse/shard-positions.ts"
import type { LakeWatermarkReader } from "../lake/watermark-read.ts"
import { readFreshness, readWarehouseFreshness } from "../warehouse/freshness.ts"
import type { CheckpointStoreShape } from "../shared/checkpoint-store.ts"
import { fromPromise } from "../shared/promise-effect.ts"
import { currentWalLsn, slotInfo } from "../reader/source-admin.ts"
import type { LakeActivity, LakeActivityReader } from "./lake-activity.ts"

export interface StatusInputs {
  readonly source: pg.ClientBase
  readonly warehouse: pg.ClientBase
  readonly checkpoints: CheckpointStoreShape
  readonly slot: string
  readonly stream: string
  readonly schema?: string
  readonly pipelineSchema?: string
  /** Reads the lake watermark; without it the status has no lake part. */
  readonly lakeWatermarks?: LakeWatermarkReader
  /** Reads the lake's dead letters and newest objects; without it the status has no lakeActivity part. */
  readonly lakeActivity?: LakeActivityReader
}

export interface LakeStatus {
  /** Every change committed before this position is in the lake (null: no heartbeat archived yet). */
  readonly watermarkLsn: string | null
  readonly watermarkAt: string | null
  readonly lagBytes: number | null
  readonly lagSeconds: number | null
  readonly shards: ReadonlyArray<{ readonly shardId: string; readonly heartbeatLsn: string; readonly emittedAt: string; readonly counted: boolean }>
  /** Why the lake could not be read, if it could not. */
  readonly error?: string
}

export interface PipelineStatus {
  readonly at: string
  readonly source: { readonly walLsn: string }
  readonly reader: {
    readonly checkpointLsn: string | null
    readonly checkpointCommittedAt: string | null
    readonly slotConfirmedLsn: string | null
    readonly slotActive: boolean
    readonly retainedWalBytes: number | null
    readonly lagBytes: number | null
    readonly lagSeconds: number | null
    /** Source schema changes the reader saw in relation messages, newest last. */
    readonly schemaChanges: ReadonlyArray<SeenSchemaChange>
  }
  readonly consumer: {
    readonly shards: ReadonlyArray<{ readonly shardId: string; readonly checkpointSequence: string | null; readonly appliedSequence: string | null; readonly heartbeatLsn: string | null }>
    readonly consistentThroughLsn: string | null
    readonly consistentThroughAt: string | null
    /** stream: the live shards; replay: the warehouse was rebuilt from the lake. */
    readonly consistentThroughSource: "stream" | "replay" | null
    readonly lagBytes: number | null
    readonly lagSeconds: number | null
  }
  readonly lake: LakeStatus | null
  /** Dead letters (newest first, reason only) and the newest raw objects; `error` says why the lake could not be read. */
  readonly lakeActivity: (LakeActivity & { readonly error?: string }) | null
  /** Tables paused by a source schema change: the warehouse is not consistent for them. */
  readonly paused: ReadonlyArray<PausedTable>
  /** Dependencies status could not read (the parts that live there are shown as unknown). */
  readonly unavailable: ReadonlyArray<UnavailableDependency>
  /** The newest online repair (`totes resnapshot`), with its progress per table; null if none was ever requested. */
  readonly repair: RepairRequest | null
  /** The reader's initial snapshot while it runs (rows per table so far; rates and ETAs from them); null once complete or unknown. */
  readonly snapshot: SnapshotState | null
}

export interface UnavailableDependency {
  readonly dependency: "DynamoDB" | "S3"
  readonly reason: string
  /** What status could therefore not tell. */
  readonly unknown: string
}

export interface PausedTable {
  readonly table: string
  readonly column: string
  readonly problem: "missing" | "type"
  readonly detail: string
  readonly consistentBeforeLsn: string
  readonly consistentBeforeAt: string | null
  readonly parkedEvents: number
}

/** The tables a schema change paused (empty on a warehouse without them, or not migrated yet). */
export const readPausedTables = async (warehouse: pg.ClientBase, schema = "public"): Promise<ReadonlyArray<PausedTable>> => {
  const { rows } = await warehouse
    .query(
      `SELECT table_name, column_name, problem, detail, consistent_before_lsn::text AS lsn, consistent_before_at, parked_events
       FROM "${schema.replace(/"/g, "")}".pipeline_paused_tables ORDER BY table_name`
    )
    .catch(notMigratedYet({ rows: [] as Array<Record<string, unknown>> }))
  return rows.map((r) => ({
    table: String(r.table_name),
    column: String(r.column_name),
    problem: r.problem as "missing" | "type",
    detail: String(r.detail),
    consistentBeforeLsn: String(r.lsn),
    consistentBeforeAt: r.consistent_before_at ? new Date(r.consistent_before_at as string).toISOString() : null,
    parkedEvents: Number(r.parked_events)
  }))
}

/** A warehouse not migrated yet has no watermark; any other error (permissions, wrong schema) is reported. */
const notMigratedYet = <A>(fallback: A) => (error: unknown): A => {
  if ((error as { code?: string })?.code === "42P01" || (error as { code?: string })?.code === "3F000") return fallback
  throw error
}

const bytesBetween = (newer: string, older: string | null) => (older ? Math.max(0, Number(lsnToBigInt(newer) - lsnToBigInt(older))) : null)

/**
 * The whole status. The source and the warehouse must answer (their errors fail it, as thrown);
 * DynamoDB and S3 failures are reported in `unavailable` and the parts that live there shown as unknown.
 */
export const readStatus = Effect.fn("readStatus")(function* (inputs: StatusInputs): Effect.fn.Return<PipelineStatus, Error> {
  const walLsn = yield* fromPromise(() => currentWalLsn(inputs.source))
  const slot = yield* fromPromise(() => slotInfo(inputs.source, inputs.slot))
  // DynamoDB down: the rest of the status is still worth showing; what lives there is unknown.
  const unavailable: Array<UnavailableDependency> = []
  const fromCheckpoints = <A>(key: string): Effect.Effect<A | undefined> =>
    Effect.suspend(() =>
      unavailable.some((u) => u.dependency === "DynamoDB")
        ? Effect.succeed(undefined)
        : inputs.checkpoints.get<A>(key).pipe(
            Effect.map((read) => Option.getOrUndefined(read)?.data),
            Effect.catch((error) =>
              Effect.sync(() => {
                unavailable.push({ dependency: "DynamoDB", reason: error.message, unknown: "reader checkpoint, shard checkpoints, schema changes, repair, snapshot progress" })
                return undefined
              })
            )
          )
    )
  const checkpoint = yield* fromCheckpoints<ReaderCheckpoint | null>(readerCheckpointKey(inputs.slot))
  const schemaChanges = (yield* fromCheckpoints<SchemaRecord | null>(schemaChangesKey(inputs.slot)))?.changes ?? []
  const repair = (yield* fromCheckpoints<RepairRequest | null>(repairRequestKey(inputs.slot))) ?? null
  const snapshotState = (yield* fromCheckpoints<SnapshotState | null>(snapshotStateKey(inputs.slot))) ?? null
  const schemas = { schema: inputs.schema, pipelineSchema: inputs.pipelineSchema }
  const freshness = yield* fromPromise(() =>
    readWarehouseFreshness(inputs.warehouse, schemas).catch(notMigratedYet({ consistentThroughLsn: null, consistentThroughAt: null, source: null }))
  )
  const positions = yield* fromPromise(() => readShardPositions(inputs.warehouse, { ...schemas, stream: inputs.stream }).catch(notMigratedYet([])))
  const shards = yield* Effect.forEach(
    positions,
    (p) =>
      Effect.map(fromCheckpoints<ShardCheckpoint>(shardCheckpointKey(inputs.stream, p.shardId)), (cp) => ({
        shardId: p.shardId,
        checkpointSequence: cp?.sequenceNumber ?? null,
        appliedSequence: p.sequenceNumber,
        heartbeatLsn: p.heartbeatLsn
      })),
    { concurrency: "unbounded" }
  )
  const through = freshness.consistentThroughLsn ? normalizeLsn(freshness.consistentThroughLsn) : null
  const throughAt = freshness.consistentThroughAt ? new Date(freshness.consistentThroughAt).toISOString() : null
  const consumerLag = bytesBetween(walLsn, through)
  const readerLag = bytesBetween(walLsn, checkpoint?.lsn ?? null)
  const lake = inputs.lakeWatermarks ? yield* lakeStatus(inputs.lakeWatermarks, walLsn) : null
  const paused = yield* fromPromise(() => readPausedTables(inputs.warehouse, inputs.schema))
  const lakeActivity = inputs.lakeActivity ? yield* readLakeActivity(inputs.lakeActivity) : null
  return {
    at: new Date().toISOString(),
    source: { walLsn },
    reader: {
      checkpointLsn: checkpoint?.lsn ?? null,
      checkpointCommittedAt: checkpoint?.committedAt ?? null,
      slotConfirmedLsn: slot?.confirmedFlushLsn ?? null,
      slotActive: Boolean(slot?.activePid),
      retainedWalBytes: slot ? bytesBetween(walLsn, slot.restartLsn) : null,
      lagBytes: readerLag,
      // Nothing pending means no lag; otherwise the age of the last durable commit.
      lagSeconds: readerLag === null ? null : readerLag === 0 ? 0 : Math.max(0, (Date.now() - Date.parse(checkpoint!.committedAt)) / 1000),
      schemaChanges
    },
    consumer: {
      shards,
      consistentThroughLsn: through,
      consistentThroughAt: throughAt,
      consistentThroughSource: freshness.source,
      lagBytes: consumerLag,
      // Nothing pending means no lag, however old the last commit is.
      lagSeconds: lagSeconds(throughAt, consumerLag)
    },
    lake,
    lakeActivity,
    paused,
    // The rate of a running table as of now (the reader writes it after each chunk).
    repair: repair && { ...repair, progress: repair.progress.map((p) => (p.state === "running" ? withRate(p, Date.now()) : p)) },
    snapshot: snapshotState && !snapshotState.complete ? snapshotState : null,
    unavailable: [
      ...unavailable,
      ...(lake?.error ? [{ dependency: "S3" as const, reason: lake.error, unknown: "lake watermark" }] : []),
      ...(lakeActivity?.error && !lake?.error ? [{ dependency: "S3" as const, reason: lakeActivity.error, unknown: "dead letters, recent lake objects" }] : [])
    ]
  }
})

/** The lake's dead letters and newest objects, or why they could not be read. */
const readLakeActivity = (reader: LakeActivityReader): Effect.Effect<NonNullable<PipelineStatus["lakeActivity"]>> =>
  reader.read().pipe(
    Effect.catch((error) =>
      Effect.succeed({ deadLetters: { count: 0, lookbackDays: 0, newest: [] }, rawLastHour: { objects: 0, bytes: 0 }, newestRawObjects: [], error: error.message })
    )
  )

const lagSeconds = (at: string | null, bytes: number | null) => (at === null ? null : bytes === 0 ? 0 : Math.max(0, (Date.now() - Date.parse(at)) / 1000))

/** The lake watermark and its lag behind the source, or why it could not be read. */
const lakeStatus = (watermarks: LakeWatermarkReader, walLsn: string): Effect.Effect<LakeStatus> =>
  watermarks.read().pipe(
    Effect.map(({ watermark }): LakeStatus => {
      const lag = bytesBetween(walLsn, watermark?.lsn ?? null)
      return {
        watermarkLsn: watermark?.lsn ?? null,
        watermarkAt: watermark?.committedAt ?? null,
        lagBytes: lag,
        lagSeconds: lagSeconds(watermark?.committedAt ?? null, lag),
        shards: (watermark?.shards ?? []).map((s) => ({ shardId: s.shardId, heartbeatLsn: s.lsn, emittedAt: s.emittedAt, counted: s.counted }))
      }
    }),
    Effect.catch((error) => Effect.succeed<LakeStatus>({ watermarkLsn: null, watermarkAt: null, lagBytes: null, lagSeconds: null, shards: [], error: error.message }))
  )

/**
 * Resolves once everything committed in the source before the call is in the warehouse
 * (consistent_through ≥ the source's WAL position at the call); rejects on timeout.
 */
export const waitCaughtUp = async (
  inputs: Pick<StatusInputs, "source" | "warehouse" | "schema" | "pipelineSchema">,
  options: { timeoutMs: number; pollMs?: number; onWait?: (target: string, through: string | null) => void }
): Promise<{ target: string; through: string; waitedMs: number }> => {
  const started = Date.now()
  const target = await currentWalLsn(inputs.source)
  for (;;) {
    const { consistentThroughLsn } = await readFreshness(inputs.warehouse, { schema: inputs.schema, pipelineSchema: inputs.pipelineSchema }).catch(
      notMigratedYet({ consistentThroughLsn: null as string | null })
    )
    if (consistentThroughLsn && compareLsn(normalizeLsn(consistentThroughLsn), target) >= 0) {
      return { target, through: normalizeLsn(consistentThroughLsn), waitedMs: Date.now() - started }
    }
    if (Date.now() - started > options.timeoutMs) {
      throw new Error(`not caught up after ${Math.round(options.timeoutMs / 1000)} s: source at ${target}, warehouse consistent through ${consistentThroughLsn ?? "nothing yet"}`)
    }
    options.onWait?.(target, consistentThroughLsn)
    await new Promise((r) => setTimeout(r, options.pollMs ?? 250))
  }
}
