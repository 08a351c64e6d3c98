/** `totes`: thin commands, each delegating to a service. Exit codes and error lines: outcome.ts. */
import { NodeServices } from "@effect/platform-node"
import { Console, Effect, Runtime } from "effect"
import { CliOutput, Command } from "effect/cli"
import { checkConfiguration } from "../shared/config.ts"
import { redact } from "../shared/logger.ts"
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
import { commandLabel, describeExit, type HandledSignal } from "./outcome.ts"

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

/** Parse and validation errors: one line each, pointing at the command's help (not the whole help). */
const presenter = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Console.error(event.errors.map((e) => `${event.commandPath.join(" ")}: ${redact(e.message).replace(/\s*\n\s*/g, " ")} (see ${event.commandPath.join(" ")} --help)`).join("\n"))
      : CliOutput.defaultPresenter.present(event)
})

/** Every variable that is set is checked before any command runs (usage error, exit 2). */
const configuration = Effect.suspend(() => {
  const errors = checkConfiguration(process.env)
  return errors.length === 0 ? Effect.void : Effect.fail(errors[0]!)
})
const wantsHelp = args.some((a) => a === "--help" || a === "-h" || a === "--version" || a === "-v")

const program = (wantsHelp ? Effect.void : configuration).pipe(
  Effect.andThen(Command.runWith(totes, { version: "0.1.0" })(args)),
  Effect.provide(presenter),
  Effect.provide(NodeServices.layer)
)

/**
 * Runs the program as the process: SIGINT, SIGTERM and SIGHUP interrupt it (commands that own
 * resources shut down first, see effects.ts untilSignal), then the exit code and the one error
 * line are decided in outcome.ts. A client library that keeps a socket or timer alive after an
 * orderly shutdown must not leave a process behind: the unref'd timer only fires if something
 * else still holds the event loop open.
 */
const runMain = Runtime.makeRunMain(({ fiber }) => {
  let signal: HandledSignal | undefined
  const onSignal = (received: HandledSignal) => {
    signal ??= received
    fiber.interruptUnsafe(fiber.id)
  }
  const signals: ReadonlyArray<HandledSignal> = ["SIGINT", "SIGTERM", "SIGHUP"]
  for (const s of signals) process.on(s, onSignal)
  fiber.addObserver((exit) => {
    for (const s of signals) process.off(s, onSignal)
    const outcome = describeExit(exit, signal)
    try {
      if (outcome.message) process.stderr.write(`${commandLabel(args)}: ${outcome.message}\n`)
      if (outcome.stack && process.env.TOTES_LOG_LEVEL?.toLowerCase() === "debug") process.stderr.write(`${outcome.stack}\n`)
    } catch {
      // the terminal is gone (SIGHUP): nothing to tell
    }
    process.exitCode = outcome.code
    setTimeout(() => process.exit(outcome.code), 3_000).unref()
  })
})

runMain(program, { disableErrorReporting: true })
