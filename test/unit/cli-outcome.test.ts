import { Cause, Exit } from "effect"
import { CliError } from "effect/cli"
import { describe, expect, it } from "vitest"
import { commandLabel, describeExit, describeFailure, ReportedFailure, UsageError } from "../../services/cli/outcome.ts"
import { ConfigurationError, ConfigurationErrors } from "../../services/shared/config.ts"
import { explainConnectionError } from "../../services/shared/database-connection.ts"

describe("how a command ends", () => {
  it("maps success, signals and interruptions to 0 and 128 + the signal", () => {
    expect(describeExit(Exit.succeed(undefined))).toEqual({ code: 0 })
    expect(describeExit(Exit.succeed(undefined), "SIGTERM")).toEqual({ code: 143 })
    expect(describeExit(Exit.failCause(Cause.interrupt()), "SIGHUP")).toEqual({ code: 129 })
    expect(describeExit(Exit.failCause(Cause.interrupt()))).toEqual({ code: 130 })
  })

  it("treats invalid arguments and configuration as usage (2), printed once", () => {
    const parse = new CliError.ShowHelp({ commandPath: ["totes", "status"], errors: [new CliError.InvalidValue({ option: "timeout", value: "-1", expected: "more than 0", kind: "flag" })] })
    expect(describeExit(Exit.fail(parse))).toEqual({ code: 2 }) // the CLI has printed it
    expect(describeExit(Exit.fail(new CliError.ShowHelp({ commandPath: ["totes"], errors: [] })))).toEqual({ code: 0 })
    const config = new ConfigurationError({ variable: "TOTES_METRICS", message: 'TOTES_METRICS: "file" is not accepted: expected one of stdout, stderr, off' })
    expect(describeExit(Exit.fail(config))).toEqual({ code: 2, message: config.message })
    // read synchronously inside a handler, a configuration error is a defect: still a usage error, no stack
    expect(describeExit(Exit.die(config))).toEqual({ code: 2, message: config.message })
    expect(describeFailure(new UsageError("--to is before --from"))).toEqual({ code: 2, message: "--to is before --from" })
    const second = new ConfigurationError({ variable: "TOTES_LOG_LEVEL", message: 'TOTES_LOG_LEVEL: "verbose" is not accepted: expected one of debug, info, warn, error, off' })
    expect(describeExit(Exit.fail(ConfigurationErrors.of([config, second])))).toEqual({ code: 2, message: `${config.message}\n${second.message}` })
  })

  it("prints a failure as one line with secrets masked, and nothing more for one already reported", () => {
    const connection = explainConnectionError("warehouse", "postgres://u:pw@h/db", Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:5432"), { code: "ECONNREFUSED" }))
    expect(describeExit(Exit.fail(connection))).toEqual({ code: 1, message: connection!.message })
    expect(describeExit(Exit.fail(new Error("source database is not ready for capture:\n  - wal_level is replica\n  - postgres://u:pw@h/db")))).toEqual({
      code: 1,
      message: "source database is not ready for capture: - wal_level is replica - postgres://u:[REDACTED]@h/db"
    })
    expect(describeExit(Exit.fail(new CliError.UserError({ cause: new Error("verify: 3 row(s) differ") })))).toEqual({ code: 1, message: "verify: 3 row(s) differ" })
    expect(describeExit(Exit.fail(new ReportedFailure("logged already")))).toEqual({ code: 1 })
  })

  it("says an unexpected error is one, keeping its stack for TOTES_LOG_LEVEL=debug", () => {
    const outcome = describeExit(Exit.die(new TypeError("cannot read properties of undefined")))
    expect(outcome.code).toBe(1)
    expect(outcome.message).toBe("unexpected error: cannot read properties of undefined (TOTES_LOG_LEVEL=debug prints the stack)")
    expect(outcome.stack).toMatch(/^TypeError: cannot read properties of undefined\n\s+at /)
  })

  it("labels the line with the command", () => {
    expect(commandLabel(["replay", "--tables", "x"])).toBe("totes replay")
    expect(commandLabel(["source", "load", "./dir"])).toBe("totes source load")
    expect(commandLabel(["--help"])).toBe("totes")
  })
})
