/**
 * The `totes` commands: name, one-line description (shown by `totes --help`) and how to load
 * the command. Only the command a run names is loaded, so `totes --help` and `totes status` do
 * not pay for the modules of every other command. The development commands (dev, stack, source)
 * live in tools/, which the production image does not contain: they are reached only through
 * these dynamic imports.
 */
import type { Command } from "effect/cli"

// The name is invariant in Command, so the table holds commands of any name.
export type AnyCommand = Command.Command<any, any, any, any, never>

export const COMMAND_DESCRIPTIONS = {
  dev: "Run everything locally: stack, generated totesys, reader, consumer, simulator, live dashboard (npm start)",
  stack: "The local stack: real servers from npm packages, no Docker, no AWS account",
  source: "The totesys source database: schema, snapshots, synthetic data, workload",
  warehouse: "The star-schema warehouse",
  run: "Run pipeline components in this process with the configuration variables",
  status: "Show the reader's and the consumer's positions, lag, the warehouse's consistent_through and the lake's watermark",
  lake: "The S3 lake: list, print, compact, pull to a folder, query with DuckDB",
  replay: "Rebuild or catch up a warehouse from the lake, through the consumer's own apply (resumable)",
  resnapshot: "Re-read chosen tables while the reader streams (online repair: no gap, no overlap, rows deleted meanwhile removed), with progress",
  verify: "Reconcile the warehouse with the source (read-only): row counts and checksums per key bucket, differing keys listed"
} as const

export type CommandName = keyof typeof COMMAND_DESCRIPTIONS

/** Development tooling: needs a development checkout (tools/ and the devDependencies). */
export const DEVELOPMENT_COMMANDS: ReadonlyArray<CommandName> = ["dev", "stack", "source"]

export const COMMAND_LOADERS: Record<CommandName, () => Promise<AnyCommand>> = {
  dev: () => import("../../tools/cli/dev.ts").then((m) => m.devCommand),
  stack: () => import("../../tools/cli/stack.ts").then((m) => m.stackCommand),
  source: () => import("../../tools/cli/source.ts").then((m) => m.sourceCommand),
  warehouse: () => import("./commands/warehouse.ts").then((m) => m.warehouseCommand),
  run: () => import("./commands/run.ts").then((m) => m.runCommand),
  status: () => import("./commands/status.ts").then((m) => m.statusCommand),
  lake: () => import("./commands/lake.ts").then((m) => m.lakeCommand),
  replay: () => import("./commands/replay.ts").then((m) => m.replayCommand),
  resnapshot: () => import("./commands/resnapshot.ts").then((m) => m.resnapshotCommand),
  verify: () => import("./commands/verify.ts").then((m) => m.verifyCommand)
}

export const COMMAND_NAMES = Object.keys(COMMAND_DESCRIPTIONS) as ReadonlyArray<CommandName>

export const isCommandName = (name: string | undefined): name is CommandName => name !== undefined && name in COMMAND_DESCRIPTIONS

/** The command a command line names (a command comes before its own arguments). */
export const requestedCommand = (argv: ReadonlyArray<string>): CommandName | undefined => argv.find(isCommandName)
