import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { CheckpointStore } from "../../shared/checkpoint-store.ts"
import { PipelineSchema, readConfig, reveal, WarehouseDatabaseUrl, WarehouseSchema } from "../../shared/config.ts"
import { replay, type ReplayProgress, type ReplayReport } from "../../replay/replay.ts"
import { boundText } from "../../replay/window.ts"
import { TOTESYS_TABLES } from "../../../contracts/totesys.ts"
import { boundFlag, namesFrom, numberIn, postgresUrlFlag, textMatching, validation, windowProblem } from "../arguments.ts"
import { untilSignal } from "../effects.ts"
import { lakeFromEnv } from "./lake.ts"
import { COMMAND_DESCRIPTIONS } from "../command-descriptions.ts"

const formatProgress = (p: ReplayProgress) =>
  `${p.mode}: objects ${p.objectsDone}/${p.objectsTotal - p.objectsSkipped}${p.objectsSkipped > 0 ? ` (+${p.objectsSkipped} done before)` : ""}, ` +
  `events ${p.events.toLocaleString("en")} (${p.eventsPerSecond.toLocaleString("en")}/s), ETA ${p.etaSeconds === null ? "?" : `${p.etaSeconds} s`}`

/** Where the rebuild stops and how far the target is now consistent (the lines a user needs to trust it). */
export const describeReplayBounds = (report: ReplayReport): Array<string> => {
  const w = report.lakeWatermark
  const lines = [
    w
      ? `lake watermark ${w.lsn} (committed ${w.committedAt}): the lake holds every change committed before it`
      : "the lake holds no heartbeat: how complete it is cannot be told"
  ]
  if (report.upTo.kind === "watermark") {
    lines.push(
      `rebuilt up to the lake watermark ${report.upTo.lsn}` +
        (report.laterEvents > 0 ? `; ${report.laterEvents} later change(s) already in the lake were left out` : "")
    )
  } else if (report.upTo.kind === "to") {
    lines.push(`rebuilt up to --to ${report.upTo.bound}${w ? " (within the lake watermark)" : ""}${report.waitedMs > 0 ? `, after waiting ${(report.waitedMs / 1000).toFixed(1)} s for the lake` : ""}`)
  } else {
    lines.push("applied everything the lake holds")
  }
  if (!report.dryRun && !report.aborted) {
    lines.push(
      report.consistentThrough
        ? `target pipeline_freshness: consistent through ${report.consistentThrough.lsn} (${report.consistentThrough.committedAt ?? "–"})`
        : "target pipeline_freshness not set: only some tables, a --from later than the target held, or no lake watermark"
    )
  }
  return lines
}

export const printReplayReport = (report: ReplayReport) => {
  console.log(
    `${report.dryRun ? "dry run: would apply" : report.aborted ? "stopped after applying" : "applied"} ${report.events} events from ${report.objectsDone} objects ` +
      `(${report.records} records read) in ${(report.elapsedMs / 1000).toFixed(1)} s, ${report.eventsPerSecond}/s${report.resumed ? ", resumed" : ""}`
  )
  if (!report.dryRun) {
    console.log(
      report.mode === "bulk"
        ? "  bulk: the target was empty: rows written with COPY, dimensions and truncations derived set-wise at the end"
        : "  row by row: every batch through the consumer's apply, position-guarded"
    )
  }
  for (const [tableOp, n] of Object.entries(report.byTableOp).sort()) console.log(`  ${tableOp.padEnd(22)} ${n}`)
  const w = report.warehouse
  console.log(`  warehouse: ${w.mirrorRows} mirror rows, ${w.factRows} fact rows, ${w.dimensionRows} dimension rows, ${w.skipped} skipped${report.dryRun ? ` (planned; ${w.duplicates} duplicates)` : ""}`)
  if (report.undecodable > 0) console.log(`  ${report.undecodable} undecodable lines were not applied`)
  if (report.unresolvedClaimChecks.length > 0) console.log(`  ${report.unresolvedClaimChecks.length} oversize events could not be resolved: ${report.unresolvedClaimChecks.slice(0, 5).join(", ")}`)
  for (const line of describeReplayBounds(report)) console.log(line)
}

export const replayCommand = Command.make(
  "replay",
  {
    from: Flag.String("from").pipe(
      boundFlag({ lsn: true }),
      Flag.withDescription("Only events committed at or after this time (ISO, UTC) or LSN (e.g. 0/16B3748)"),
      Flag.optional
    ),
    to: Flag.String("to").pipe(boundFlag({ lsn: true }), Flag.withDescription("Time travel: only events committed at or before this time or LSN (default: up to the lake watermark)"), Flag.optional),
    wait: Flag.Int("wait").pipe(
      numberIn({ min: 0, max: 86_400, unit: "seconds" }),
      Flag.withDescription("Seconds to wait for the lake watermark to pass --to (default 0: refuse a --to beyond it)"),
      Flag.withDefault(0)
    ),
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
    batchSize: Flag.Int("batch-size").pipe(numberIn({ min: 1, max: 100_000, unit: "events" }), Flag.withDescription("Events per batch (row by row: per warehouse transaction)"), Flag.withDefault(5_000)),
    segmentSize: Flag.Int("segment-size").pipe(
      numberIn({ min: 1, max: 10_000_000, unit: "events" }),
      Flag.withDescription("Bulk (an empty target): events per commit and checkpoint"),
      Flag.withDefault(250_000)
    ),
    rowByRow: Flag.Boolean("row-by-row").pipe(
      Flag.withDescription("Apply every batch through the consumer's apply even into an empty target (default there: bulk, COPY and set-based)"),
      Flag.withDefault(false)
    )
  },
  (flags) => {
    let lastWaitNote = 0
    const some = <A>(o: Option.Option<A>) => Option.getOrUndefined(o)
    return untilSignal((signal) =>
      Effect.gen(function* () {
        const target = some(flags.target)
        const from = some(flags.from)
        const to = some(flags.to)
        const tables = some(flags.tables)
        const result = yield* replay({
          lake: lakeFromEnv(),
          targetUrl: target ?? reveal(readConfig(WarehouseDatabaseUrl)),
          targetName: target ? "target" : "warehouse",
          schema: readConfig(WarehouseSchema),
          pipelineSchema: readConfig(PipelineSchema),
          checkpoints: yield* CheckpointStore.make(),
          name: flags.name,
          ...(from ? { from } : {}),
          ...(to ? { to } : {}),
          ...(tables ? { tables } : {}),
          waitMs: flags.wait * 1000,
          onWait: (watermark) => {
            if (Date.now() - lastWaitNote < 10_000) return
            lastWaitNote = Date.now()
            process.stderr.write(`waiting for the lake watermark (now ${watermark ? watermark.lsn : "none"}) to pass --to ${boundText(to)}\n`)
          },
          dryRun: flags.dryRun,
          catchUp: flags.catchUp,
          source: flags.source,
          batchSize: flags.batchSize,
          segmentSize: flags.segmentSize,
          rowByRow: flags.rowByRow,
          signal,
          onProgress: (p) => process.stderr.write(`${formatProgress(p)}\n`)
        })
        printReplayReport(result)
      })
    )
  }
).pipe(
  Command.validate(validation(({ from, to }) => windowProblem(Option.getOrUndefined(from), Option.getOrUndefined(to)))),
  Command.withDescription(COMMAND_DESCRIPTIONS.replay)
)
