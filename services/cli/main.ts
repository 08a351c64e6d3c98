/** `totes`: thin commands, each delegating to a service. */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import { Command } from "effect/cli"
import { devCommand } from "./commands/dev.ts"
import { runCommand } from "./commands/run.ts"
import { sourceCommand } from "./commands/source.ts"
import { stackCommand } from "./commands/stack.ts"
import { statusCommand } from "./commands/status.ts"
import { warehouseCommand } from "./commands/warehouse.ts"
import { loadLocalStackEnvIfUnset } from "./environment.ts"

const isStackCommand = process.argv[2] === "stack" || process.argv[2] === "dev"
if (!isStackCommand) {
  const loaded = loadLocalStackEnvIfUnset()
  if (loaded && process.stderr.isTTY) process.stderr.write(`(configuration from ${loaded})\n`)
}

const totes = Command.make("totes").pipe(
  Command.withDescription("totes-cdc: capture totesys changes from the PostgreSQL WAL into a lake and a star-schema warehouse"),
  Command.withSubcommands([devCommand, stackCommand, sourceCommand, warehouseCommand, runCommand, statusCommand])
)

totes.pipe(Command.run({ version: "0.1.0" }), Effect.provide(NodeServices.layer), NodeRuntime.runMain({ disableErrorReporting: false }))
