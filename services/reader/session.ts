/**
 * One reader session, from connecting to the source to a drained stop or a lost connection:
 *
 *   connection set-up (identify, validate, lock, publication)  → connection-setup.ts
 *   where to start (slot guard), initial snapshot if needed     → slot-guard.ts, initial-snapshot.ts
 *   replication messages → intake (assembler, encoder) → outbox → lanes (PutRecords per shard)
 *     → checkpointer (DynamoDB) → confirmation to Postgres
 *   beside it: status updates, WAL markers, stream heartbeats, lag metrics, shard refresh, metrics,
 *   online table repairs (table-repair.ts)
 *
 * Every fiber is supervised: the first failure ends the session. A lost source connection ends
 * it with SourceUnavailable after draining whole transactions; the reader then reconnects.
 */
import { Cause, Deferred, Effect, Exit, Option } from "effect"
import { readerCheckpointKey, schemaChangesKey, snapshotStateKey, type ReaderCheckpoint, type SchemaRecord, type SnapshotState } from "../../contracts/checkpoint.ts"
import { ShardMap } from "../shared/kinesis/shard-map.ts"
import { metrics } from "../shared/metrics.ts"
import { kinesisBackoff } from "../shared/kinesis/publisher.ts"
import { caughtUp, checkpointer } from "./checkpointer.ts"
import { connectAdmin, setUpSource } from "./connection-setup.ts"
import type { ReaderProgress, ReaderSettings, ReaderStats, SessionContext } from "./context.ts"
import { ReaderRefused, SourceUnavailable, isSourceConnectionError } from "./errors.ts"
import { initialSnapshot, resumeSnapshot, SnapshotInterrupted, startOver } from "./initial-snapshot.ts"
import { Intake } from "./intake.ts"
import { Outbox } from "./outbox.ts"
import { openReplicationStream } from "./replication-stream.ts"
import { describeChange } from "./schema-watch.ts"
import { laneSender, lagMetrics, metricsFlush, schemaRecorder, shardRefresh, statusUpdates, streamHeartbeats, walMarkers } from "./side-tasks.ts"
import { OutageTracker } from "./outage.ts"
import { Signal } from "./signal.ts"
import { decideStart } from "./slot-guard.ts"
import { tableRepairs } from "./table-repair.ts"
import { serverVersionNum, setSlotFailover, slotInfo, tableSchemas } from "./source-admin.ts"
import { FAILOVER_MIN_VERSION } from "./slot-health.ts"

export interface SessionControl {
  readonly settings: ReaderSettings
  readonly stats: ReaderStats
  readonly progress: (p: ReaderProgress) => void
  /** Completed when a graceful stop is asked for. */
  readonly stop: Deferred.Deferred<void>
  /** How long a stop (or a lost connection) may spend publishing what is in hand. */
  readonly drainTimeoutMs: number
  /** The session is streaming (a reconnection has succeeded). */
  readonly onStreaming: () => void
}

const orUndefined = <A>(option: Option.Option<{ readonly data: A | null }>): A | undefined => Option.getOrUndefined(option)?.data ?? undefined

export const runSession = (control: SessionControl) =>
  Effect.gen(function* () {
    const { settings, stats } = control
    const failed = yield* Deferred.make<never, unknown>()
    /** Runs a task beside the session; its failure (not its interruption) ends the session. */
    const supervise = <A, E, R>(task: Effect.Effect<A, E, R>) =>
      Effect.forkScoped(
        task.pipe(
          Effect.onExit((exit) => (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause) ? Deferred.failCause(failed, exit.cause) : Effect.void))
        )
      )
    const stopRequested = () => Deferred.isDoneUnsafe(control.stop)

    const admin = yield* connectAdmin(settings.sourceUrl, (error) => Deferred.doneUnsafe(failed, Effect.fail(new SourceUnavailable({ message: error.message }))))
    const source = yield* setUpSource(admin, settings)
    const shards = yield* settings.publisher.shards().pipe(Effect.retry({ schedule: kinesisBackoff, while: (e) => e.retryable }))
    const routing = new ShardMap(shards)
    // Relation messages are compared with the schemas last seen: recorded by an earlier session, or the catalogue now.
    const schemaRecord = orUndefined(yield* settings.checkpoints.get<SchemaRecord | null>(schemaChangesKey(settings.slot)))
    const knownSchemas = schemaRecord?.tables ?? (yield* Effect.tryPromise(() => tableSchemas(admin, settings.tables)))
    const outbox = new Outbox(routing.shards, { maxRecordBytes: settings.maxRecordBytes, maxRecordsPerAggregate: settings.maxEventsPerRecord })
    const laneSignals = new Map<string, Signal>()
    const laneSignal = (laneId: string) => {
      let signal = laneSignals.get(laneId)
      if (!signal) laneSignals.set(laneId, (signal = new Signal()))
      return signal
    }
    const ctx: SessionContext = {
      settings,
      stats,
      progress: control.progress,
      systemId: source.systemId,
      database: source.database,
      admin,
      outbox,
      intake: new Intake({
        database: source.database,
        primaryKeys: source.primaryKeys,
        outbox,
        routing: () => ctx.routing,
        lake: settings.lake,
        maxBufferedRecords: settings.maxBufferedRecords,
        maxBufferedBytes: settings.maxBufferedBytes,
        wake: (laneId) => laneSignal(laneId).notify(),
        onFailure: (error) => Deferred.doneUnsafe(failed, Effect.fail(error)),
        onNewMaximum: (records) => (stats.maxQueued = Math.max(stats.maxQueued, records)),
        knownSchemas,
        onSchemaChange: (change, lsn, schemas) => {
          ctx.schemas = schemas
          const message = `source schema changed: ${describeChange(change)}`
          control.progress({ phase: "schema", table: change.table, lsn, breaksWarehouse: change.breaksWarehouse, message })
          metrics.emit("reader", { SchemaChanges: 1 }, { Table: change.table })
          ctx.schemaChanges.push({ table: change.table, lsn, at: new Date().toISOString(), summary: describeChange(change), breaksWarehouse: change.breaksWarehouse })
        }
      }),
      routing,
      stream: undefined,
      durable: undefined,
      laneSignal,
      kinesisOutage: new OutageTracker("Kinesis", (r) => control.progress({ phase: "outage", ...r })),
      accepted: new Signal(),
      checkpointed: new Signal(),
      shardsChanged: new Signal(),
      pendingMetrics: { publishLatency: [], eventsPerRecord: [], retries: 0, byTableOp: new Map() },
      schemaChanges: [],
      schemas: schemaRecord ? undefined : knownSchemas
    }
    const lanes = new Set<string>()
    const startLane = (laneId: string) =>
      Effect.suspend(() => {
        if (lanes.has(laneId)) return Effect.void
        lanes.add(laneId)
        return supervise(laneSender(ctx, laneId).pipe(Effect.ensuring(Effect.sync(() => lanes.delete(laneId))))).pipe(Effect.asVoid)
      })
    for (const shard of routing.shards) yield* startLane(shard.shardId)
    yield* supervise(metricsFlush(ctx))

    // Where to start. Anything that fails from here on (a lane, the admin connection) fails the session.
    const work = Effect.gen(function* () {
      const checkpoint = orUndefined(yield* settings.checkpoints.get<ReaderCheckpoint | null>(readerCheckpointKey(settings.slot)))
      const snapshot = orUndefined(yield* settings.checkpoints.get<SnapshotState | null>(snapshotStateKey(settings.slot)))
      const slot = yield* Effect.tryPromise(() => slotInfo(admin, settings.slot))
      const decision = decideStart({ slotName: settings.slot, systemId: source.systemId, slot, checkpoint, snapshot, resnapshot: settings.resnapshot })
      let start: { lsn: string; committedAt: string }
      switch (decision._tag) {
        case "Refuse":
          return yield* new ReaderRefused({ message: decision.reason })
        case "Snapshot":
          if (decision.reason) control.progress({ phase: "info", message: decision.reason })
          yield* startOver(ctx, decision.dropExisting)
          start = yield* initialSnapshot(ctx, stopRequested)
          break
        case "ResumeSnapshot":
          start = yield* resumeSnapshot(ctx, decision.state, stopRequested)
          break
        case "Stream":
          // A production stage asks for a failover slot: switch an existing one (nobody holds it now).
          if (settings.failoverSlot && slot?.failover === false && (yield* Effect.tryPromise(() => serverVersionNum(admin))) >= FAILOVER_MIN_VERSION) {
            yield* Effect.tryPromise(() => setSlotFailover(settings.sourceUrl, settings.slot, true))
            control.progress({ phase: "info", message: `slot '${settings.slot}' now survives a failover to a synchronised standby (FAILOVER true)` })
          }
          start = { lsn: decision.from, committedAt: decision.committedAt }
          ctx.durable = start
          stats.durableLsn = start.lsn
          stats.durableCommittedAt = start.committedAt
          break
      }
      if (stopRequested()) return

      const stream = openReplicationStream({
        sourceUrl: settings.sourceUrl,
        slot: settings.slot,
        publication: settings.publication,
        startLsn: start.lsn,
        onMessage: ctx.intake.push,
        onReplyRequested: () => ctx.durable && ctx.stream?.confirm(ctx.durable.lsn)
      })
      ctx.stream = stream
      ctx.intake.attach(stream)
      yield* Effect.addFinalizer(() => Effect.promise(() => stream.close()))
      yield* supervise(checkpointer(ctx))
      yield* supervise(statusUpdates(ctx))
      yield* supervise(walMarkers(ctx))
      yield* supervise(streamHeartbeats(ctx))
      yield* supervise(lagMetrics(ctx))
      yield* supervise(shardRefresh(ctx, startLane))
      yield* supervise(schemaRecorder(ctx))
      yield* supervise(tableRepairs(ctx))
      control.onStreaming()
      control.progress({ phase: "info", message: `streaming slot '${settings.slot}' from ${start.lsn}` })

      const lost = yield* Effect.raceFirst(
        Deferred.await(control.stop).pipe(Effect.as(undefined)),
        Effect.tryPromise({ try: () => stream.ended, catch: (error) => error as Error }).pipe(
          Effect.as(undefined),
          Effect.catch((error) => Effect.succeed(error))
        )
      )
      // Publish and checkpoint whole transactions only: the tail of one still arriving is not
      // confirmed, and Postgres sends it again, whole, to the next session.
      ctx.intake.stop()
      yield* ctx.accepted.until(() => caughtUp(ctx)).pipe(
        Effect.raceFirst(ctx.checkpointed.until(() => caughtUp(ctx))),
        Effect.timeoutOption(`${control.drainTimeoutMs} millis`)
      )
      if (ctx.durable) stream.confirm(ctx.durable.lsn)
      if (lost) return yield* new SourceUnavailable({ message: lost.message })
    })

    yield* Effect.raceFirst(
      work.pipe(
        Effect.catchIf(
          (error): error is SnapshotInterrupted => error instanceof SnapshotInterrupted,
          () => Effect.void
        )
      ),
      Deferred.await(failed)
    )
  }).pipe(
    Effect.scoped,
    Effect.mapError((error) => (isSourceConnectionError(error) && !(error instanceof ReaderRefused) ? new SourceUnavailable({ message: (error as Error).message }) : error))
  )
