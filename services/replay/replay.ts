/**
 * Replay: the lake → a warehouse, through the consumer's own rules (without a shard).
 *
 *   const report = yield* replay({ lake, targetUrl, checkpoints, name: "rebuild", to: parseBound("2024-02-23T12:00Z") })
 *
 * - First reads the lake watermark (watermark-read.ts): the lake holds every change committed
 *   before it. Without `to` the replay rebuilds up to it and leaves later changes out, so the
 *   result is the warehouse as of one position even while the pipeline keeps writing; a `to`
 *   beyond it waits up to `waitMs` for the lake to get there, or is refused naming the watermark.
 *   A lake without any heartbeat has no watermark: everything is applied, completeness unknown.
 * - Reads the lake objects that can hold events of the window, a few ahead of the warehouse: raw
 *   objects in key order by default; with `source: "parquet"`, the compacted files plus every raw
 *   object no compaction has covered yet, in the order parquet-order.ts plans (each row's changes
 *   in the order raw replay gives them).
 * - Keeps the change events inside the window (`to` = time travel: committed at or before it) and
 *   of the chosen tables, and sorts each batch by source position. Duplicates do not matter (the
 *   position guard and fact event ids); order across batches matters only where a change lacks
 *   columns (a key-only delete, an unsent TOAST value) and is completed from the row's previous
 *   image, which is why both sources keep each row's changes in order.
 * - Two ways to write (`mode` in the progress and the report):
 *   - bulk, into an empty target (bulk/loader.ts): each batch is decided in memory exactly as
 *     applyRecords would apply it, fact rows stream into their tables with COPY, mirror rows are
 *     written per segment (`segmentSize` events, one commit each), dimensions and truncation rows
 *     are derived set-wise from the final state at the end;
 *   - row by row, into a target that holds data (`catchUp`), or when asked (`rowByRow`): each batch
 *     through applyRecords in one transaction, every row position-guarded.
 *   A resumed run keeps the way it started with.
 * - A complete rebuild (no `tables`, no `from` beyond what the target already held) records how far
 *   the target is consistent (freshness.ts), which its pipeline_freshness then shows.
 * - Checkpoints `replay#<name>` in DynamoDB after each committed batch or segment (see
 *   progress-state.ts) and resumes from it after a crash; the first checkpoint is written before
 *   anything is applied, so a crashed run's half-filled target is recognised as its own.
 * - Migrates an empty target; refuses one holding data unless `catchUp` (see target.ts).
 * - `dryRun` reads and projects every batch but touches neither the target nor the checkpoint.
 */
import { metrics } from "../shared/metrics.ts"
import { Effect, Fiber, Option, Result, Schema, type Scope } from "effect"
import type pg from "pg"
import { replayCheckpointKey } from "../../contracts/checkpoint.ts"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { lsnFromBigInt, lsnToBigInt } from "../../contracts/lsn.ts"
import { applyRecords, type ApplyResult } from "../warehouse/apply.ts"
import { projectSortedBatch } from "../warehouse/projection.ts"
import { isTransientWarehouseError } from "../warehouse/warehouse-errors.ts"
import { openBulkLoader, type BulkCounts, type BulkLoader } from "./bulk/loader.ts"
import { makeLakeWatermarkReader, type LakeWatermarkReader } from "../lake/watermark-read.ts"
import type { CheckpointError, CheckpointStoreShape } from "../shared/checkpoint-store.ts"
import { connectClient } from "../shared/database-connection.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"
import { fromPromise } from "../shared/promise-effect.ts"
import { readReplayPosition, recordReplayPosition, type ReplayPosition } from "../warehouse/freshness.ts"
import { advanceCheckpoint, pendingObjects, type CommitPosition, type ReplayCheckpoint, type ReplayMode } from "./progress-state.ts"
import { parquetUnits, rawUnits, type LoadedUnit, type ReplayReadError } from "./sources.ts"
import { describeUrl, prepareTarget } from "./target.ts"
import { beforeWatermark, boundText, isoMicros, selectEvents, timeWindow, watermarkCovers, type Bound } from "./window.ts"

export interface ReplayOptions {
  readonly lake: LakeStoreShape
  readonly targetUrl: string
  /** Which database the target is, for connection errors: the warehouse (default) or a --target. */
  readonly targetName?: "warehouse" | "target"
  readonly schema?: string
  readonly pipelineSchema?: string
  readonly checkpoints: CheckpointStoreShape
  /** Names the checkpoint `replay#<name>`: the same name resumes, another starts afresh. */
  readonly name: string
  readonly from?: Bound
  readonly to?: Bound
  /** Source tables to replay (default all). */
  readonly tables?: ReadonlyArray<string>
  readonly dryRun?: boolean
  readonly catchUp?: boolean
  readonly source?: "raw" | "parquet"
  /** Events per batch (row by row: per warehouse transaction). */
  readonly batchSize?: number
  /** Bulk: events per segment (one commit and one checkpoint each; default 250,000). */
  readonly segmentSize?: number
  /** Write row by row through applyRecords even into an empty target (the bulk path is chosen for an empty one). */
  readonly rowByRow?: boolean
  /** Objects read ahead of the warehouse. */
  readonly prefetch?: number
  /** Bound on how late an event can reach the lake after its commit (default unbounded). */
  readonly maxDeliveryDelayMs?: number
  /** How long to wait for the lake watermark to pass `to` (default 0: refuse at once). */
  readonly waitMs?: number
  /** Where the lake watermark comes from (default: read from `lake`). */
  readonly watermarks?: LakeWatermarkReader
  /** Called while waiting for the lake watermark to pass `to`. */
  readonly onWait?: (watermark: CommitPosition | null, to: Bound) => void
  /**
   * Objects written this close before a run's listing are re-applied on resume even when the
   * checkpoint covers them (an upload may still have been in flight). Default 5 minutes.
   */
  readonly listingMarginMs?: number
  readonly signal?: AbortSignal
  readonly onProgress?: (progress: ReplayProgress) => void
  readonly progressIntervalMs?: number
}

export interface ReplayProgress {
  /** How the run writes: bulk (COPY and set-based, into an empty target), row-by-row (applyRecords), or a dry run. */
  readonly mode: ReplayMode | "dry-run"
  readonly objectsTotal: number
  readonly objectsDone: number
  /** Objects a previous run of this name already applied. */
  readonly objectsSkipped: number
  readonly bytesTotal: number
  readonly bytesDone: number
  /** Stream records read (heartbeats and out-of-window events included). */
  readonly records: number
  /** Change events selected and applied (or projected, in a dry run). */
  readonly events: number
  readonly eventsPerSecond: number
  readonly etaSeconds: number | null
  readonly elapsedMs: number
}

/** What a replay rebuilt up to. */
export type ReplayUpTo =
  /** Everything committed before the lake watermark (no `to`). */
  | ({ readonly kind: "watermark" } & CommitPosition)
  /** The `to` bound (within the lake watermark). */
  | { readonly kind: "to"; readonly bound: string }
  /** Everything in the lake: it holds no heartbeat, so its completeness is unknown. */
  | { readonly kind: "everything" }

export interface ReplayReport extends ReplayProgress {
  readonly name: string
  readonly dryRun: boolean
  readonly resumed: boolean
  readonly aborted: boolean
  /** The lake watermark the replay read against: every change committed before it was in the lake. */
  readonly lakeWatermark: CommitPosition | null
  readonly upTo: ReplayUpTo
  /** Change events read at or after the watermark and left out (rebuilds without `to`). */
  readonly laterEvents: number
  /** How long the run waited for the lake watermark to pass `to`. */
  readonly waitedMs: number
  /**
   * What the target's pipeline_freshness says after a complete rebuild (null: not recorded: a dry
   * run, an interrupted run, `tables`, a `from` past what the target held, or no watermark).
   */
  readonly consistentThrough: ReplayPosition | null
  readonly batches: number
  readonly undecodable: number
  readonly unresolvedClaimChecks: ReadonlyArray<string>
  /** Per source table and operation, e.g. `sales_order:c`. */
  readonly byTableOp: Readonly<Record<string, number>>
  /** Bulk: where the time went (waiting for the fact COPYs, committing segments, the final derivations). */
  readonly bulkWaits?: BulkCounts["waits"]
  /** What the warehouse did (a dry run: what the projection planned). */
  readonly warehouse: {
    readonly mirrorRows: number
    readonly factRows: number
    readonly dimensionRows: number
    readonly duplicates: number
    readonly skipped: number
  }
}

/** A `to` beyond the lake watermark, and the wait (if any) did not get there. */
export class LakeIncompleteError extends Schema.TaggedError<LakeIncompleteError>()("LakeIncompleteError", {
  message: Schema.String
}) {}

/** A run under a name whose checkpoint was written with other options. */
export class ReplayOptionsChanged extends Schema.TaggedError<ReplayOptionsChanged>()("ReplayOptionsChanged", {
  message: Schema.String
}) {}

/**
 * Why a replay failed: the lake or the checkpoint store (after their retries), the lake not
 * complete up to `to`, other options under the same name, or the target (pg's and
 * connectClient's errors, TargetNotEmptyError) as they were thrown.
 */
export type ReplayError = ReplayReadError | CheckpointError | LakeIncompleteError | ReplayOptionsChanged | Error

const laterOf = (a: CommitPosition | undefined, b: CommitPosition | undefined) =>
  !a ? b : !b ? a : lsnToBigInt(b.lsn) > lsnToBigInt(a.lsn) ? b : a

/** Source order: commit LSN, then index within the transaction (a stable sort; most batches already are in order). */
const sortByPosition = (events: Array<ChangeEvent>): Array<ChangeEvent> => {
  // A transaction's events share their LSN text: parse each text once.
  let text = ""
  let value = 0n
  const keyed = events.map((event) => {
    if (event.source.commitLsn !== text) {
      text = event.source.commitLsn
      value = lsnToBigInt(text)
    }
    return { event, lsn: value, index: event.source.index }
  })
  const before = (a: (typeof keyed)[number], b: (typeof keyed)[number]) => (a.lsn < b.lsn ? -1 : a.lsn > b.lsn ? 1 : a.index - b.index)
  let sorted = true
  for (let i = 1; i < keyed.length && sorted; i++) sorted = before(keyed[i - 1]!, keyed[i]!) <= 0
  return sorted ? events : keyed.sort(before).map((entry) => entry.event)
}

export const replayFingerprint = (options: ReplayOptions): string =>
  JSON.stringify({
    target: `${describeUrl(options.targetUrl)}#${options.schema ?? "public"}/${options.pipelineSchema ?? "totes"}`,
    from: boundText(options.from),
    to: boundText(options.to),
    tables: options.tables && options.tables.length > 0 ? [...options.tables].sort() : null,
    source: options.source ?? "raw"
  })

/**
 * Runs a replay (see the top of this file). Effects per step, batch and segment; the per-event
 * work (selecting, counting, batching) stays plain code.
 */
export const replay = Effect.fn("replay")(function* (options: ReplayOptions): Effect.fn.Return<ReplayReport, ReplayError, Scope.Scope> {
  const started = Date.now()
  const key = replayCheckpointKey(options.name)
  const fingerprint = replayFingerprint(options)
  const dryRun = options.dryRun ?? false

  // 1. The checkpoint of an earlier run of this name (a dry run neither needs nor writes one).
  let checkpoint: ReplayCheckpoint | undefined
  if (!dryRun) {
    checkpoint = Option.getOrUndefined(yield* options.checkpoints.get<ReplayCheckpoint>(key))?.data
    if (checkpoint && checkpoint.fingerprint !== fingerprint) {
      return yield* new ReplayOptionsChanged({
        message:
          `replay '${options.name}' was started with other options (${checkpoint.fingerprint}); ` +
          `this run has ${fingerprint}. Use another --name, or the same options to resume it.`
      })
    }
  }
  const resumed = checkpoint !== undefined

  // 2. How far the lake is complete. A resumed run keeps the watermark it started with (older
  //    checkpoints have none: they applied everything).
  const watermarks = options.watermarks ?? makeLakeWatermarkReader(options.lake)
  const readWatermark = Effect.map(watermarks.read(), ({ watermark }): CommitPosition | null =>
    watermark ? { lsn: watermark.lsn, committedAt: watermark.committedAt } : null
  )
  let waitedMs = 0
  let watermark: CommitPosition | null = checkpoint ? (checkpoint.lakeWatermark ?? null) : yield* readWatermark
  if (!checkpoint && options.to) {
    const to = options.to
    const waitMs = options.waitMs ?? 0
    const covered = () => watermark !== null && watermarkCovers(watermark, to)
    // No watermark at all (a lake without heartbeats) and no wait asked: apply what there is.
    if (!covered() && (watermark !== null || waitMs > 0)) {
      const waitStarted = Date.now()
      const deadline = waitStarted + waitMs
      while (!covered()) {
        if (Date.now() >= deadline || options.signal?.aborted) {
          return yield* new LakeIncompleteError({
            message:
              `--to ${boundText(to)} is beyond the lake watermark ` +
              (watermark ? `${watermark.lsn} (committed ${watermark.committedAt})` : `(the lake holds no heartbeat yet)`) +
              `: the lake does not hold every change up to it yet${waitMs > 0 ? ` (waited ${Math.round(waitMs / 1000)} s)` : ""}. ` +
              `Wait for it with --wait SECONDS, or choose an earlier --to.`
          })
        }
        options.onWait?.(watermark, to)
        yield* Effect.sleep(Math.min(1_000, Math.max(0, deadline - Date.now())))
        watermark = yield* readWatermark
      }
      waitedMs = Date.now() - waitStarted
    }
  }
  const below = options.to ? undefined : (watermark?.lsn ?? undefined)
  const upTo: ReplayUpTo = options.to
    ? { kind: "to", bound: boundText(options.to)! }
    : watermark
      ? { kind: "watermark", ...watermark }
      : { kind: "everything" }

  // 3. The target: migrate when empty, refuse data unless catch-up or our own earlier run.
  //    The connections are closed however the run ends (the finalizer below).
  const open: { client: pg.Client | undefined; loader: BulkLoader | undefined } = { client: undefined, loader: undefined }
  yield* Effect.addFinalizer(() =>
    Effect.promise(async () => {
      await open.loader?.close().catch(() => {})
      await open.client?.end().catch(() => {})
    })
  )
  // pipeline: each batch is sent to the target as one round trip (services/warehouse/apply.ts)
  // Opening and recording a connection (or the loader below) is one uninterruptible step: an
  // interruption waits for it, so the finalizer always knows what to close.
  const connect = () =>
    fromPromise(() =>
      connectClient(options.targetName ?? "warehouse", options.targetUrl, { application_name: `totes-replay-${options.name}`, pipeline: true } as pg.ClientConfig)
    ).pipe(
      Effect.tap((client) => Effect.sync(() => (open.client = client))),
      Effect.uninterruptible
    )
  const schemas = { schema: options.schema, pipelineSchema: options.pipelineSchema }
  /** How far the target was consistent before this run (a --from replay continues from it). */
  let previous: ReplayPosition | null = null
  /** Bulk into an empty target unless asked otherwise; a resumed run keeps its way (older checkpoints: row by row). */
  let mode: ReplayMode = "row-by-row"
  if (!dryRun) {
    const client = yield* connect()
    const state = yield* fromPromise(() => prepareTarget(client, { ...schemas, allowData: resumed || (options.catchUp ?? false), describe: describeUrl(options.targetUrl) }))
    mode = checkpoint ? (checkpoint.mode ?? "row-by-row") : state.rows === 0 && !options.rowByRow ? "bulk" : "row-by-row"
    previous = yield* fromPromise(() => readReplayPosition(client, schemas))
  }

  // 4. What to read (listed after the watermark was read, so it holds every object the watermark counts on).
  const listedAt = new Date().toISOString()
  const window = { ...timeWindow(options), ...(options.maxDeliveryDelayMs !== undefined ? { maxDeliveryDelayMs: options.maxDeliveryDelayMs } : {}) }
  const listing =
    options.source === "parquet"
      ? yield* parquetUnits(options.lake, { ...window, ...(options.tables ? { tables: options.tables } : {}) })
      : yield* rawUnits(options.lake, window)
  const pending = pendingObjects(listing, checkpoint, options.listingMarginMs)
  const byKey = new Map(listing.map((u) => [u.key, u]))
  const units = pending.map((p) => byKey.get(p.key)!)

  if (!dryRun && !checkpoint) {
    checkpoint = {
      version: 1,
      fingerprint,
      appliedThrough: "",
      listedAt,
      objects: 0,
      events: 0,
      startedAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
      lakeWatermark: watermark,
      mode
    }
    yield* options.checkpoints.advance(key, "", checkpoint)
  }
  const loader =
    mode === "bulk"
      ? yield* fromPromise(() =>
          openBulkLoader({
            ...schemas,
            connect: () => connectClient(options.targetName ?? "warehouse", options.targetUrl, { application_name: `totes-replay-${options.name}` })
          })
        ).pipe(
          Effect.tap((opened) => Effect.sync(() => (open.loader = opened))),
          Effect.uninterruptible
        )
      : undefined

  // 5. Read ahead, batch, apply, checkpoint.
  const stats = {
    objectsDone: 0,
    bytesDone: 0,
    records: 0,
    events: 0,
    later: 0,
    newest: checkpoint?.newestApplied,
    batches: 0,
    undecodable: 0,
    unresolved: [] as Array<string>,
    byTableOp: {} as Record<string, number>,
    warehouse: { mirrorRows: 0, factRows: 0, dimensionRows: 0, duplicates: 0, skipped: 0 }
  }
  const bytesTotal = units.reduce((sum, u) => sum + u.size, 0)
  const progress = (): ReplayProgress => {
    const elapsedMs = Date.now() - started
    const rate = stats.bytesDone / Math.max(elapsedMs, 1)
    return {
      mode: dryRun ? "dry-run" : mode,
      objectsTotal: listing.length,
      objectsDone: stats.objectsDone,
      objectsSkipped: listing.length - units.length,
      bytesTotal,
      bytesDone: stats.bytesDone,
      records: stats.records,
      events: stats.events,
      eventsPerSecond: Math.round((stats.events * 1000) / Math.max(elapsedMs, 1)),
      etaSeconds: stats.bytesDone > 0 ? Math.round((bytesTotal - stats.bytesDone) / rate / 1000) : null,
      elapsedMs
    }
  }
  let lastProgress = 0
  const report = (force = false) => {
    if (!options.onProgress) return
    if (!force && Date.now() - lastProgress < (options.progressIntervalMs ?? 1_000)) return
    lastProgress = Date.now()
    options.onProgress(progress())
  }

  /** One batch through applyRecords in one transaction; a transient failure reconnects and retries it. */
  const applyRowByRow = Effect.fn("replay.applyRowByRow")(function* (sorted: Array<ChangeEvent>) {
    for (let attempt = 1; ; attempt++) {
      const result = yield* Effect.result(
        Effect.flatMap(open.client ? Effect.succeed(open.client) : connect(), (client) =>
          fromPromise(() => applyRecords(client, sorted, { schema: options.schema, pipelineSchema: options.pipelineSchema }))
        )
      )
      if (Result.isSuccess(result)) return result.success
      if (!isTransientWarehouseError(result.failure) || attempt >= 8) return yield* Effect.fail(result.failure)
      const broken = open.client
      open.client = undefined
      yield* Effect.promise(async () => broken?.end().catch(() => {}))
      yield* Effect.sleep(Math.min(200 * 2 ** attempt, 5_000))
    }
  })

  const apply = Effect.fn("replay.apply")(function* (events: Array<ChangeEvent>) {
    if (events.length === 0) return
    const sorted = sortByPosition(events)
    const last = sorted[sorted.length - 1]!
    stats.newest = laterOf(stats.newest, { lsn: last.source.commitLsn, committedAt: last.source.committedAt })
    if (dryRun) {
      const plan = projectSortedBatch(sorted)
      stats.warehouse.mirrorRows += plan.mirror.length
      stats.warehouse.factRows += plan.facts.length
      stats.warehouse.duplicates += plan.counts.duplicates
      stats.warehouse.skipped += plan.counts.skipped
      return
    }
    if (loader) {
      yield* fromPromise(() => loader.applyBatch(sorted))
      return
    }
    const result: ApplyResult = yield* applyRowByRow(sorted)
    stats.warehouse.mirrorRows += result.mirrorRows
    stats.warehouse.factRows += result.factRows
    stats.warehouse.dimensionRows += result.dimensionRows
    stats.warehouse.skipped += result.skipped
  })

  const base = { objects: checkpoint?.objects ?? 0, events: checkpoint?.events ?? 0 }
  let lastCheckpointAt = Date.now()
  /** What the checkpoint counts, as of now. */
  const appliedSoFar = () => ({
    objects: base.objects + stats.objectsDone,
    events: base.events + stats.events,
    ...(stats.newest ? { newestApplied: stats.newest } : {})
  })
  const checkpointThrough = Effect.fn("replay.checkpointThrough")(function* (objectKey: string | undefined, totals = appliedSoFar()) {
    if (dryRun || !checkpoint || objectKey === undefined) return
    const next = advanceCheckpoint(checkpoint, objectKey, listedAt, totals)
    if (!next) return
    // The store refuses a position older than the one it holds; the copy here follows it.
    if (yield* options.checkpoints.advance(key, next.appliedThrough, next)) checkpoint = next
    lastCheckpointAt = Date.now()
  })

  const batchSize = options.batchSize ?? 5_000
  const prefetch = Math.max(1, options.prefetch ?? 4)
  /** Units being read ahead of the warehouse, each in a fiber of its own (joined in order below). */
  const loads = new Map<number, Fiber.Fiber<LoadedUnit, ReplayReadError>>()
  const loadAhead = Effect.fn("replay.loadAhead")(function* (from: number) {
    for (let i = from; i < Math.min(units.length, from + prefetch); i++) {
      if (!loads.has(i)) loads.set(i, yield* Effect.forkChild(units[i]!.load, { startImmediately: true }))
    }
  })

  let batch: Array<ChangeEvent> = []
  let completed: string | undefined
  let aborted = false
  const segmentSize = options.segmentSize ?? 250_000
  /**
   * Makes what was applied durable, then checkpoints through `completed`. Bulk: the segment
   * commits in the background (a fiber) while the next one is read; its checkpoint follows its
   * commit, and each segment's after the one before.
   */
  let committed: Fiber.Fiber<void, ReplayError> | undefined
  const commit = Effect.fn("replay.commit")(function* () {
    const through = completed
    completed = undefined
    if (!loader) return yield* checkpointThrough(through)
    const totals = appliedSoFar()
    // Started now, before the next batch is applied: the segment is what was applied so far.
    const durable = loader.flushSegment()
    durable.catch(() => {}) // awaited in the fiber below; avoid an unhandled rejection meanwhile
    const before = committed
    committed = yield* Effect.forkChild(
      Effect.gen(function* () {
        if (before) yield* Fiber.join(before)
        yield* fromPromise(() => durable)
        yield* checkpointThrough(through, totals)
      })
    )
  })
  const flush = Effect.fn("replay.flush")(function* () {
    yield* apply(batch)
    if (batch.length > 0) stats.batches++
    batch = []
    // Row by row every batch is committed; bulk commits a segment of batches at once.
    if (!loader || loader.pendingEvents() >= segmentSize) yield* commit()
    report()
  })

  for (let i = 0; i < units.length; i++) {
    if (options.signal?.aborted) {
      aborted = true
      break
    }
    yield* loadAhead(i)
    const unit = units[i]!
    const loaded = yield* Fiber.join(loads.get(i)!)
    loads.delete(i)
    stats.records += loaded.records.length
    stats.undecodable += loaded.undecodable
    stats.unresolved.push(...loaded.unresolved)
    const { before: events, later } = beforeWatermark(selectEvents(loaded.records, options), below)
    stats.later += later
    // Per event: plain code only; an Effect runs once a batch is full.
    for (const event of events) {
      const tableOp = `${event.source.table}:${event.op}`
      stats.byTableOp[tableOp] = (stats.byTableOp[tableOp] ?? 0) + 1
      batch.push(event)
      if (batch.length >= batchSize) {
        stats.events += batch.length
        yield* flush()
      }
    }
    stats.objectsDone++
    stats.bytesDone += unit.size
    // Every event of this object is applied or in `batch`: the next flush covers it.
    completed = unit.key
    if (batch.length === 0 && (!loader || loader.pendingEvents() === 0) && Date.now() - lastCheckpointAt > 2_000) {
      // A run of objects without selected events (heartbeats, other tables): keep the checkpoint
      // moving. Through commit(): in bulk a segment may still be committing in the background (or
      // have failed), and the checkpoint must not pass it; commit() queues it after every segment
      // commit in flight.
      lastCheckpointAt = Date.now()
      yield* commit()
      report()
    }
  }
  stats.events += batch.length
  yield* flush()
  yield* commit()
  if (committed) yield* Fiber.join(committed)
  if (loader) {
    // Dimensions and truncation rows from the final state (also after an interruption: the target stays consistent).
    yield* fromPromise(() => loader.finish())
    const counts = loader.counts()
    stats.warehouse.mirrorRows = counts.mirrorRows
    stats.warehouse.factRows = counts.factRows
    stats.warehouse.dimensionRows = counts.dimensionRows
    stats.warehouse.skipped = counts.skipped
  }
  report(true)
  const final = progress()
  metrics.emit("replay", { EventsReplayed: final.events, ReplayEventsPerSecond: final.eventsPerSecond })

  // 6. A complete rebuild says how far the target is consistent.
  let consistentThrough: ReplayPosition | null = null
  const position = dryRun || aborted ? null : reachedPosition(options, watermark, stats.newest, previous)
  if (position) {
    const client = open.client ?? (yield* connect())
    yield* fromPromise(() => recordReplayPosition(client, schemas, { ...position, name: options.name }))
    consistentThrough = yield* fromPromise(() => readReplayPosition(client, schemas))
  }

  return {
    ...progress(),
    name: options.name,
    dryRun,
    resumed,
    aborted,
    lakeWatermark: watermark,
    upTo,
    laterEvents: stats.later,
    waitedMs,
    consistentThrough,
    batches: stats.batches,
    undecodable: stats.undecodable,
    unresolvedClaimChecks: stats.unresolved,
    byTableOp: stats.byTableOp,
    warehouse: stats.warehouse,
    ...(loader ? { bulkWaits: loader.counts().waits } : {})
  }
}, Effect.scoped)

/**
 * The position a finished replay makes the target consistent through (every change committed
 * before it is applied, like a heartbeat's position), or null when it cannot tell: only some
 * tables, a `from` later than what the target held before, or a lake without a watermark (older
 * checkpoints). Up to the watermark: the watermark; `to` an LSN: just after it (at the commit time
 * of the newest change before it); `to` a time: just after the newest change applied (at that time).
 */
const reachedPosition = (
  options: Pick<ReplayOptions, "tables" | "from" | "to">,
  watermark: CommitPosition | null,
  newest: CommitPosition | undefined,
  previous: ReplayPosition | null
): ReplayPosition | null => {
  if (watermark === null || (options.tables && options.tables.length > 0)) return null
  if (options.from) {
    const from = options.from
    const heldBefore =
      previous !== null &&
      (from.kind === "lsn"
        ? lsnToBigInt(previous.lsn) >= lsnToBigInt(from.lsn)
        : previous.committedAt !== null && isoMicros(previous.committedAt) >= from.at.getTime() * 1000)
    if (!heldBefore) return null
  }
  const to = options.to
  if (!to) return { lsn: watermark.lsn, committedAt: watermark.committedAt }
  const justAfter = (lsn: string) => lsnFromBigInt(lsnToBigInt(lsn) + 1n)
  if (to.kind === "lsn") return { lsn: justAfter(to.lsn), committedAt: newest?.committedAt ?? null }
  return newest ? { lsn: justAfter(newest.lsn), committedAt: to.at.toISOString() } : null
}
