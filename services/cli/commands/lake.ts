import { Console, Effect, Option } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import { s3Client } from "../../shared/s3-client.ts"
import { LakeBucket, readConfig } from "../../shared/config.ts"
import { makeLakeStore } from "../../shared/lake-store.ts"
import { compactLake } from "../../lake/compact.ts"
import { pullLake } from "../../lake/pull.ts"
import { EXAMPLE_QUERIES, exampleQuery } from "../../lake/queries.ts"
import { readParquetEvents } from "../../lake/parquet-read.ts"
import { decodeRawLines } from "../../lake/raw.ts"
import { timeFlag, validation, windowProblem } from "../arguments.ts"
import { task } from "../effects.ts"
import { ReportedFailure } from "../outcome.ts"
import { COMMAND_DESCRIPTIONS } from "../command-descriptions.ts"

export const lakeFromEnv = () => makeLakeStore(readConfig(LakeBucket), s3Client())

const optionalTime = (name: string, description: string) => Flag.String(name).pipe(timeFlag, Flag.withDescription(description), Flag.optional)
const asBound = (at: Option.Option<Date>) => Option.getOrUndefined(Option.map(at, (at) => ({ kind: "time" as const, at })))

const ls = Command.make(
  "ls",
  { prefix: Flag.String("prefix").pipe(Flag.withDescription("Only keys starting with this (e.g. raw/2024/02/23/, parquet/)"), Flag.withDefault("")) },
  ({ prefix }) =>
    Effect.gen(function* () {
      const objects = yield* lakeFromEnv().list(prefix)
      for (const o of objects) yield* Console.log(`${o.lastModified?.toISOString() ?? "-".padEnd(24)}  ${String(o.size).padStart(10)}  ${o.key}`)
      yield* Console.log(`${objects.length} objects, ${objects.reduce((n, o) => n + o.size, 0)} bytes`)
    })
).pipe(Command.withDescription("List lake objects"))

const cat = Command.make(
  "cat",
  {
    key: Argument.String("key").pipe(
      Argument.filter((key) => key.trim().length > 0 && !key.startsWith("/"), () => "an object key such as raw/2024/02/23/12/…ndjson.gz (see totes lake ls)"),
      Argument.withDescription("Object key (raw NDJSON, compacted Parquet, or JSON)")
    )
  },
  ({ key }) =>
    Effect.gen(function* () {
      const lake = lakeFromEnv()
      if (key.endsWith(".parquet")) {
        for (const event of yield* readParquetEvents(lake, key)) yield* Console.log(JSON.stringify(event))
        return
      }
      const body = yield* lake.get(key)
      if (key.endsWith(".gz")) for (const line of decodeRawLines(body)) yield* Console.log(line)
      else yield* Console.log(Buffer.from(body).toString("utf8"))
    })
).pipe(Command.withDescription("Print an object's records, one JSON per line (Parquet files: the change events they hold)"))

const compact = Command.make(
  "compact",
  {
    from: optionalTime("from", "Only raw objects of this hour or later (UTC time)"),
    to: optionalTime("to", "Only raw objects of this hour or earlier (UTC time)")
  },
  ({ from, to }) =>
    Effect.gen(function* () {
      const report = yield* compactLake({
        lake: lakeFromEnv(),
        ...(from._tag === "Some" ? { from: from.value } : {}),
        ...(to._tag === "Some" ? { to: to.value } : {}),
        onRun: (m, ms) =>
          console.log(`run ${m.run}: ${m.inputs.length} raw objects → ${m.outputs.length} Parquet files (${m.outputs.reduce((n, o) => n + o.rows, 0)} events) in ${ms} ms`)
      })
      yield* Console.log(
        report.runs.length === 0
          ? `nothing to compact (${report.alreadyCompacted} raw objects already compacted)`
          : `compacted ${report.inputs} raw objects (${report.inputBytes} bytes, ${report.events} events) into ${report.outputs} Parquet files ` +
              `(${report.outputBytes} bytes) in ${report.runs.length} run(s), ${report.ms} ms; ${report.alreadyCompacted} were already compacted`
      )
      const left = report.unresolved.reduce((n, object) => n + object.ids.length, 0)
      if (left > 0) {
        yield* Console.log(
          `left ${left} event(s) of ${report.unresolved.length} raw object(s) out: their claim check or snapshot chunk object is missing ` +
            `(recorded in the manifest; replay --source parquet reports them as replay from raw does):`
        )
        for (const object of report.unresolved) yield* Console.log(`  ${object.key}: ${object.ids.join(", ")}`)
      }
      if (report.unreadable.length > 0) {
        yield* Console.error(`totes lake compact: ${report.unreadable.length} raw object(s) are not gzip NDJSON and were left uncompacted (a replay over them refuses):`)
        for (const object of report.unreadable) yield* Console.error(`  ${object.reason}`)
        return yield* Effect.fail(new ReportedFailure("unreadable raw objects"))
      }
    })
).pipe(
  Command.validate(validation(({ from, to }) => windowProblem(asBound(from), asBound(to)))),
  Command.withDescription("Compact raw events into Parquet per source table and day (skips what a manifest already lists)")
)

const dirFlag = Flag.String("dir").pipe(Flag.withDescription("Local folder of the pulled lake (object keys become paths)"), Flag.withDefault(".totes/lake"))

const pull = Command.make(
  "pull",
  {
    prefix: Flag.String("prefix").pipe(Flag.withDescription("Objects under this prefix (parquet/ for the per-table Parquet, raw/ for the raw records)"), Flag.withDefault("parquet/")),
    dir: dirFlag
  },
  ({ prefix, dir }) =>
    Effect.gen(function* () {
      const report = yield* pullLake(lakeFromEnv(), { prefix, dir }).pipe(Effect.mapError((error) => new CliError.UserError({ cause: new Error(error.message) })))
      yield* Console.log(`${report.downloaded} objects (${report.bytes} bytes) downloaded to ${report.dir}, ${report.skipped} already there`)
    })
).pipe(Command.withDescription("Copy lake objects under a prefix into a local folder (only what is new), for local queries"))

/** Rows as an aligned text table. */
const formatTable = (columns: ReadonlyArray<string>, rows: ReadonlyArray<Record<string, unknown>>): string => {
  const text = (value: unknown) => (value === null || value === undefined ? "" : typeof value === "object" ? JSON.stringify(value) : String(value))
  const cells = rows.map((row) => columns.map((column) => text(row[column])))
  const widths = columns.map((column, index) => Math.max(column.length, ...cells.map((row) => row[index]!.length)))
  const line = (values: ReadonlyArray<string>) => values.map((value, index) => value.padEnd(widths[index]!)).join("  ").trimEnd()
  return [line(columns), line(widths.map((width) => "-".repeat(width))), ...cells.map(line), `(${rows.length} rows)`].join("\n")
}

const query = Command.make(
  "query",
  {
    sql: Argument.String("sql").pipe(Argument.withDescription("SQL over the views: one per source table, and raw"), Argument.optional),
    named: Flag.Literals("named", EXAMPLE_QUERIES.map((q) => q.id)).pipe(Flag.withDescription("Run one of the example queries (the Athena named queries)"), Flag.optional),
    param: Flag.String("param").pipe(Flag.withDescription("A value for the query's next ? parameter"), Flag.atLeast(0)),
    json: Flag.Boolean("json").pipe(Flag.withDescription("One JSON object per row"), Flag.withDefault(false)),
    dir: dirFlag
  },
  ({ sql, named, param, json, dir }) =>
    task(async () => {
      if ((sql._tag === "Some") === (named._tag === "Some")) throw new Error("give either SQL or --named <query>")
      const text = named._tag === "Some" ? exampleQuery(named.value).sql : sql._tag === "Some" ? sql.value : ""
      // DuckDB is a development dependency, loaded only here (tools/ is not in the production image).
      const { openLocalLake } = await import("../../../tools/lake/duckdb.ts")
      const lake = await openLocalLake(dir)
      try {
        if (lake.views.length === 0) throw new Error(`no lake tables under ${lake.dir}: run 'totes lake pull' (and 'totes lake pull --prefix raw/') first`)
        const result = await lake.query(text, param)
        if (json) for (const row of result.rows) console.log(JSON.stringify(row))
        else console.log(formatTable(result.columns.map((c) => c.name), result.rows))
      } finally {
        lake.close()
      }
    })
).pipe(Command.withDescription("Query a pulled lake folder with DuckDB: the same tables and example queries as Athena (development tooling)"))

export const lakeCommand = Command.make("lake").pipe(
  Command.withDescription(COMMAND_DESCRIPTIONS.lake),
  Command.withSubcommands([ls, cat, compact, pull, query])
)
