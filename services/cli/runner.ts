/**
 * Runs a `totes` command tree as the process: configuration checked first, one-line parse
 * errors, signals, and the exit code and error line of outcome.ts. Used by main.ts (and by the
 * tests' cli-child.ts, so that they see what a user sees).
 */
import { NodeServices } from "@effect/platform-node"
import { Console, Effect, Runtime } from "effect"
import { CliOutput, Command } from "effect/cli"
import { checkConfiguration, ConfigurationErrors } from "../shared/config.ts"
import { loggerLayer, redact } from "../shared/logger.ts"
import { commandLabel, describeExit, type HandledSignal } from "./outcome.ts"

/** Parse and validation errors: one line each, pointing at the command's help (not the whole help). */
const presenter = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Console.error(event.errors.map((e) => `${event.commandPath.join(" ")}: ${redact(e.message).replace(/\s*\n\s*/g, " ")} (see ${event.commandPath.join(" ")} --help)`).join("\n"))
      : CliOutput.defaultPresenter.present(event)
})

/** Every variable that is set is checked before any command runs: each refusal one line (usage error, exit 2). */
const configuration = Effect.suspend(() => {
  const errors = checkConfiguration(process.env)
  return errors.length === 0 ? Effect.void : Effect.fail(ConfigurationErrors.of(errors))
})

/**
 * The process runner: SIGINT, SIGTERM and SIGHUP interrupt the program (commands that own
 * resources shut down first, see effects.ts untilSignal), then the exit code and the one error
 * line are decided in outcome.ts. A client library that keeps a socket or timer alive after an
 * orderly shutdown must not leave a process behind: the unref'd timer only fires if something
 * else still holds the event loop open.
 */
const runMain = (args: ReadonlyArray<string>) =>
  Runtime.makeRunMain(({ fiber }) => {
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
        for (const line of outcome.message?.split("\n") ?? []) process.stderr.write(`${commandLabel(args)}: ${line}\n`)
        if (outcome.stack && process.env.TOTES_LOG_LEVEL?.toLowerCase() === "debug") process.stderr.write(`${outcome.stack}\n`)
      } catch {
        // the terminal is gone (SIGHUP): nothing to tell
      }
      process.exitCode = outcome.code
      setTimeout(() => process.exit(outcome.code), 3_000).unref()
    })
  })

/** Runs `root` (the `totes` command with its subcommands) with `args` as the process. */
export const runTotes = <Input, ContextInput, E>(root: Command.Command<"totes", Input, ContextInput, E, never>, args: ReadonlyArray<string> = process.argv.slice(2)) => {
  const wantsHelp = args.some((a) => a === "--help" || a === "-h" || a === "--version" || a === "-v")
  const program = (wantsHelp ? Effect.void : configuration).pipe(
    Effect.andThen(Command.runWith(root, { version: "0.1.0" })(args)),
    Effect.provide(presenter),
    Effect.provide(loggerLayer()),
    Effect.provide(NodeServices.layer)
  )
  runMain(args)(program, { disableErrorReporting: true })
}
