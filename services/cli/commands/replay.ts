import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { CheckpointStore } from "../../shared/checkpoint-store.ts"
import { PipelineSchema, readConfig, reveal, WarehouseDatabaseUrl, WarehouseSchema } from "../../shared/config.ts"
import { replay, type ReplayProgress, type ReplayReport } from "../../replay/replay.ts"
import { TOTESYS_TABLES } from "../../../contracts/totesys.ts"
import { boundFlag, namesFrom, numberIn, postgresUrlFlag, textMatching, validation, windowProblem } from "../arguments.ts"
import { untilSignal } from "../effects.ts"
import { lakeFromEnv } from "./lake.ts"

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
    from: Flag.String("from").pipe(
      boundFlag({ lsn: true }),
      Flag.withDescription("Only events committed at or after this time (ISO, UTC) or LSN (e.g. 0/16B3748)"),
      Flag.optional
    ),
    to: Flag.String("to").pipe(boundFlag({ lsn: true }), Flag.withDescription("Time travel: only events committed at or before this time or LSN"), Flag.optional),
    tables: Flag.String("tables").pipe(namesFrom(TOTESYS_TABLES, "table(s)"), Flag.withDescription("Comma-separated source tables (default: all)"), Flag.optional),
    target: Flag.String("target").pipe(postgresUrlFlag, Flag.withDescription("Warehouse database URL (default: WAREHOUSE_DATABASE_URL)"), Flag.optional),
    dryRun: Flag.Boolean("dry-run").pipe(Flag.withDescription("Read and project, write nothing, report counts"), Flag.withDefault(false)),
    catchUp: Flag.Boolean("catch-up").pipe(Flag.withDescription("Allow a target that already holds data (rows are position-guarded)"), Flag.withDefault(false)),
    name: Flag.String("name").pipe(
      textMatching(/^[A-Za-z0-9_.-]{1,100}$/, "1–100 of A-Z a-z 0-9 _ . - (it names the checkpoint replay#<name>)"),
      Flag.withDescription("Checkpoint name: the same name resumes an interrupted replay"),
      Flag.withDefault("replay")
    ),
    source: Flag.Literals("source", ["raw", "parquet"]).pipe(
      Flag.withDescription("raw: the raw objects; parquet: the compacted files plus raw objects not compacted yet"),
      Flag.withDefault("raw")
    ),
    batchSize: Flag.Int("batch-size").pipe(numberIn({ min: 1, max: 100_000, unit: "events" }), Flag.withDescription("Events per warehouse transaction"), Flag.withDefault(5_000))
  },
  (flags) => {
    const some = <A>(o: Option.Option<A>) => Option.getOrUndefined(o)
    return untilSignal(async (signal) => {
        const target = some(flags.target)
        const from = some(flags.from)
        const to = some(flags.to)
        const tables = some(flags.tables)
        const result = await replay({
          lake: lakeFromEnv(),
          targetUrl: target ?? reveal(readConfig(WarehouseDatabaseUrl)),
          targetName: target ? "target" : "warehouse",
          schema: readConfig(WarehouseSchema),
          pipelineSchema: readConfig(PipelineSchema),
          checkpoints: await Effect.runPromise(CheckpointStore.make()),
          name: flags.name,
          ...(from ? { from } : {}),
          ...(to ? { to } : {}),
          ...(tables ? { tables } : {}),
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
).pipe(
  Command.validate(validation(({ from, to }) => windowProblem(Option.getOrUndefined(from), Option.getOrUndefined(to)))),
  Command.withDescription("Rebuild or catch up a warehouse from the lake, through the consumer's own apply (resumable)")
)
