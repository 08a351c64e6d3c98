import { Console, Effect } from "effect"
import { Command } from "effect/cli"
import { migrateFromEnv } from "../../consumer/main.ts"
import { task } from "../effects.ts"
import { COMMAND_DESCRIPTIONS } from "../command-table.ts"

const migrate = Command.make("migrate", {}, () =>
  Effect.gen(function* () {
    const report = yield* task(() => migrateFromEnv())
    yield* Console.log(report.applied.length > 0 ? `applied migrations ${report.applied.join(", ")}` : "warehouse is up to date")
  })
).pipe(Command.withDescription("Create or upgrade the warehouse star schema and the pipeline's own tables (idempotent)"))

export const warehouseCommand = Command.make("warehouse").pipe(
  Command.withDescription(COMMAND_DESCRIPTIONS.warehouse),
  Command.withSubcommands([migrate])
)
