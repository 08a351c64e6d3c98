/**
 * `totes`: thin commands, each delegating to a service. Only the command a run names is loaded
 * (command-table.ts); the others appear in `totes --help` by name and description only.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect, Runtime } from "effect"
import { Command } from "effect/cli"
import { COMMAND_DESCRIPTIONS, COMMAND_LOADERS, COMMAND_NAMES, DEVELOPMENT_COMMANDS, requestedCommand, type AnyCommand } from "./command-table.ts"
import { loadLocalStackEnvIfUnset } from "./environment.ts"
import { unknownCommandMessage, unknownSubcommand } from "./usage.ts"

const requested = requestedCommand(process.argv.slice(2))

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
