/**
 * Argument checks shared by the commands. A value that cannot be right (an unknown table, a
 * negative timeout, a window that ends before it starts) is a usage error at parse time: the
 * command does not run, and the one-line message names the flag (exit 2, see outcome.ts).
 */
import { Effect, Option, Result } from "effect"
import { CliError, Flag } from "effect/cli"
import { lsnToBigInt } from "../../contracts/lsn.ts"
import { parsePostgresUrl } from "../shared/config.ts"
import { parseBound, type Bound } from "../replay/window.ts"

const count = (n: number) => n.toLocaleString("en")

/** A number flag that must lie in [min, max] (`exclusiveMin`: strictly above min). */
export const numberIn =
  (range: { readonly min: number; readonly max: number; readonly exclusiveMin?: boolean; readonly unit: string }) =>
  (flag: Flag.Flag<number>): Flag.Flag<number> =>
    Flag.filter(
      flag,
      (n) => (range.exclusiveMin ? n > range.min : n >= range.min) && n <= range.max,
      () => `${range.exclusiveMin ? "more than" : "at least"} ${count(range.min)} and at most ${count(range.max)} ${range.unit}`
    )

/** A comma-separated list of names from `allowed` (non-empty, no unknown name). */
export const namesFrom =
  (allowed: ReadonlyArray<string>, what: string) =>
  (flag: Flag.Flag<string>): Flag.Flag<ReadonlyArray<string>> =>
    Flag.filterMap(
      flag,
      (text) => {
        const names = text.split(",").map((t) => t.trim()).filter(Boolean)
        return names.length > 0 && names.every((n) => allowed.includes(n)) ? Option.some(names) : Option.none()
      },
      (text) => {
        const unknown = text.split(",").map((t) => t.trim()).filter((n) => n && !allowed.includes(n))
        return `a comma-separated list of ${allowed.join(", ")}${unknown.length > 0 ? ` (unknown ${what}: ${unknown.join(", ")})` : ""}`
      }
    )

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$/

/** A commit time (ISO, UTC unless it says otherwise) or, with `lsn`, also a commit LSN. */
export const boundFlag =
  (options: { readonly lsn: boolean }) =>
  (flag: Flag.Flag<string>): Flag.Flag<Bound> =>
    Flag.filterMap(
      flag,
      (text) => {
        const trimmed = text.trim()
        const bound = Result.try(() => parseBound(trimmed))
        if (Result.isFailure(bound)) return Option.none()
        if (bound.success.kind === "lsn") return options.lsn ? Option.some(bound.success) : Option.none()
        return ISO_TIME.test(trimmed) ? Option.some(bound.success) : Option.none()
      },
      () => (options.lsn ? "a commit time (e.g. 2024-02-23T12:00:00Z) or a commit LSN (e.g. 0/16B3748)" : "a time (e.g. 2024-02-23T12:00:00Z)")
    )

/** A time (ISO, UTC unless it says otherwise). */
export const timeFlag = (flag: Flag.Flag<string>): Flag.Flag<Date> =>
  Flag.map(boundFlag({ lsn: false })(flag), (bound) => (bound.kind === "time" ? bound.at : new Date(Number.NaN)))

/** `--to` must not be before `--from` (when both are times, or both LSNs). */
export const windowProblem = (from: Bound | undefined, to: Bound | undefined): string | undefined => {
  if (!from || !to) return undefined
  if (from.kind === "time" && to.kind === "time" && to.at.getTime() < from.at.getTime()) {
    return `--to ${to.at.toISOString()} is earlier than --from ${from.at.toISOString()}: the window would be empty`
  }
  if (from.kind === "lsn" && to.kind === "lsn" && lsnToBigInt(to.lsn) < lsnToBigInt(from.lsn)) {
    return `--to ${to.lsn} is before --from ${from.lsn}: the window would be empty`
  }
  return undefined
}

/** A Command.validate check from a problem finder. */
export const validation = <A>(problem: (input: A) => string | undefined) => (input: A) => {
  const message = problem(input)
  return message ? Effect.fail(new CliError.ValidationError({ message })) : Effect.void
}

/** A PostgreSQL URL (checked without echoing it: it holds a password). */
export const postgresUrlFlag = (flag: Flag.Flag<string>): Flag.Flag<string> =>
  Flag.filterMap(
    flag,
    (text) => Result.getSuccess(parsePostgresUrl(text)),
    (text) => Result.match(parsePostgresUrl(text), { onSuccess: () => "", onFailure: (problem) => problem.replace(/^expected /, "") })
  )

/** Non-empty text of the given shape. */
export const textMatching =
  (pattern: RegExp, expected: string) =>
  (flag: Flag.Flag<string>): Flag.Flag<string> =>
    Flag.filter(flag, (text) => pattern.test(text), () => expected)
