import { Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { PipelineSchema, readConfig, reveal, SourceDatabaseUrl, WarehouseDatabaseUrl, WarehouseSchema } from "../../shared/config.ts"
import { makeLakeWatermarkReader } from "../../lake/watermark-read.ts"
import { verify, type VerifyReport } from "../../replay/verify.ts"
import { VERIFY_TABLES } from "../../replay/verify-spec.ts"
import { namesFrom, numberIn } from "../arguments.ts"
import { COMMAND_DESCRIPTIONS } from "../command-descriptions.ts"
import { lakeFromEnv } from "./lake.ts"

export const printVerifyReport = (report: VerifyReport) => {
  const built = report.consistentThroughSource === "replay" ? ", rebuilt by replay" : ""
  console.log(`source at ${report.sourceLsn}; warehouse consistent through ${report.consistentThroughLsn} (${report.consistentThroughAt}${built}); ${report.rounds} round(s)`)
  for (const t of report.tables) {
    if (t.paused) {
      console.log(`  ${t.table.padEnd(20)} PAUSED: ${t.paused.join(", ")} paused by a source schema change, not compared (see totes status)`)
      continue
    }
    if (t.schemaMismatch) {
      console.log(`  ${t.table.padEnd(20)} SCHEMA MISMATCH on the ${t.schemaMismatch.side} side: ${t.schemaMismatch.message}`)
      continue
    }
    const status = t.differences.length === 0 ? "ok" : `${t.differences.length} DIFFERENT`
    console.log(`  ${t.table.padEnd(20)} source ${String(t.sourceRows).padStart(8)}  warehouse ${String(t.warehouseRows).padStart(8)}  ${status}${t.unsettled.length > 0 ? ` (${t.unsettled.length} keys kept changing: ${t.unsettled.slice(0, 10).join(", ")})` : ""}`)
    for (const d of t.differences.slice(0, 50)) {
      // Every line names table, key, and for a differing row each column with both sides.
      if (d.kind === "missing") console.log(`      ${t.table} key ${d.key}: in the source, missing from the warehouse`)
      else if (d.kind === "extra") console.log(`      ${t.table} key ${d.key}: in the warehouse, not in the source`)
      else if (!d.columns || d.columns.length === 0) console.log(`      ${t.table} key ${d.key}: differs (columns not listed: over the detail limit)`)
      else for (const c of d.columns) console.log(`      ${t.table} key ${d.key} column ${c.column}: source ${JSON.stringify(c.source)}, warehouse ${JSON.stringify(c.warehouse)}`)
    }
    if (t.differences.length > 50) console.log(`      … and ${t.differences.length - 50} more`)
  }
}

export const verifyCommand = Command.make(
  "verify",
  {
    tables: Flag.String("tables").pipe(
      namesFrom(VERIFY_TABLES, "warehouse table(s)"),
      Flag.withDescription(`Comma-separated warehouse tables (default: all of ${VERIFY_TABLES.join(", ")})`),
      Flag.optional
    ),
    json: Flag.Boolean("json").pipe(Flag.withDescription("Print the report as JSON"), Flag.withDefault(false)),
    wait: Flag.Int("wait").pipe(
      numberIn({ min: 0, max: 86_400, unit: "seconds" }),
      Flag.withDescription("Seconds to wait for the warehouse (a replayed one: the lake watermark) to reach the source's position"),
      Flag.withDefault(60)
    )
  },
  ({ tables, json, wait }) =>
    Effect.gen(function* () {
      const report = yield* verify({
        sourceUrl: reveal(readConfig(SourceDatabaseUrl)),
        warehouseUrl: reveal(readConfig(WarehouseDatabaseUrl)),
        schema: readConfig(WarehouseSchema),
        pipelineSchema: readConfig(PipelineSchema),
        waitMs: wait * 1000,
        lakeWatermarks: makeLakeWatermarkReader(lakeFromEnv()),
        ...(tables._tag === "Some" ? { tables: tables.value } : {}),
        ...(json ? {} : { onProgress: (message: string) => process.stderr.write(`${message}\n`) })
      })
      if (json) console.log(JSON.stringify(report, null, 2))
      else printVerifyReport(report)
      if (!report.ok) {
        const count = report.tables.reduce((n, t) => n + t.differences.length, 0)
        // A non-zero exit status for scripts and alarms.
        return yield* Effect.fail(new Error(`verify: ${count} row(s) differ between the source and the warehouse`))
      }
    })
).pipe(Command.withDescription(COMMAND_DESCRIPTIONS.verify))
