import { Console, Effect } from "effect"
import { Command } from "effect/cli"
import { migrateFromEnv } from "../../consumer/main.ts"
import { readConfig, reveal, WarehouseDatabaseUrl } from "../../shared/config.ts"
import { explainConnectionError } from "../../shared/database-connection.ts"
import { task } from "../effects.ts"

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

export const warehouseCommand = Command.make("warehouse").pipe(
  Command.withDescription("The star-schema warehouse"),
  Command.withSubcommands([migrate])
)
