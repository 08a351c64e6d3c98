/**
 * The reader: logical replication (pgoutput) → change events → aggregated Kinesis records,
 * crash-safe. A run is a series of sessions (session.ts): when the source connection drops
 * (restart, failover, network) the reader reconnects with capped backoff and resumes from its
 * checkpoint; it ends only on a stop or on what a reconnection cannot fix (a refusal: slot gone or
 * moved, source not ready, another reader), with the reason.
 *
 *   const reader = new Reader(options)
 *   const running = reader.start()   // resolves after stop(), rejects with the reason it ended
 *   await reader.stop()              // publishes and checkpoints whole transactions, then closes
 */
import { Cause, Deferred, Effect, Exit, Fiber, Option, Schedule } from "effect"
import type { CheckpointStoreShape } from "../shared/checkpoint-store.ts"
import type { KinesisPublisherShape } from "../shared/kinesis/publisher.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"
import { emptyStats, type ReaderProgress, type ReaderSettings, type ReaderStats } from "./context.ts"
import { ReaderRefused, SourceUnavailable, isSourceConnectionError, underlying } from "./errors.ts"
import { OutageTracker } from "./outage.ts"
import { runSession } from "./session.ts"
import { DEFAULT_CHUNK_ROWS } from "./snapshot-copy.ts"

export type { ReaderProgress, ReaderStats } from "./context.ts"
export { ReaderRefused, SourceUnavailable } from "./errors.ts"

export interface ReaderOptions {
  readonly sourceUrl: string
  readonly slot: string
  readonly publication: string
  readonly tables: ReadonlyArray<string>
  readonly publisher: KinesisPublisherShape
  readonly checkpoints: CheckpointStoreShape
  readonly lake?: LakeStoreShape
  /** How often the reader writes a WAL marker and a heartbeat to every shard. */
  readonly heartbeatIntervalMs?: number
  /** Backpressure: the replication stream pauses while this many records wait for Kinesis… */
  readonly maxBufferedRecords?: number
  /** …or this many bytes. */
  readonly maxBufferedBytes?: number
  /** The stream's maximum record size (1 MiB unless raised with UpdateMaxRecordSize, up to 10 MiB). */
  readonly maxRecordBytes?: number
  /** Events per Kinesis record at most (default: as many as fit; 1 turns aggregation off, for comparison). */
  readonly maxEventsPerRecord?: number
  readonly statusIntervalMs?: number
  readonly shardRefreshMs?: number
  /** How often lag and retained WAL are measured (the reader-down alarm needs a sample a minute). */
  readonly lagIntervalMs?: number
  /** Allow starting over with a new slot and snapshot when the checkpoint's slot is gone. */
  readonly resnapshot?: boolean
  /**
   * Create the slot with failover (PostgreSQL 17+) so that a promoted standby keeps it; the reader
   * then reports what the standbys lack. Ignored with a warning on older servers.
   */
  readonly failoverSlot?: boolean
  /** How long a standby may take to synchronise a failover slot before the reader reports that it does not (default 60 s). */
  readonly slotSyncGraceMs?: number
  /** How often the reader looks for a repair request written by `totes resnapshot` (default 1 s). */
  readonly repairPollMs?: number
  /** Rows per initial-snapshot chunk written to the lake (default 100,000; snapshot-copy.ts). */
  readonly snapshotChunkRows?: number
  /** How long a stop may spend publishing what is in hand (then it stops anyway; nothing is confirmed that was not published). */
  readonly drainTimeoutMs?: number
  readonly onProgress?: (progress: ReaderProgress) => void
}

export const MIB = 1024 * 1024


/** Capped exponential backoff between reconnection attempts. */
const reconnectBackoff = Schedule.min([Schedule.exponential("250 millis", 2), Schedule.spaced("10 seconds")]).pipe(Schedule.jittered)

export class Reader {
  readonly stats: ReaderStats = emptyStats()
  private readonly settings: ReaderSettings
  private readonly stopSignal = Deferred.makeUnsafe<void>()
  private fiber: Fiber.Fiber<void, unknown> | undefined
  private failure: Error | undefined

  constructor(private readonly options: ReaderOptions) {
    this.settings = {
      sourceUrl: options.sourceUrl,
      slot: options.slot,
      publication: options.publication,
      tables: options.tables,
      publisher: options.publisher,
      checkpoints: options.checkpoints,
      lake: options.lake,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1_000,
      statusIntervalMs: options.statusIntervalMs ?? 10_000,
      shardRefreshMs: options.shardRefreshMs ?? 60_000,
      lagIntervalMs: options.lagIntervalMs ?? 15_000,
      // Enough to keep every lane's next aggregate full while the previous one is in flight, and
      // small enough that a million-row transaction keeps the process well under 256 MiB.
      maxBufferedRecords: options.maxBufferedRecords ?? 50_000,
      maxBufferedBytes: options.maxBufferedBytes ?? 16 * MIB,
      maxRecordBytes: options.maxRecordBytes ?? MIB,
      maxEventsPerRecord: options.maxEventsPerRecord ?? Number.POSITIVE_INFINITY,
      resnapshot: options.resnapshot ?? false,
      failoverSlot: options.failoverSlot ?? false,
      slotSyncGraceMs: options.slotSyncGraceMs ?? 60_000,
      repairPollMs: options.repairPollMs ?? 1_000,
      snapshotChunkRows: options.snapshotChunkRows ?? DEFAULT_CHUNK_ROWS
    }
  }

  private progress = (p: ReaderProgress) => this.options.onProgress?.(p)

  /** Runs until stop() (resolves) or until something a reconnection cannot fix (rejects). */
  start(): Promise<void> {
    if (this.fiber) throw new Error("reader already started")
    const outage = new OutageTracker("source database", (r) => this.progress({ phase: "outage", ...r }))
    const control = {
      settings: this.settings,
      stats: this.stats,
      progress: this.progress,
      stop: this.stopSignal,
      drainTimeoutMs: this.options.drainTimeoutMs ?? 20_000,
      onStreaming: () => outage.recovered()
    }
    let streamed = false
    let inSession = false
    const session = Effect.suspend(() => {
      const before = this.stats.durableLsn
      inSession = true
      return runSession(control).pipe(
        Effect.ensuring(Effect.sync(() => (inSession = false))),
        Effect.tapError((error) =>
          Effect.sync(() => {
            // A session that got as far as streaming proves the configuration: later losses are outages.
            streamed ||= this.stats.durableLsn !== null || before !== null
            if (error instanceof SourceUnavailable) {
              this.stats.reconnects++
              outage.failed(error.message)
            }
          })
        )
      )
    })
    const run = session.pipe(
      Effect.retry({
        schedule: reconnectBackoff,
        while: (error) => streamed && error instanceof SourceUnavailable && !Deferred.isDoneUnsafe(this.stopSignal)
      }),
      Effect.mapError((error) => {
        const cause = underlying(error)
        if (cause instanceof ReaderRefused || cause instanceof SourceUnavailable) return Object.assign(new Error(cause.message, { cause }), { name: cause._tag })
        if (cause instanceof Error) return cause
        const tagged = cause as { _tag?: string; message?: string }
        return new Error(tagged?.message ?? String(cause), { cause })
      })
    )
    // A stop while waiting to reconnect ends the wait (a running session drains by itself).
    const stoppedBetweenSessions = Deferred.await(this.stopSignal).pipe(
      Effect.andThen(Effect.sync(() => inSession).pipe(Effect.repeat({ until: (busy) => !busy, schedule: Schedule.spaced("50 millis") })))
    )
    this.fiber = Effect.runFork(Effect.raceFirst(run, Effect.asVoid(stoppedBetweenSessions)))
    return Effect.runPromise(Fiber.await(this.fiber)).then((exit) => {
      if (Exit.isSuccess(exit)) return
      const error = Option.getOrElse(Cause.findErrorOption(exit.cause), () => Cause.squash(exit.cause))
      this.failure ??= error instanceof Error ? error : new Error(String(error))
      throw this.failure
    })
  }

  /** Stops taking changes, publishes and checkpoints what is in hand (whole transactions), then disconnects. */
  async stop(): Promise<void> {
    Deferred.doneUnsafe(this.stopSignal, Effect.void)
    if (!this.fiber) return
    await Effect.runPromise(Fiber.await(this.fiber))
  }

  /** The error that ended the reader, if any. */
  get error(): Error | undefined {
    return this.failure
  }
}

export { isSourceConnectionError }
