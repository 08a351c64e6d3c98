/**
 * How a `totes` command ends: its exit code, and the one line it prints when it fails.
 *
 *   0    success
 *   1    failure: something a retry or an operator must fix (a refused start, a lost database, …)
 *   2    usage: invalid arguments or configuration; nothing was started
 *   128+n  stopped by signal n: 129 SIGHUP, 130 SIGINT, 143 SIGTERM (after an orderly shutdown)
 *
 * Predictable failures print one line, `totes <command>: <what happened>`, with secrets
 * masked and no stack trace. Only an unexpected error (a bug) says so; its stack is printed
 * with TOTES_LOG_LEVEL=debug.
 */
import { Cause, Exit } from "effect"
import { CliError } from "effect/cli"
import { ConfigurationError, ConfigurationErrors } from "../shared/config.ts"
import { DatabaseConnectionError } from "../shared/database-connection.ts"
import { OPERATOR_ERRORS, redact } from "../shared/logger.ts"

export const EXIT_CODES = { ok: 0, failure: 1, usage: 2 } as const
export const SIGNAL_EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const
export type HandledSignal = keyof typeof SIGNAL_EXIT_CODES

/** An invalid argument found after parsing (in a command's own checks): exit 2. */
export class UsageError extends Error {
  override readonly name = "UsageError"
}

/** A failure the command has already reported (e.g. as a structured log line): exit 1, nothing more printed. */
export class ReportedFailure extends Error {
  override readonly name = "ReportedFailure"
}

const oneLine = (text: string) => redact(text).replace(/\s*\n\s*/g, " ").trim()

const unwrap = (error: unknown): unknown => (error instanceof CliError.UserError ? unwrap(error.cause) : error)

export interface Failure {
  readonly code: number
  /** The line to print (one per refused variable); undefined when the CLI has printed it already (parse errors, help). */
  readonly message?: string
  /** An unexpected error: its stack, for TOTES_LOG_LEVEL=debug. */
  readonly stack?: string
}

/** What a failed command's error means for the user. */
export const describeFailure = (raw: unknown, defect = false): Failure => {
  const error = unwrap(raw)
  if (CliError.isCliError(error)) {
    if (error._tag === "ShowHelp") return { code: error.errors.length > 0 ? EXIT_CODES.usage : EXIT_CODES.ok }
    return { code: EXIT_CODES.usage, message: oneLine(error.message) }
  }
  if (error instanceof ConfigurationErrors) return { code: EXIT_CODES.usage, message: error.errors.map((e) => oneLine(e.message)).join("\n") }
  if (error instanceof ConfigurationError || error instanceof UsageError) return { code: EXIT_CODES.usage, message: oneLine(error.message) }
  if (error instanceof DatabaseConnectionError) return { code: EXIT_CODES.failure, message: oneLine(error.message) }
  if (error instanceof ReportedFailure) return { code: EXIT_CODES.failure }
  const e = error as { name?: unknown; _tag?: unknown; message?: unknown; stack?: unknown } | null | undefined
  const name = typeof e?._tag === "string" ? e._tag : typeof e?.name === "string" ? e.name : ""
  const message = typeof e?.message === "string" && e.message ? e.message : String(error)
  if (OPERATOR_ERRORS.has(name) || !defect) return { code: EXIT_CODES.failure, message: oneLine(message) }
  return { code: EXIT_CODES.failure, message: `unexpected error: ${oneLine(message)} (TOTES_LOG_LEVEL=debug prints the stack)`, ...(typeof e?.stack === "string" ? { stack: redact(e.stack) } : {}) }
}

/** The exit code and message of a finished command, given the signal that stopped it (if any). */
export const describeExit = (exit: Exit.Exit<unknown, unknown>, signal?: HandledSignal): Failure => {
  if (signal && (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause))) return { code: SIGNAL_EXIT_CODES[signal] }
  if (Exit.isSuccess(exit)) return { code: EXIT_CODES.ok }
  if (Cause.hasInterruptsOnly(exit.cause)) return { code: SIGNAL_EXIT_CODES.SIGINT }
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  if (failure) return describeFailure(failure.error)
  const defect = exit.cause.reasons.find(Cause.isDieReason)
  return describeFailure(defect?.defect, true)
}

/** `totes <command> [<subcommand>]` from the arguments, for the start of an error line. */
export const commandLabel = (args: ReadonlyArray<string>): string => {
  const groups = new Set(["stack", "source", "warehouse", "lake"])
  const words = [args[0], groups.has(args[0] ?? "") ? args[1] : undefined].filter((w): w is string => typeof w === "string" && /^[a-z]+$/.test(w))
  return ["totes", ...words].join(" ")
}
