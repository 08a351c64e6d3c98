import { Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { PipelineSchema, readConfig, reveal, SourceDatabaseUrl, WarehouseDatabaseUrl, WarehouseSchema } from "../../shared/config.ts"
import { verify, type VerifyReport } from "../../replay/verify.ts"
import { VERIFY_TABLES } from "../../replay/verify-spec.ts"
import { namesFrom, numberIn } from "../arguments.ts"
import { task } from "../effects.ts"

export const printVerifyReport = (report: VerifyReport) => {
  console.log(`source at ${report.sourceLsn}; warehouse consistent through ${report.consistentThroughLsn} (${report.consistentThroughAt}); ${report.rounds} round(s)`)
  for (const t of report.tables) {
    const status = t.differences.length === 0 ? "ok" : `${t.differences.length} DIFFERENT`
    console.log(`  ${t.table.padEnd(20)} source ${String(t.sourceRows).padStart(8)}  warehouse ${String(t.warehouseRows).padStart(8)}  ${status}${t.unsettled.length > 0 ? ` (${t.unsettled.length} keys kept changing: ${t.unsettled.slice(0, 10).join(", ")})` : ""}`)
    for (const d of t.differences.slice(0, 50)) {
      const columns = d.columns?.map((c) => `${c.column}: source ${JSON.stringify(c.source)} ≠ warehouse ${JSON.stringify(c.warehouse)}`).join("; ")
      console.log(`      key ${d.key}: ${d.kind}${columns ? ` (${columns})` : ""}`)
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
      Flag.withDescription("Seconds to wait for the warehouse to reach the source's position"),
      Flag.withDefault(60)
    )
  },
  ({ tables, json, wait }) =>
    Effect.gen(function* () {
      const report = yield* task(() =>
        verify({
          sourceUrl: reveal(readConfig(SourceDatabaseUrl)),
          warehouseUrl: reveal(readConfig(WarehouseDatabaseUrl)),
          schema: readConfig(WarehouseSchema),
          pipelineSchema: readConfig(PipelineSchema),
          waitMs: wait * 1000,
          ...(tables._tag === "Some" ? { tables: tables.value } : {}),
          ...(json ? {} : { onProgress: (message: string) => process.stderr.write(`${message}\n`) })
        })
      )
      if (json) console.log(JSON.stringify(report, null, 2))
      else printVerifyReport(report)
      if (!report.ok) {
        const count = report.tables.reduce((n, t) => n + t.differences.length, 0)
        // A non-zero exit status for scripts and alarms.
        yield* task(() => Promise.reject(new Error(`verify: ${count} row(s) differ between the source and the warehouse`)))
      }
    })
).pipe(Command.withDescription("Reconcile the warehouse with the source (read-only): row counts and checksums per key bucket, differing keys listed"))
