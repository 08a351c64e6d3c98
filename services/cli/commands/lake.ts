import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { s3Client } from "../../shared/aws-clients.ts"
import { LakeBucket, readConfig } from "../../shared/config.ts"
import { makeLakeStore } from "../../shared/lake-store.ts"
import { compactLake } from "../../lake/compact.ts"
import { readParquetEvents } from "../../lake/parquet-read.ts"
import { decodeRawLines } from "../../lake/raw.ts"
import { timeFlag, validation, windowProblem } from "../arguments.ts"
import { task } from "../effects.ts"

export const lakeFromEnv = () => makeLakeStore(readConfig(LakeBucket), s3Client())

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

const optionalTime = (name: string, description: string) => Flag.String(name).pipe(timeFlag, Flag.withDescription(description), Flag.optional)
const asBound = (at: Option.Option<Date>) => Option.getOrUndefined(Option.map(at, (at) => ({ kind: "time" as const, at })))

const ls = Command.make(
  "ls",
  { prefix: Flag.String("prefix").pipe(Flag.withDescription("Only keys starting with this (e.g. raw/2024/02/23/, parquet/)"), Flag.withDefault("")) },
  ({ prefix }) =>
    task(async () => {
      const objects = await run(lakeFromEnv().list(prefix))
      for (const o of objects) console.log(`${o.lastModified?.toISOString() ?? "-".padEnd(24)}  ${String(o.size).padStart(10)}  ${o.key}`)
      console.log(`${objects.length} objects, ${objects.reduce((n, o) => n + o.size, 0)} bytes`)
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
  task(async () => {
    const lake = lakeFromEnv()
    if (key.endsWith(".parquet")) {
      for (const event of await readParquetEvents(lake, key)) console.log(JSON.stringify(event))
      return
    }
    const body = await run(lake.get(key))
    if (key.endsWith(".gz")) for (const line of decodeRawLines(body)) console.log(line)
    else process.stdout.write(`${Buffer.from(body).toString("utf8")}\n`)
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
      const report = yield* task(() =>
        compactLake({
          lake: lakeFromEnv(),
          ...(from._tag === "Some" ? { from: from.value } : {}),
          ...(to._tag === "Some" ? { to: to.value } : {}),
          onRun: (m, ms) =>
            console.log(`run ${m.run}: ${m.inputs.length} raw objects → ${m.outputs.length} Parquet files (${m.outputs.reduce((n, o) => n + o.rows, 0)} events) in ${ms} ms`)
        })
      )
      yield* Console.log(
        report.runs.length === 0
          ? `nothing to compact (${report.alreadyCompacted} raw objects already compacted)`
          : `compacted ${report.inputs} raw objects (${report.inputBytes} bytes, ${report.events} events) into ${report.outputs} Parquet files ` +
              `(${report.outputBytes} bytes) in ${report.runs.length} run(s), ${report.ms} ms; ${report.alreadyCompacted} were already compacted`
      )
    })
).pipe(
  Command.validate(validation(({ from, to }) => windowProblem(asBound(from), asBound(to)))),
  Command.withDescription("Compact raw events into Parquet per source table and day (skips what a manifest already lists)")
)

export const lakeCommand = Command.make("lake").pipe(
  Command.withDescription("The S3 lake: list, print, compact"),
  Command.withSubcommands([ls, cat, compact])
)
