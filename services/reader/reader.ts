/**
 * The reader: logical replication (pgoutput) → change events → Kinesis, crash-safe.
 *
 * Durability order, always: events accepted by Kinesis → checkpoint in DynamoDB (conditional,
 * never backwards) → acknowledge to Postgres. The library's own acknowledgements are off
 * (`auto: false, timeoutSeconds: 0`): with a timer it would confirm the last *received* LSN and
 * lose unpublished changes on a crash. Status updates, including replies to keepalives that
 * ask for one, carry only the last durable position.
 */
import { Effect, Option } from "effect"
import { LogicalReplicationService, type Pgoutput } from "pg-logical-replication"
import pg from "pg"
import { SCHEMA_VERSION, type ChangeEvent, type Heartbeat } from "../../contracts/change-event.ts"
import { readerCheckpointKey, lsnPosition, snapshotStateKey, type ReaderCheckpoint, type SnapshotState } from "../../contracts/checkpoint.ts"
import { compareLsn, lsnToBigInt } from "../../contracts/lsn.ts"
import type { CheckpointStoreShape } from "../shared/checkpoint-store.ts"
import { metrics } from "../shared/metrics.ts"
import type { KinesisPublisherShape, ShardInfo } from "../shared/kinesis-publisher.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"
import { encodeChangeEvent, encodeHeartbeat, encodeSmallChangeEvent } from "./encode.ts"
import { RawPgoutputPlugin } from "./pgoutput.ts"
import type { PendingRecord } from "./put-records-plan.ts"
import { createSlotWithSnapshot, readTableSnapshot } from "./snapshot.ts"
import {
  currentWalLsn,
  dropSlot,
  emitHeartbeatMarker,
  ensurePublication,
  HEARTBEAT_PREFIX,
  slotInfo,
  SOURCE_SESSION_OPTIONS,
  systemIdentifier,
  tryLockSlot,
  validateSource
} from "./source-admin.ts"
import { TransactionAssembler, type CommitPoint } from "./transaction-assembler.ts"

export class ReaderStartError extends Error {
  override readonly name = "ReaderStartError"
}

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
  readonly flushIntervalMs?: number
  /** Backpressure: the replication stream pauses while this many records wait. */
  readonly maxBufferedRecords?: number
  readonly statusIntervalMs?: number
  /** Allow starting over with a new slot and snapshot when the checkpoint's slot is gone. */
  readonly resnapshot?: boolean
  readonly onProgress?: (progress: ReaderProgress) => void
}

export type ReaderProgress =
  | { readonly phase: "snapshot"; readonly table: string; readonly rows: number; readonly done: boolean }
  | { readonly phase: "streaming"; readonly durableLsn: string; readonly published: number; readonly lagBytes: number | null }
  | { readonly phase: "info"; readonly message: string }

export interface ReaderStats {
  published: number
  publishCalls: number
  publishRetries: number
  durableLsn: string | null
  durableCommittedAt: string | null
  lastHeartbeatAt: string | null
  byTableOp: Record<string, number>
  /** Most records ever waiting in memory (bounded by maxBufferedRecords: backpressure). */
  maxQueued: number
}

type QueueItem =
  | { readonly type: "record"; readonly record: PendingRecord; readonly event: ChangeEvent }
  | { readonly type: "commit"; readonly commit: CommitPoint }
  | { readonly type: "marker"; readonly lsn: string; readonly at: string }

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

/** The time written into a heartbeat marker; anything unreadable (someone else's message) counts as now. */
const markerTime = (content: string): string => {
  try {
    const at = (JSON.parse(content) as { at?: unknown }).at
    return typeof at === "string" && !Number.isNaN(Date.parse(at)) ? at : new Date().toISOString()
  } catch {
    return new Date().toISOString()
  }
}
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export class Reader {
  readonly stats: ReaderStats = {
    published: 0,
    publishCalls: 0,
    publishRetries: 0,
    durableLsn: null,
    durableCommittedAt: null,
    lastHeartbeatAt: null,
    byTableOp: {},
    maxQueued: 0
  }
  private admin: pg.Client | undefined
  private service: LogicalReplicationService | undefined
  private queue: Array<QueueItem> = []
  private stopping = false
  private failure: Error | undefined
  private systemId = ""
  private database = ""
  private shards: ReadonlyArray<ShardInfo> = []
  private shardsListedAt = 0
  private lastStreamHeartbeat = 0
  private durable: { lsn: string; committedAt: string } | undefined
  private timers: Array<NodeJS.Timeout> = []
  private flushLoop: Promise<void> | undefined
  private capacityWaiters: Array<() => void> = []
  private readonly heartbeatIntervalMs: number
  private readonly flushIntervalMs: number
  private readonly maxBuffered: number

  constructor(private readonly options: ReaderOptions) {
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 5_000
    this.flushIntervalMs = options.flushIntervalMs ?? 50
    this.maxBuffered = options.maxBufferedRecords ?? 20_000
  }

  private progress(p: ReaderProgress) {
    this.options.onProgress?.(p)
  }

  /** Validates, takes the slot lock, snapshots if the slot is new, then streams until stop(). */
  async start(): Promise<void> {
    try {
      await this.startStreaming()
    } catch (error) {
      // Release the slot lock and connections: a refused start must not block the next reader.
      await this.stop()
      throw error
    }
  }

  private async startStreaming(): Promise<void> {
    const { options } = this
    this.admin = new pg.Client({ connectionString: options.sourceUrl, application_name: "totes-reader", options: SOURCE_SESSION_OPTIONS })
    this.admin.on("error", (error) => (this.failure ??= error))
    await this.admin.connect()
    this.database = (await this.admin.query("SELECT current_database() AS db")).rows[0].db
    await validateSource(this.admin, options.tables, options.publication)
    if (!(await tryLockSlot(this.admin, options.slot))) {
      throw new ReaderStartError(`another reader holds slot '${options.slot}' (advisory lock taken): refusing to run two readers on one slot`)
    }
    await ensurePublication(this.admin, options.publication, options.tables)
    this.systemId = await systemIdentifier(this.admin)
    this.shards = await run(options.publisher.shards())
    this.shardsListedAt = Date.now()
    const startLsn = await this.prepareSlot()
    if (this.stopping) return
    await this.stream(startLsn)
  }

  /** Returns the LSN to stream from, after any initial snapshot. */
  private async prepareSlot(): Promise<string> {
    const { options } = this
    const admin = this.admin!
    // A checkpoint reset by --resnapshot is stored as null: no checkpoint.
    const stored = Option.getOrUndefined(await run(options.checkpoints.get<ReaderCheckpoint | null>(readerCheckpointKey(options.slot))))
    const checkpoint = stored?.data ? { position: stored.position, data: stored.data } : undefined
    const storedSnapshot = Option.getOrUndefined(await run(options.checkpoints.get<SnapshotState | null>(snapshotStateKey(options.slot))))
    const snapshot = storedSnapshot?.data ? { data: storedSnapshot.data } : undefined
    let slot = await slotInfo(admin, options.slot)
    if (slot?.activePid) throw new ReaderStartError(`slot '${options.slot}' is in use by backend pid ${slot.activePid}`)
    if (slot && slot.plugin !== "pgoutput") throw new ReaderStartError(`slot '${options.slot}' uses plugin ${slot.plugin}, not pgoutput`)

    // A silent gap between the checkpoint and what the slot will stream is refused, never papered over.
    const gap =
      checkpoint && checkpoint.data.systemId !== this.systemId
        ? `the checkpoint for slot '${options.slot}' belongs to another database server (system id ${checkpoint.data.systemId}, this one is ${this.systemId}); refusing to mix histories`
        : !slot && checkpoint
          ? `replication slot '${options.slot}' is missing but the checkpoint says changes up to ${checkpoint.data.lsn} were captured: the slot was dropped or the server replaced, and changes after that position may be lost`
          : slot?.confirmedFlushLsn && checkpoint && lsnToBigInt(slot.confirmedFlushLsn) > lsnToBigInt(checkpoint.data.lsn) + 1n
            ? // We acknowledge `lsn`, which the server records as lsn + 1; anything further was moved by someone else.
              `replication slot '${options.slot}' was moved past the reader's checkpoint (slot confirmed ${slot.confirmedFlushLsn}, checkpoint ${checkpoint.data.lsn}): changes in between were never published`
            : undefined
    if (gap && !options.resnapshot) {
      throw new ReaderStartError(
        `${gap}. Refusing to run. To start over, restart with --resnapshot (a new slot and initial snapshot) and rebuild the warehouse from that snapshot (a fresh warehouse, or totes replay --from the new snapshot's time): changes in the gap were never captured, so rows deleted in it would otherwise linger; totes verify shows what differs.`
      )
    }
    if (gap || (slot && !checkpoint && !snapshot)) {
      // --resnapshot, or a slot created by a reader that died before recording anything (nothing acknowledged).
      this.progress({ phase: "info", message: gap ? `--resnapshot: ${gap}; starting over with a new slot and initial snapshot` : `slot '${options.slot}' has no checkpoint: recreating it with a fresh snapshot` })
      // Reset the snapshot state first: a crash after dropping the slot must not look like a finished snapshot.
      await run(options.checkpoints.put(snapshotStateKey(options.slot), null))
      await run(options.checkpoints.put(readerCheckpointKey(options.slot), null))
      if (slot) await dropSlot(admin, options.slot)
      slot = undefined
    }
    if (!slot) return this.initialSnapshot()

    if (snapshot && !snapshot.data.complete) await this.resumeSnapshot(snapshot.data)
    const cp = Option.getOrUndefined(await run(options.checkpoints.get<ReaderCheckpoint | null>(readerCheckpointKey(options.slot))))?.data
    if (!cp) throw new ReaderStartError(`slot '${options.slot}' exists but no checkpoint was recorded after its snapshot`)
    this.durable = { lsn: cp.lsn, committedAt: cp.committedAt }
    this.stats.durableLsn = cp.lsn
    this.stats.durableCommittedAt = cp.committedAt
    return cp.lsn
  }

  private async initialSnapshot(): Promise<string> {
    const { options } = this
    const created = await createSlotWithSnapshot(options.sourceUrl, options.slot)
    const state: SnapshotState = { consistentPoint: created.consistentPoint, createdAt: created.createdAt, tablesDone: [], complete: false }
    await run(options.checkpoints.put(snapshotStateKey(options.slot), state))
    try {
      await this.readSnapshotTables(state, created.snapshotName)
    } finally {
      await created.connection.end().catch(() => {})
    }
    return created.consistentPoint
  }

  private async resumeSnapshot(state: SnapshotState) {
    this.progress({ phase: "info", message: `resuming the initial snapshot: ${state.tablesDone.length} of ${this.options.tables.length} tables were done` })
    await this.readSnapshotTables(state, undefined)
  }

  private async readSnapshotTables(initial: SnapshotState, snapshotName: string | undefined) {
    const { options } = this
    let state = initial
    const client = new pg.Client({ connectionString: options.sourceUrl, application_name: "totes-reader-snapshot", options: SOURCE_SESSION_OPTIONS })
    await client.connect()
    try {
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
      if (snapshotName) await client.query(`SET TRANSACTION SNAPSHOT '${snapshotName.replace(/'/g, "")}'`)
      for (const table of options.tables) {
        if (state.tablesDone.includes(table)) continue
        let rows = 0
        await readTableSnapshot(client, {
          database: this.database,
          consistentPoint: state.consistentPoint,
          committedAt: state.createdAt ?? new Date().toISOString(),
          table,
          onBatch: async (events) => {
            // Stopped mid-snapshot: finished tables are recorded; the next start resumes the rest.
            if (this.stopping) throw new ReaderStartError("stopped during the initial snapshot")
            const records = await Promise.all(events.map((e) => run(encodeChangeEvent(e, options.lake))))
            await this.publishNow(records, events)
            rows += events.length
            this.progress({ phase: "snapshot", table, rows, done: false })
          }
        })
        metrics.emit("reader", { SnapshotRows: rows }, { Table: table })
        state = { ...state, tablesDone: [...state.tablesDone, table] }
        await run(options.checkpoints.put(snapshotStateKey(options.slot), state))
        this.progress({ phase: "snapshot", table, rows, done: true })
      }
      await client.query("COMMIT")
    } finally {
      await client.end().catch(() => {})
    }
    const checkpoint: ReaderCheckpoint = {
      lsn: state.consistentPoint,
      // Not "now": only what committed before the slot existed is covered by the consistent point.
      committedAt: state.createdAt ?? new Date().toISOString(),
      systemId: this.systemId,
      slot: options.slot
    }
    await run(options.checkpoints.advance(readerCheckpointKey(options.slot), lsnPosition(checkpoint.lsn), checkpoint))
    await run(options.checkpoints.put(snapshotStateKey(options.slot), { ...state, complete: true }))
    this.durable = { lsn: checkpoint.lsn, committedAt: checkpoint.committedAt }
  }

  private async publishNow(records: ReadonlyArray<PendingRecord>, events: ReadonlyArray<ChangeEvent>) {
    if (records.length === 0) return
    const started = performance.now()
    const result = await run(this.options.publisher.publish(records))
    this.stats.publishCalls += result.calls
    this.stats.publishRetries += result.retries
    this.stats.published += records.length
    const batch: Record<string, number> = {}
    for (const e of events) {
      const k = `${e.source.table}:${e.op}`
      this.stats.byTableOp[k] = (this.stats.byTableOp[k] ?? 0) + 1
      batch[k] = (batch[k] ?? 0) + 1
    }
    metrics.emit("reader", { PublishLatency: performance.now() - started, PublishBatchSize: records.length / result.calls, PublishRetries: result.retries })
    for (const [k, n] of Object.entries(batch)) {
      const [Table, Operation] = k.split(":") as [string, string]
      metrics.emit("reader", { EventsPublished: n }, { Table, Operation })
    }
  }

  /** Lag and retained WAL, at least once a minute (the reader-down alarm watches for them). */
  private async emitLag() {
    if (!this.admin || !this.durable) return
    const current = await currentWalLsn(this.admin)
    const slot = await slotInfo(this.admin, this.options.slot)
    const lagBytes = Number(lsnToBigInt(current) - lsnToBigInt(this.durable.lsn))
    const lagSeconds = lagBytes > 0 ? Math.max(0, (Date.now() - Date.parse(this.durable.committedAt)) / 1000) : 0
    metrics.emit("reader", {
      ReplicationLagBytes: Math.max(0, lagBytes),
      ReplicationLagSeconds: lagSeconds,
      ...(slot?.restartLsn ? { RetainedWalBytes: Number(lsnToBigInt(current) - lsnToBigInt(slot.restartLsn)) } : {}),
      ...(this.stats.lastHeartbeatAt ? { HeartbeatAgeSeconds: (Date.now() - Date.parse(this.stats.lastHeartbeatAt)) / 1000 } : {})
    })
  }

  private async stream(startLsn: string) {
    const { options } = this
    const assembler = new TransactionAssembler(this.database)
    const service = new LogicalReplicationService(
      { connectionString: options.sourceUrl, application_name: "totes-reader-stream", options: SOURCE_SESSION_OPTIONS },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } }
    )
    this.service = service
    service.on("data", async (lsn: string, message: Pgoutput.Message) => {
      if (this.stopping) return // not acknowledged, so redelivered after restart
      const out = assembler.next(message, lsn)
      if (out._tag === "Events") {
        for (const event of out.events) {
          // The common case stays synchronous; only an oversize event waits for its claim check.
          const record = encodeSmallChangeEvent(event) ?? (await run(encodeChangeEvent(event, options.lake)))
          this.queue.push({ type: "record", record, event })
        }
      } else if (out._tag === "Commit") {
        this.queue.push({ type: "commit", commit: out.commit })
      } else if (out._tag === "Message" && out.message.prefix === HEARTBEAT_PREFIX) {
        this.queue.push({ type: "marker", lsn: out.message.lsn, at: markerTime(out.message.content) })
      }
      this.stats.maxQueued = Math.max(this.stats.maxQueued, this.queue.length)
      if (this.queue.length >= this.maxBuffered) await new Promise<void>((resolve) => this.capacityWaiters.push(resolve))
    })
    service.on("heartbeat", async (_lsn: string, _timestamp: number, shouldRespond: boolean) => {
      if (shouldRespond) await this.sendStatus()
    })
    service.on("error", (error: Error) => {
      this.failure ??= error
    })
    this.timers.push(setInterval(() => void this.sendStatus(), options.statusIntervalMs ?? 10_000))
    // Lag at least every 15 s (the reader-down alarm treats missing samples as breaching).
    void this.emitLag().catch(() => {})
    this.timers.push(setInterval(() => void this.emitLag().catch(() => {}), 15_000))
    this.timers.push(
      setInterval(() => {
        if (!this.stopping && this.admin) emitHeartbeatMarker(this.admin).catch((error) => (this.failure ??= error))
      }, this.heartbeatIntervalMs)
    )
    this.flushLoop = this.runFlushLoop()
    this.progress({ phase: "info", message: `streaming slot '${options.slot}' from ${startLsn}` })
    // subscribe() resolves only when replication ends (stop() or an error).
    const subscribed = service.subscribe(new RawPgoutputPlugin({ protoVersion: 1, publicationNames: [options.publication], messages: true }), options.slot, startLsn)
    await Promise.race([subscribed, this.flushLoop])
    if (this.failure) throw this.failure
  }

  private async runFlushLoop() {
    while (!this.stopping || this.queue.length > 0) {
      if (this.failure) return
      if (this.queue.length === 0) {
        await this.maybeStreamHeartbeat()
        await sleep(this.flushIntervalMs)
        continue
      }
      try {
        await this.flushOnce()
      } catch (error) {
        this.failure ??= error as Error
        await this.service?.stop().catch(() => {})
        return
      }
    }
  }

  /** Publishes what is queued, then checkpoints and acknowledges the last complete commit in it. */
  private async flushOnce() {
    const items = this.queue.splice(0, Math.min(this.queue.length, 5_000))
    for (const waiter of this.capacityWaiters.splice(0)) waiter()
    const records = items.flatMap((i) => (i.type === "record" ? [i.record] : []))
    const events = items.flatMap((i) => (i.type === "record" ? [i.event] : []))
    await this.publishNow(records, events)
    let position: { lsn: string; committedAt: string } | undefined
    for (const item of items) {
      if (item.type === "commit") position = { lsn: item.commit.commitEndLsn, committedAt: item.commit.committedAt }
      else if (item.type === "marker") position = { lsn: item.lsn, committedAt: item.at }
    }
    if (position && (!this.durable || compareLsn(position.lsn, this.durable.lsn) > 0)) {
      const checkpoint: ReaderCheckpoint = { lsn: position.lsn, committedAt: position.committedAt, systemId: this.systemId, slot: this.options.slot }
      const advanced = await run(this.options.checkpoints.advance(readerCheckpointKey(this.options.slot), lsnPosition(position.lsn), checkpoint))
      if (!advanced) throw new Error(`checkpoint for slot '${this.options.slot}' is ahead of this reader: another reader is running`)
      this.durable = position
      this.stats.durableLsn = position.lsn
      this.stats.durableCommittedAt = position.committedAt
      await this.sendStatus()
      const lag = this.admin ? await currentWalLsn(this.admin).then((l) => Number(lsnToBigInt(l) - lsnToBigInt(position.lsn))).catch(() => null) : null
      this.progress({ phase: "streaming", durableLsn: position.lsn, published: this.stats.published, lagBytes: lag })
    }
    await this.maybeStreamHeartbeat()
  }

  /** Writes the durable position to every shard, so idle shards still advance consistent_through. */
  private async maybeStreamHeartbeat() {
    if (!this.durable || Date.now() - this.lastStreamHeartbeat < this.heartbeatIntervalMs) return
    this.lastStreamHeartbeat = Date.now()
    // The stream may be resharded (on-demand mode splits shards): heartbeats must reach every open shard.
    if (Date.now() - this.shardsListedAt > 60_000) {
      this.shards = await run(this.options.publisher.shards())
      this.shardsListedAt = Date.now()
    }
    const emittedAt = new Date().toISOString()
    // One record per shard, each with its own id (ids are unique across the stream and the lake).
    const durable = this.durable
    const records = this.shards.map((shard) => {
      const heartbeat: Heartbeat = {
        kind: "heartbeat",
        schemaVersion: SCHEMA_VERSION,
        id: `heartbeat:${shard.shardId}:${durable.lsn}:${emittedAt}`,
        commitLsn: durable.lsn,
        committedAt: durable.committedAt,
        emittedAt
      }
      return encodeHeartbeat(heartbeat, shard.startingHashKey)
    })
    await run(this.options.publisher.publish(records))
    this.stats.lastHeartbeatAt = emittedAt
  }

  private async sendStatus() {
    if (this.durable && this.service) await this.service.acknowledge(this.durable.lsn).catch(() => false)
  }

  /** Stops taking changes, publishes and acknowledges what is in hand, then disconnects. */
  async stop(): Promise<void> {
    if (this.stopping) return
    this.stopping = true
    // Drain complete transactions only: the tail of one still arriving is not acknowledged
    // anyway, and Postgres sends it again, whole, to the next reader.
    let lastComplete = -1
    this.queue.forEach((item, i) => {
      if (item.type !== "record") lastComplete = i
    })
    this.queue.splice(lastComplete + 1)
    for (const timer of this.timers) clearInterval(timer)
    for (const waiter of this.capacityWaiters.splice(0)) waiter()
    await this.flushLoop?.catch(() => {})
    await this.service?.stop().catch(() => {})
    await this.admin?.end().catch(() => {})
  }

  /** The first error that ended streaming, if any. */
  get error(): Error | undefined {
    return this.failure
  }
}

/** Replication lag in bytes between the source's WAL and an LSN. */
export const lagBytes = (current: string, durable: string) => Number(lsnToBigInt(current) - lsnToBigInt(durable))

