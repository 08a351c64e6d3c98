import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { usedColumns } from "../../../contracts/warehouse-catalogue.ts"
import { resumeTable, ResumeRefused } from "../../warehouse/apply.ts"
import { migrateFromEnv } from "../../consumer/main.ts"
import { PipelineSchema, readConfig, reveal, WarehouseDatabaseUrl, WarehouseSchema } from "../../shared/config.ts"
import { connectClient, explainConnectionError } from "../../shared/database-connection.ts"
import { task } from "../effects.ts"
import { COMMAND_DESCRIPTIONS } from "../command-descriptions.ts"
import { CliError } from "effect/cli"

const migrate = Command.make("migrate", {}, () =>
  Effect.gen(function* () {
    const report = yield* task(() =>
      migrateFromEnv().catch((error: unknown) => {
        throw explainConnectionError("warehouse", reveal(readConfig(WarehouseDatabaseUrl)), error) ?? error
      })
    )
    yield* Console.log(report.applied.length > 0 ? `applied migrations ${report.applied.join(", ")}` : "warehouse is up to date")
  })
).pipe(Command.withDescription("Create or upgrade the warehouse star schema and the pipeline's own tables (idempotent)"))

const usage = (message: string) => new CliError.UserError({ cause: new Error(message) })

/** `col=source` pairs of --rename. */
const parseRenames = (table: string, pairs: ReadonlyArray<string>): Record<string, string> => {
  const renamed: Record<string, string> = {}
  for (const pair of pairs) {
    const match = /^([a-z_][a-z0-9_]*)=([a-z_][a-z0-9_]*)$/.exec(pair)
    if (!match) throw usage(`--rename ${pair}: expected <warehouse column>=<source column>, e.g. --rename design_name=title`)
    renamed[match[1]!] = match[2]!
  }
  for (const column of Object.keys(renamed)) if (!(column in usedColumns(table))) throw usage(`--rename ${column}=…: ${table} has no column ${column} that the warehouse uses`)
  return renamed
}

const table = Flag.String("table").pipe(Flag.withDescription("The paused source table to resume"))
const rename = Flag.String("rename").pipe(
  Flag.withDescription("A column renamed in the source: <warehouse column>=<source column> (repeatable)"),
  Flag.atLeast(0)
)
const acceptMissing = Flag.String("accept-missing").pipe(Flag.withDescription("A column dropped in the source: NULL from the pause on (repeatable)"), Flag.atLeast(0))
const widen = Flag.String("widen").pipe(
  Flag.withDescription("Widen a fact column so that the new values fit, then take them as they come: <column>=<type>, e.g. units_sold=numeric(12,2) (repeatable)"),
  Flag.atLeast(0)
)
const acceptType = Flag.String("accept-type").pipe(
  Flag.withDescription("A column whose values no longer fit: pass them on as they come, once you have adapted the warehouse column (repeatable)"),
  Flag.atLeast(0)
)

const resume = Command.make("resume", { table, rename, acceptMissing, acceptType, widen }, (flags) =>
  Effect.gen(function* () {
    const columns = usedColumns(flags.table)
    if (Object.keys(columns).length === 0) return yield* usage(`--table ${flags.table}: not a table the warehouse builds on`)
    for (const column of [...flags.acceptMissing, ...flags.acceptType]) {
      if (!(column in columns)) return yield* usage(`${column}: ${flags.table} has no column ${column} that the warehouse uses`)
    }
    const renamed = yield* Effect.try({ try: () => parseRenames(flags.table, flags.rename), catch: (error) => error as CliError.UserError })
    const widened: Record<string, string> = {}
    for (const pair of flags.widen) {
      const match = /^([a-z_][a-z0-9_]*)=(.+)$/.exec(pair)
      if (!match) return yield* usage(`--widen ${pair}: expected <column>=<type>, e.g. --widen units_sold=numeric(12,2)`)
      widened[match[1]!] = match[2]!.trim()
    }
    const report = yield* task(async () => {
      const client = await connectClient("warehouse", reveal(readConfig(WarehouseDatabaseUrl)), { application_name: "totes-resume" })
      try {
        return await resumeTable(
          client,
          flags.table,
          { renamed, missingAccepted: flags.acceptMissing, typeAccepted: flags.acceptType, widen: widened },
          {
            schema: readConfig(WarehouseSchema),
            pipelineSchema: readConfig(PipelineSchema),
            onProgress: (applied, remaining) => process.stderr.write(`  ${applied} parked changes applied, ${remaining} left\n`)
          }
        )
      } catch (error) {
        if (error instanceof ResumeRefused) throw usage(error.message)
        throw error
      } finally {
        await client.end()
      }
    })
    if (report.stillBreaks) {
      yield* Console.log(
        `${report.table}: ${report.applied} parked changes applied; still paused: ${report.stillBreaks.detail} (${report.remaining} changes parked). Decide for column ${report.stillBreaks.column} and resume again.`
      )
      return yield* Effect.fail(new CliError.UserError({ cause: new Error(`${report.table} is still paused`) }))
    }
    yield* Console.log(`${report.table}: resumed; ${report.applied} parked changes applied in source order`)
  })
).pipe(Command.withDescription("Resume a table paused by a source schema change, after deciding what its broken columns mean"))

export const warehouseCommand = Command.make("warehouse").pipe(
  Command.withDescription(COMMAND_DESCRIPTIONS.warehouse),
  Command.withSubcommands([migrate, resume])
)
