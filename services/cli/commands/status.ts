import { describeSnapshotProgress } from "../../../contracts/checkpoint.ts"
import { Console, Effect } from "effect"
import { describeRepair, describeTableProgress } from "../../../contracts/repair.ts"
import { CliError, Command, Flag } from "effect/cli"
import { CheckpointStore } from "../../shared/checkpoint-store.ts"
import { connectClient } from "../../shared/database-connection.ts"
import { PipelineSchema, readConfig, reveal, SlotName, SourceDatabaseUrl, StreamName, WarehouseDatabaseUrl, WarehouseSchema } from "../../shared/config.ts"
import { makeLakeWatermarkReader } from "../../lake/watermark-read.ts"
import { makeLakeActivityReader } from "../../status/lake-activity.ts"
import { readPausedTables, readStatus, waitCaughtUp, type PipelineStatus } from "../../status/status.ts"
import { numberIn } from "../arguments.ts"
import { task } from "../effects.ts"
import { COMMAND_DESCRIPTIONS } from "../command-descriptions.ts"
import { lakeFromEnv } from "./lake.ts"

/** A connection for the status, closed when the command's scope ends. */
const connected = (database: "source" | "warehouse", url: string) =>
  // Interruptible: Ctrl-C while a database does not answer ends the command at once (the process exits).
  Effect.acquireRelease(task(() => connectClient(database, url, { application_name: "totes-status" })), (client) => Effect.promise(() => client.end().catch(() => {})), { interruptible: true })

/** The source and the warehouse, connected in that order (closed in the reverse one). */
const clients = Effect.gen(function* () {
  const sourceUrl = reveal(readConfig(SourceDatabaseUrl))
  const warehouseUrl = reveal(readConfig(WarehouseDatabaseUrl))
  const source = yield* connected("source", sourceUrl)
  const warehouse = yield* connected("warehouse", warehouseUrl)
  return { source, warehouse }
})

const bytes = (n: number | null) => (n === null ? "–" : `${n.toLocaleString("en-GB")} B`)
const seconds = (n: number | null) => (n === null ? "–" : `${n.toFixed(1)} s`)

const lakeLine = (lake: NonNullable<PipelineStatus["lake"]>): string => {
  if (lake.error) return `lake       watermark unknown: ${lake.error}`
  if (lake.watermarkLsn === null) return "lake       no heartbeat archived yet: how complete the lake is cannot be told"
  const retired = lake.shards.filter((s) => !s.counted).length
  return (
    `lake       complete through ${lake.watermarkLsn} (${lake.watermarkAt}) · lag ${bytes(lake.lagBytes)}, ${seconds(lake.lagSeconds)} · ` +
    `${lake.shards.length - retired} shards${retired > 0 ? ` (+${retired} closed)` : ""}`
  )
}

const deadLetterLine = (activity: PipelineStatus["lakeActivity"]): Array<string> => {
  if (!activity) return []
  if (activity.error) return [`dead letters unknown: ${activity.error}`]
  const { count, lookbackDays, newest } = activity.deadLetters
  if (count === 0) return []
  const last = newest[0]!
  return [`dead letters ${count.toLocaleString("en-GB")} in the last ${lookbackDays} days · newest ${last.at ?? "–"} ${last.shardId ?? "–"} ${last.sequenceNumber ?? "–"}: ${last.reason} (read them under dead-letter/)`]
}

export const formatStatus = (s: PipelineStatus): string =>
  [
    ...s.unavailable.map((u) => `UNAVAILABLE ${u.dependency}: ${u.reason} · unknown: ${u.unknown}`),
    `source     WAL at ${s.source.walLsn}`,
    `reader     checkpoint ${s.reader.checkpointLsn ?? "none"} (commit ${s.reader.checkpointCommittedAt ?? "–"}) · slot ${s.reader.slotConfirmedLsn ?? "missing"}${s.reader.slotActive ? " (active)" : " (inactive)"} · lag ${bytes(s.reader.lagBytes)}, ${s.reader.lagSeconds === null ? "–" : `${s.reader.lagSeconds.toFixed(1)} s`} · retained WAL ${bytes(s.reader.retainedWalBytes)}`,
    `consumer   consistent through ${s.consumer.consistentThroughLsn ?? "–"} (${s.consumer.consistentThroughAt ?? "–"})${s.consumer.consistentThroughSource === "replay" ? " [rebuilt by replay]" : ""} · lag ${bytes(s.consumer.lagBytes)}, ${seconds(s.consumer.lagSeconds)}`,
    ...s.reader.schemaChanges.slice(-10).map((c) => `schema     ${c.at} at ${c.lsn}: ${c.summary}`),
    ...(s.lake ? [lakeLine(s.lake)] : []),
    ...deadLetterLine(s.lakeActivity),
    ...s.paused.map(
      (t) =>
        `paused     ${t.table}: ${t.detail}; consistent only before ${t.consistentBeforeLsn} (${t.consistentBeforeAt ?? "–"}), ${t.parkedEvents} changes kept · decide, then totes warehouse resume --table ${t.table}`
    ),
    // The initial snapshot while it runs: a line per table read so far (rows, rows/s, ETA from the planner's estimate).
    ...(s.snapshot
      ? [
          `snapshot   initial snapshot at ${s.snapshot.consistentPoint}: ${s.snapshot.tablesDone.length} tables done`,
          ...(s.snapshot.progress ?? []).map((p) => `  ${describeSnapshotProgress(p, Date.parse(s.at))}`)
        ]
      : []),
    // The newest repair: one line once done, with a line per table while it runs (or after it failed).
    ...(s.repair ? [`repair     ${describeRepair(s.repair)}`, ...(s.repair.state === "done" ? [] : s.repair.progress.map((p) => `  ${describeTableProgress(p)}`))] : []),
    ...s.consumer.shards.map((shard) => `  ${shard.shardId}  applied seq ${shard.appliedSequence ?? "–"} · checkpoint ${shard.checkpointSequence ?? "–"} · heartbeat ${shard.heartbeatLsn ?? "–"}`)
  ].join("\n")

export const statusCommand = Command.make(
  "status",
  {
    json: Flag.Boolean("json").pipe(Flag.withDescription("Print machine-readable JSON"), Flag.withDefault(false)),
    waitCaughtUp: Flag.Boolean("wait-caught-up").pipe(
      Flag.withDescription("Exit 0 once everything committed in the source before the call is in the warehouse; non-zero on timeout"),
      Flag.withDefault(false)
    ),
    timeout: Flag.Finite("timeout").pipe(
      numberIn({ min: 0, exclusiveMin: true, max: 86_400, unit: "seconds" }),
      Flag.withDescription("Seconds to wait with --wait-caught-up (up to a day)"),
      Flag.withDefault(300)
    )
  },
  ({ json, waitCaughtUp: wait, timeout }) =>
    Effect.gen(function* () {
      const schemas = { schema: readConfig(WarehouseSchema), pipelineSchema: readConfig(PipelineSchema) }
      if (wait) {
        const result = yield* Effect.scoped(
          Effect.gen(function* () {
            const { source, warehouse } = yield* clients
            const reached = yield* task(() => waitCaughtUp({ source, warehouse, ...schemas }, { timeoutMs: timeout * 1000, pollMs: 250 }))
            return { ...reached, paused: yield* task(() => readPausedTables(warehouse, schemas.schema)) }
          })
        )
        if (result.paused.length > 0) {
          // Not caught up for a paused table: its changes are kept, not applied.
          const names = result.paused.map((t) => `${t.table} (${t.detail})`).join("; ")
          yield* Console.log(json ? JSON.stringify({ caughtUp: false, ...result }) : `not caught up: paused by a schema change: ${names}; every other table is in the warehouse through ${result.through}`)
          return yield* Effect.fail(new CliError.UserError({ cause: new Error(`paused tables: ${result.paused.map((t) => t.table).join(", ")}`) }))
        }
        yield* Console.log(json ? JSON.stringify({ caughtUp: true, ...result }) : `caught up: source position ${result.target} is in the warehouse (consistent through ${result.through}) after ${(result.waitedMs / 1000).toFixed(1)} s`)
        return
      }
      const checkpoints = yield* CheckpointStore.make()
      const lake = lakeFromEnv()
      const status = yield* Effect.scoped(
        Effect.gen(function* () {
          const { source, warehouse } = yield* clients
          return yield* readStatus({
            source,
            warehouse,
            checkpoints,
            slot: readConfig(SlotName),
            stream: readConfig(StreamName),
            lakeWatermarks: makeLakeWatermarkReader(lake),
            lakeActivity: makeLakeActivityReader(lake),
            ...schemas
          })
        })
      )
      yield* Console.log(json ? JSON.stringify(status, null, 2) : formatStatus(status))
    })
).pipe(Command.withDescription(COMMAND_DESCRIPTIONS.status))
