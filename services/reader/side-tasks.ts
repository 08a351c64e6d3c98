/**
 * Tasks that run beside the data path of a session, each a supervised fiber: a failure is seen
 * by the session (never swallowed by a timer).
 *
 *   statusUpdates    confirm the durable position to the server regularly (keeps the walsender alive)
 *   walMarkers       write a WAL marker so an idle database still moves the durable position
 *   streamHeartbeats write the durable position to every shard (the consumers' freshness watermark)
 *   lagMetrics       replication lag, retained WAL and the WAL left before the server invalidates the
 *                    slot (the reader-down alarm needs a sample a minute); slot health findings
 *                    (failover readiness, WAL past max_slot_wal_keep_size) reported as they change
 *   shardRefresh     follow a reshard: new lanes for new shards, closed ones drain
 *   metricsFlush     publish counters once a second instead of a line per Kinesis call
 *   schemaRecorder   keep the source schema changes seen for `totes status` (the newest 20)
 */
import { Effect, Option, Schedule } from "effect"
import { schemaChangesKey, type SchemaRecord } from "../../contracts/checkpoint.ts"
import { SCHEMA_VERSION, type Heartbeat } from "../../contracts/change-event.ts"
import { lsnToBigInt } from "../../contracts/lsn.ts"
import { ShardMap } from "../shared/kinesis/shard-map.ts"
import { kinesisBackoff } from "../shared/kinesis/publisher.ts"
import { metrics } from "../shared/metrics.ts"
import type { SessionContext } from "./context.ts"
import { isSourceConnectionError } from "./errors.ts"
import { laneSender } from "./lanes.ts"
import { failoverFindings, FindingTracker, walHeadroomFindings } from "./slot-health.ts"
import { currentWalLsn, emitHeartbeatMarker, slotInfo, standbyView, type SlotInfo } from "./source-admin.ts"

const every = (ms: number) => Schedule.spaced(`${Math.max(1, ms)} millis`)

export const statusUpdates = (ctx: SessionContext) =>
  Effect.sync(() => {
    if (ctx.durable) ctx.stream?.confirm(ctx.durable.lsn)
  }).pipe(Effect.repeat(every(ctx.settings.statusIntervalMs)))

export const walMarkers = (ctx: SessionContext) =>
  Effect.tryPromise(() => emitHeartbeatMarker(ctx.admin)).pipe(Effect.delay(`${ctx.settings.heartbeatIntervalMs} millis`), Effect.forever)

export const streamHeartbeats = (ctx: SessionContext) =>
  Effect.sync(() => {
    const durable = ctx.durable
    if (!durable) return
    const emittedAt = new Date().toISOString()
    const shards = ctx.routing.shards.map((shard) => shard.shardId)
    ctx.routing.shards.forEach((shard, index) => {
      // One record per shard, each with its own id (ids are unique across the stream and the lake).
      const heartbeat: Heartbeat = {
        kind: "heartbeat",
        schemaVersion: SCHEMA_VERSION,
        id: `heartbeat:${shard.shardId}:${durable.lsn}:${emittedAt}`,
        commitLsn: durable.lsn,
        committedAt: durable.committedAt,
        emittedAt,
        shards
      }
      const data = JSON.stringify(heartbeat)
      ctx.outbox.add(index, "heartbeat", data, Buffer.byteLength(data), undefined)
      ctx.laneSignal(shard.shardId).notify()
    })
    ctx.stats.lastHeartbeatAt = emittedAt
  }).pipe(Effect.repeat(every(ctx.settings.heartbeatIntervalMs)))

export const lagMetrics = (ctx: SessionContext) => {
  const health = slotHealthReporter(ctx)
  return Effect.tryPromise(async () => {
    const slot = await slotInfo(ctx.admin, ctx.settings.slot)
    await health(slot)
    const durable = ctx.durable
    if (!durable) return
    const current = await currentWalLsn(ctx.admin)
    const lagBytes = Number(lsnToBigInt(current) - lsnToBigInt(durable.lsn))
    const lagSeconds = lagBytes > 0 ? Math.max(0, (Date.now() - Date.parse(durable.committedAt)) / 1000) : 0
    metrics.emit("reader", {
      ReplicationLagBytes: Math.max(0, lagBytes),
      ReplicationLagSeconds: lagSeconds,
      ...(slot?.restartLsn ? { RetainedWalBytes: Number(lsnToBigInt(current) - lsnToBigInt(slot.restartLsn)) } : {}),
      // Negative once past max_slot_wal_keep_size (wal_status unreserved): nothing is left.
      ...(slot?.safeWalSize !== null && slot?.safeWalSize !== undefined ? { SlotSafeWalBytes: Math.max(0, slot.safeWalSize) } : {}),
      ...(ctx.stats.lastHeartbeatAt ? { HeartbeatAgeSeconds: (Date.now() - Date.parse(ctx.stats.lastHeartbeatAt)) / 1000 } : {})
    })
  }).pipe(Effect.repeat(every(ctx.settings.lagIntervalMs)))
}

/**
 * Reports what the slot's state means for a failover and for its WAL headroom: each finding
 * once as a warning while it holds, an info line when it clears, and once per session that a
 * failover slot has what it needs.
 */
const slotHealthReporter = (ctx: SessionContext) => {
  const tracker = new FindingTracker(ctx.settings.slotSyncGraceMs)
  let readyReported = false
  let checkFailed = false
  const check = async (slot: SlotInfo | undefined) => {
    const failoverMatters = ctx.settings.failoverSlot || slot?.failover === true
    const standbys = failoverMatters ? await standbyView(ctx.admin) : undefined
    const findings = [
      ...(standbys ? failoverFindings({ slotName: ctx.settings.slot, failoverRequested: ctx.settings.failoverSlot, slot, standbys }) : []),
      ...walHeadroomFindings(ctx.settings.slot, slot)
    ]
    const { raised, cleared } = tracker.update(findings, Date.now())
    for (const finding of raised) ctx.progress({ phase: "warning", message: finding.message })
    for (const finding of cleared) ctx.progress({ phase: "info", message: `resolved: ${finding.message}` })
    if (standbys && slot?.failover && findings.length === 0 && !readyReported) {
      readyReported = true
      ctx.progress({
        phase: "info",
        message: `slot '${ctx.settings.slot}' has failover and is synchronised through standby slot(s) ${standbys.synchronizedStandbySlots.join(", ")} (synchronized_standby_slots)`
      })
    }
  }
  return async (slot: SlotInfo | undefined) => {
    try {
      await check(slot)
    } catch (error) {
      // A lost connection ends the session as usual; anything else (a privilege, a server that
      // answers differently) must not stop the data path: it is reported once.
      if (isSourceConnectionError(error)) throw error
      if (!checkFailed) ctx.progress({ phase: "warning", message: `could not check the slot's health: ${(error as Error).message}` })
      checkFailed = true
    }
  }
}

/** Lists the shards again every `shardRefreshMs`, or at once when a record landed somewhere unexpected. */
export const shardRefresh = <R>(ctx: SessionContext, startLane: (laneId: string) => Effect.Effect<void, never, R>) =>
  Effect.gen(function* () {
    for (;;) {
      yield* ctx.shardsChanged.next.pipe(Effect.timeoutOption(`${ctx.settings.shardRefreshMs} millis`))
      const shards = yield* ctx.settings.publisher.shards().pipe(Effect.retry({ schedule: kinesisBackoff, while: (e) => e.retryable }))
      if (ctx.routing.sameAs(shards)) continue
      const routing = new ShardMap(shards)
      ctx.outbox.reshard(routing.shards)
      ctx.routing = routing
      ctx.progress({ phase: "info", message: `the stream now has ${shards.length} open shards: routing follows the new key ranges` })
      for (const laneId of ctx.outbox.laneIds()) ctx.laneSignal(laneId).notify()
      for (const shard of routing.shards) yield* startLane(shard.shardId)
    }
  })

export const schemaRecorder = (ctx: SessionContext) =>
  Effect.gen(function* () {
    // The first session records the catalogue's schemas (ctx.schemas set, no change yet); later, every change.
    if (ctx.schemaChanges.length === 0 && !ctx.schemas) return
    const key = schemaChangesKey(ctx.settings.slot)
    const fresh = [...ctx.schemaChanges]
    const stored = Option.getOrUndefined(yield* ctx.settings.checkpoints.get<SchemaRecord | null>(key))?.data
    const record: SchemaRecord = { tables: ctx.schemas ?? stored?.tables ?? {}, changes: [...(stored?.changes ?? []), ...fresh].slice(-20) }
    yield* ctx.settings.checkpoints.put(key, record)
    ctx.schemaChanges.splice(0, fresh.length) // only once recorded: an outage is waited out, nothing dropped
    ctx.schemas = undefined
  }).pipe(Effect.retry({ schedule: kinesisBackoff }), Effect.repeat(every(1_000)))

export const metricsFlush = (ctx: SessionContext) =>
  Effect.sync(() => {
    const pending = ctx.pendingMetrics
    if (pending.publishLatency.length === 0) return
    metrics.emit("reader", { PublishLatency: pending.publishLatency, PublishBatchSize: pending.eventsPerRecord, PublishRetries: pending.retries })
    for (const [label, n] of pending.byTableOp) {
      const [Table, Operation] = label.split(":") as [string, string]
      metrics.emit("reader", { EventsPublished: n }, { Table, Operation })
    }
    pending.publishLatency = []
    pending.eventsPerRecord = []
    pending.retries = 0
    pending.byTableOp.clear()
  }).pipe(Effect.repeat(every(1_000)))

export { laneSender }
