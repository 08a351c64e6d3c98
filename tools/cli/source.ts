import { resolve } from "node:path"
import { Console, Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type pg from "pg"
import { connectClient } from "../../services/shared/database-connection.ts"
import { readConfig, reveal, SourceDatabaseUrl } from "../../services/shared/config.ts"
import { checksumTotesys } from "../source/checksum.ts"
import { DEFAULT_DAYS, generateTotesys } from "../source/generate.ts"
import { DEFAULT_MIX, REAL_MIX, simulate, type SimulationReport } from "../source/simulate.ts"
import { CsvLoadError, initSourceSchema, loadCsvSnapshot, sourceSchemaExists } from "../source/totesys-db.ts"
import { numberIn, timeFlag } from "../../services/cli/arguments.ts"
import { task, untilSignal } from "../../services/cli/effects.ts"
import { COMMAND_DESCRIPTIONS } from "../../services/cli/command-descriptions.ts"

export const withSourceClient = <A>(work: (client: pg.Client) => Promise<A>) =>
  task(async () => {
    const client = await connectClient("source", reveal(readConfig(SourceDatabaseUrl)), { application_name: "totes-cli" })
    try {
      return await work(client)
    } finally {
      await client.end()
    }
  })

const replace = Flag.Boolean("replace").pipe(Flag.withDescription("Drop an existing totesys schema first"), Flag.withDefault(false))

const init = Command.make("init", { replace }, ({ replace }) =>
  Effect.gen(function* () {
    yield* withSourceClient(async (client) => {
      if (!replace && (await sourceSchemaExists(client))) throw new Error("the source already has the totesys tables (use --replace to recreate them)")
      await initSourceSchema(client, { replace })
    })
    yield* Console.log("created the totesys schema (11 tables, 2 enums)")
  })
).pipe(Command.withDescription("Create the totesys source schema in SOURCE_DATABASE_URL"))

const load = Command.make(
  "load",
  { dir: Argument.Directory("csv-dir", { mustExist: true }).pipe(Argument.withDescription("Folder with one <table>.csv per totesys table")), replace },
  ({ dir, replace }) =>
    withSourceClient(async (client) => {
      const started = Date.now()
      await loadCsvSnapshot(client, resolve(dir), (r) => console.log(`  ${r.table.padEnd(15)} ${String(r.rows).padStart(8)} rows`), { replace }).catch((error) => {
        if (error instanceof CsvLoadError) throw new CsvLoadError(`${error.message}; nothing was loaded (one transaction: the source is as it was)`)
        throw error
      })
      console.log(`loaded ${resolve(dir)} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    })
).pipe(Command.withDescription("Load a snapshot folder of CSVs into the source (FK order, constraints on, sequences reset)"))

const seed = Flag.String("seed").pipe(Flag.withDescription("Seed: the same seed gives the same data"), Flag.withDefault("1"))

const generate = Command.make(
  "generate",
  {
    seed,
    days: Flag.Int("days").pipe(numberIn({ min: 1, max: 3_650, unit: "days" }), Flag.withDescription("Days of history to generate"), Flag.withDefault(DEFAULT_DAYS)),
    until: Flag.String("until").pipe(timeFlag, Flag.withDescription("End of the history (UTC, e.g. 2024-11-15T15:00:00); default: a fixed date"), Flag.optional),
    replace
  },
  ({ seed, days, until, replace }) =>
    withSourceClient(async (client) => {
      const report = await generateTotesys(client, {
        seed,
        days,
        replace,
        ...(until._tag === "Some" ? { until: until.value } : {}),
        onTable: (r) => console.log(`  ${r.table.padEnd(15)} ${String(r.rows).padStart(8)} rows`)
      })
      const { checksum } = await checksumTotesys(client)
      console.log(`generated ${Object.values(report.rows).reduce((a, b) => a + b, 0)} rows (seed ${seed}) in ${report.ms} ms; checksum ${checksum}`)
    })
).pipe(Command.withDescription("Fill the source with a deterministic synthetic totesys (the real one's shape and quirks)"))

export const printSimulationReport = (report: SimulationReport) => {
  const stoppedBy = report.stoppedBy === "connection-lost" ? "a lost connection" : report.stoppedBy
  console.log(`${report.transactions} transactions, ${report.rowChanges} row changes in ${(report.wallMs / 1000).toFixed(1)} s (stopped by ${stoppedBy})`)
  for (const [table, counts] of Object.entries(report.tables)) {
    if (counts.insert + counts.update + counts.delete > 0) console.log(`  ${table.padEnd(15)} +${counts.insert} ~${counts.update} -${counts.delete}`)
  }
  console.log(`  kinds: ${Object.entries(report.kinds).map(([k, n]) => `${k}=${n}`).join(" ")}`)
}

const simulateCommand = Command.make(
  "simulate",
  {
    seed,
    rate: Flag.Finite("rate").pipe(
      numberIn({ min: 0, max: 100_000, unit: "transactions per second" }),
      Flag.withDescription("Transactions per second (0 = as fast as possible)"),
      Flag.withDefault(10)
    ),
    duration: Flag.Finite("duration").pipe(
      numberIn({ min: 0, exclusiveMin: true, max: 31_536_000, unit: "seconds" }),
      Flag.withDescription("Stop after this many seconds (default: until Ctrl-C)"),
      Flag.optional
    ),
    transactions: Flag.Int("transactions").pipe(
      numberIn({ min: 1, max: 1_000_000_000, unit: "transactions" }),
      Flag.withDescription("Stop after this many transactions"),
      Flag.optional
    ),
    mix: Flag.Literals("mix", ["default", "real"]).pipe(
      Flag.withDescription("real = only what totesys does today; default = that plus deletes, multi-table batches and dimension updates"),
      Flag.withDefault("default")
    )
  },
  ({ seed, rate, duration, transactions, mix }) =>
    untilSignal(async (signal) => {
      const client = await connectClient("source", reveal(readConfig(SourceDatabaseUrl)), { application_name: "totes-simulate" })
      try {
        const report = await simulate(client, {
          seed,
          rate: rate <= 0 ? Infinity : rate,
          mix: mix === "real" ? REAL_MIX : DEFAULT_MIX,
          signal,
          ...(duration._tag === "Some" ? { durationMs: duration.value * 1000 } : {}),
          ...(transactions._tag === "Some" ? { maxTransactions: transactions.value } : {})
        })
        printSimulationReport(report)
        if (report.stoppedBy === "connection-lost") {
          throw new Error(
            `the connection to the source was lost (${report.error}); the report above is what was committed` +
              (report.lastCommitInDoubt ? ", except that the transaction being committed when it was lost may have been committed too" : "")
          )
        }
      } finally {
        await client.end().catch(() => {})
      }
    })
).pipe(Command.withDescription("Write a realistic workload to the source (orders, payment job, in-place edits, deletes, dimension updates) and report it"))

export const sourceCommand = Command.make("source").pipe(
  Command.withDescription(COMMAND_DESCRIPTIONS.source),
  Command.withSubcommands([init, load, generate, simulateCommand])
)
