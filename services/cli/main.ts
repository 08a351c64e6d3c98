/** `totes`: thin commands, each delegating to a service. Exit codes and error lines: outcome.ts. */
import { Command } from "effect/cli"
import { devCommand } from "./commands/dev.ts"
import { lakeCommand } from "./commands/lake.ts"
import { replayCommand } from "./commands/replay.ts"
import { verifyCommand } from "./commands/verify.ts"
import { runCommand } from "./commands/run.ts"
import { sourceCommand } from "./commands/source.ts"
import { stackCommand } from "./commands/stack.ts"
import { statusCommand } from "./commands/status.ts"
import { warehouseCommand } from "./commands/warehouse.ts"
import { loadLocalStackEnvIfUnset } from "./environment.ts"
import { runTotes } from "./runner.ts"

const args = process.argv.slice(2)
const isStackCommand = args[0] === "stack" || args[0] === "dev"
if (!isStackCommand) {
  const loaded = loadLocalStackEnvIfUnset()
  if (loaded && process.stderr.isTTY) process.stderr.write(`(configuration from ${loaded})\n`)
}

const totes = Command.make("totes").pipe(
  Command.withDescription("totes-cdc: capture totesys changes from the PostgreSQL WAL into a lake and a star-schema warehouse"),
  Command.withSubcommands([devCommand, stackCommand, sourceCommand, warehouseCommand, runCommand, statusCommand, lakeCommand, replayCommand, verifyCommand])
)

runTotes(totes, args)
