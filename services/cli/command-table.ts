/**
 * The `totes` commands: name, one-line description (shown by `totes --help`) and how to load
 * the command. Only the command a run names is loaded, so `totes --help` and `totes status` do
 * not pay for the modules of every other command. The development commands (dev, stack, source)
 * live in tools/, which the production image does not contain: they are reached only through
 * these dynamic imports.
 */
import type { Command } from "effect/cli"
import { COMMAND_DESCRIPTIONS } from "./command-descriptions.ts"

export { COMMAND_DESCRIPTIONS }

// The name is invariant in Command, so the table holds commands of any name.
export type AnyCommand = Command.Command<any, any, any, any, never>

export type CommandName = keyof typeof COMMAND_DESCRIPTIONS

/** Development tooling: needs a development checkout (tools/ and the devDependencies). */
export const DEVELOPMENT_COMMANDS: ReadonlyArray<CommandName> = ["dev", "stack", "source", "console"]

export const COMMAND_LOADERS: Record<CommandName, () => Promise<AnyCommand>> = {
  dev: () => import("../../tools/cli/dev.ts").then((m) => m.devCommand),
  stack: () => import("../../tools/cli/stack.ts").then((m) => m.stackCommand),
  source: () => import("../../tools/cli/source.ts").then((m) => m.sourceCommand),
  warehouse: () => import("./commands/warehouse.ts").then((m) => m.warehouseCommand),
  run: () => import("./commands/run.ts").then((m) => m.runCommand),
  status: () => import("./commands/status.ts").then((m) => m.statusCommand),
  console: () => import("../../tools/cli/console.ts").then((m) => m.consoleCommand),
  lake: () => import("./commands/lake.ts").then((m) => m.lakeCommand),
  replay: () => import("./commands/replay.ts").then((m) => m.replayCommand),
  resnapshot: () => import("./commands/resnapshot.ts").then((m) => m.resnapshotCommand),
  verify: () => import("./commands/verify.ts").then((m) => m.verifyCommand)
}

export const COMMAND_NAMES = Object.keys(COMMAND_DESCRIPTIONS) as ReadonlyArray<CommandName>

export const isCommandName = (name: string | undefined): name is CommandName => name !== undefined && name in COMMAND_DESCRIPTIONS

/** The command a command line names (a command comes before its own arguments). */
export const requestedCommand = (argv: ReadonlyArray<string>): CommandName | undefined => argv.find(isCommandName)
