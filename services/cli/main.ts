/**
 * `totes`: thin commands, each delegating to a service. Only the command a run names is loaded
 * (command-table.ts); the others appear in `totes --help` by name and description only. Exit
 * codes and error lines: outcome.ts (the process runner: runner.ts).
 */
import { Command } from "effect/cli"
import { COMMAND_DESCRIPTIONS, COMMAND_LOADERS, COMMAND_NAMES, DEVELOPMENT_COMMANDS, requestedCommand, type AnyCommand } from "./command-table.ts"
import { loadLocalStackEnvIfUnset } from "./environment.ts"
import { runTotes } from "./runner.ts"
import { unknownCommandMessage, unknownSubcommand } from "./usage.ts"

const args = process.argv.slice(2)
const requested = requestedCommand(args)

if (requested !== "stack" && requested !== "dev") {
  const loaded = loadLocalStackEnvIfUnset()
  if (loaded && process.stderr.isTTY) process.stderr.write(`(configuration from ${loaded})\n`)
}

const load = async (name: NonNullable<typeof requested>): Promise<AnyCommand> => {
  try {
    return await COMMAND_LOADERS[name]()
  } catch (error) {
    if (DEVELOPMENT_COMMANDS.includes(name) && String((error as Error)?.message).includes("tools/")) {
      process.stderr.write(`totes ${name} is development tooling (tools/), which this installation does not contain: use a development checkout (npm ci)\n`)
      process.exit(1)
    }
    throw error
  }
}

const loaded = requested ? await load(requested) : undefined
const placeholder = (name: keyof typeof COMMAND_DESCRIPTIONS): AnyCommand => Command.make(name).pipe(Command.withDescription(COMMAND_DESCRIPTIONS[name]))

const totes = Command.make("totes").pipe(
  Command.withDescription("totes-cdc: capture totesys changes from the PostgreSQL WAL into a lake and a star-schema warehouse"),
  Command.withSubcommands(COMMAND_NAMES.map((name) => (name === requested && loaded ? loaded : placeholder(name))))
)

const unknown = unknownSubcommand(totes, args)
if (unknown) {
  // A usage error, also with --help (which would otherwise print the top-level help and exit 0).
  process.stderr.write(`${unknownCommandMessage(unknown)}\n`)
  process.exitCode = 2
} else {
  runTotes(totes, args)
}
