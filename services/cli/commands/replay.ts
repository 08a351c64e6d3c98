import { Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { CheckpointStore } from "../../shared/checkpoint-store.ts"
import { PipelineSchema, readConfig, reveal, WarehouseDatabaseUrl, WarehouseSchema } from "../../shared/config.ts"
import { replay, type ReplayProgress, type ReplayReport } from "../../replay/replay.ts"
import { parseBound } from "../../replay/window.ts"
import { untilSignal } from "../effects.ts"
import { lakeFromEnv } from "./lake.ts"
import { COMMAND_DESCRIPTIONS } from "../command-table.ts"

const optionalText = (name: string, description: string) => Flag.String(name).pipe(Flag.withDescription(description), Flag.optional)

const formatProgress = (p: ReplayProgress) =>
  `objects ${p.objectsDone}/${p.objectsTotal - p.objectsSkipped}${p.objectsSkipped > 0 ? ` (+${p.objectsSkipped} done before)` : ""}, ` +
  `events ${p.events.toLocaleString("en")} (${p.eventsPerSecond.toLocaleString("en")}/s), ETA ${p.etaSeconds === null ? "?" : `${p.etaSeconds} s`}`

export const printReplayReport = (report: ReplayReport) => {
  console.log(
    `${report.dryRun ? "dry run: would apply" : report.aborted ? "stopped after applying" : "applied"} ${report.events} events from ${report.objectsDone} objects ` +
      `(${report.records} records read) in ${(report.elapsedMs / 1000).toFixed(1)} s, ${report.eventsPerSecond}/s${report.resumed ? ", resumed" : ""}`
  )
  for (const [tableOp, n] of Object.entries(report.byTableOp).sort()) console.log(`  ${tableOp.padEnd(22)} ${n}`)
  const w = report.warehouse
  console.log(`  warehouse: ${w.mirrorRows} mirror rows, ${w.factRows} fact rows, ${w.dimensionRows} dimension rows, ${w.skipped} skipped${report.dryRun ? ` (planned; ${w.duplicates} duplicates)` : ""}`)
  if (report.undecodable > 0) console.log(`  ${report.undecodable} undecodable lines were not applied`)
  if (report.unresolvedClaimChecks.length > 0) console.log(`  ${report.unresolvedClaimChecks.length} oversize events could not be resolved: ${report.unresolvedClaimChecks.slice(0, 5).join(", ")}`)
}

export const replayCommand = Command.make(
  "replay",
  {
    from: optionalText("from", "Only events committed at or after this time (ISO, UTC) or LSN (e.g. 0/16B3748)"),
    to: optionalText("to", "Time travel: only events committed at or before this time or LSN"),
    tables: optionalText("tables", "Comma-separated source tables (default: all)"),
    target: optionalText("target", "Warehouse database URL (default: WAREHOUSE_DATABASE_URL)"),
    dryRun: Flag.Boolean("dry-run").pipe(Flag.withDescription("Read and project, write nothing, report counts"), Flag.withDefault(false)),
    catchUp: Flag.Boolean("catch-up").pipe(Flag.withDescription("Allow a target that already holds data (rows are position-guarded)"), Flag.withDefault(false)),
    name: Flag.String("name").pipe(Flag.withDescription("Checkpoint name: the same name resumes an interrupted replay"), Flag.withDefault("replay")),
    source: Flag.Literals("source", ["raw", "parquet"]).pipe(
      Flag.withDescription("raw: the raw objects; parquet: the compacted files plus raw objects not compacted yet"),
      Flag.withDefault("raw")
    ),
    batchSize: Flag.Int("batch-size").pipe(Flag.withDescription("Events per warehouse transaction"), Flag.withDefault(5_000))
  },
  (flags) => {
    const some = <A>(o: { _tag: "Some"; value: A } | { _tag: "None" }) => (o._tag === "Some" ? o.value : undefined)
    return untilSignal(async (signal) => {
        const target = some(flags.target) ?? reveal(readConfig(WarehouseDatabaseUrl))
        const from = some(flags.from)
        const to = some(flags.to)
        const tables = some(flags.tables)
        const result = await replay({
          lake: lakeFromEnv(),
          targetUrl: target,
          schema: readConfig(WarehouseSchema),
          pipelineSchema: readConfig(PipelineSchema),
          checkpoints: await Effect.runPromise(CheckpointStore.make()),
          name: flags.name,
          ...(from ? { from: parseBound(from) } : {}),
          ...(to ? { to: parseBound(to) } : {}),
          ...(tables ? { tables: tables.split(",").map((t) => t.trim()).filter(Boolean) } : {}),
          dryRun: flags.dryRun,
          catchUp: flags.catchUp,
          source: flags.source,
          batchSize: flags.batchSize,
          signal,
          onProgress: (p) => process.stderr.write(`${formatProgress(p)}\n`)
        })
        printReplayReport(result)
      })
  }
).pipe(Command.withDescription(COMMAND_DESCRIPTIONS.replay))
