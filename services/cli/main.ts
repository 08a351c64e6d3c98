/** `totes`: thin commands, each delegating to a service. */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect, Runtime } from "effect"
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
import { unknownCommandMessage, unknownSubcommand } from "./usage.ts"

const isStackCommand = process.argv[2] === "stack" || process.argv[2] === "dev"
if (!isStackCommand) {
  const loaded = loadLocalStackEnvIfUnset()
  if (loaded && process.stderr.isTTY) process.stderr.write(`(configuration from ${loaded})\n`)
}

const totes = Command.make("totes").pipe(
  Command.withDescription("totes-cdc: capture totesys changes from the PostgreSQL WAL into a lake and a star-schema warehouse"),
  Command.withSubcommands([devCommand, stackCommand, sourceCommand, warehouseCommand, runCommand, statusCommand, lakeCommand, replayCommand, verifyCommand])
)

/**
 * Exit with the command's code once it has finished. A client library that keeps a socket or
 * timer alive after an orderly shutdown must not leave a process behind: the unref'd timer
 * only fires if something else still holds the event loop open.
 */
const teardown: Runtime.Teardown = (exit, onExit) =>
  Runtime.defaultTeardown(exit, (code) => {
    onExit(code)
    process.exitCode = code
    setTimeout(() => process.exit(code), 3_000).unref()
  })

const unknown = unknownSubcommand(totes, process.argv.slice(2))
if (unknown) {
  // A usage error, also with --help (which would otherwise print the top-level help and exit 0).
  process.stderr.write(`${unknownCommandMessage(unknown)}\n`)
  process.exitCode = 2
} else {
  totes.pipe(Command.run({ version: "0.1.0" }), Effect.provide(NodeServices.layer), NodeRuntime.runMain({ disableErrorReporting: false, teardown }))
}
