import { resolve } from "node:path"
import { Console, Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import pg from "pg"
import { readConfig, reveal, SourceDatabaseUrl } from "../../shared/config.ts"
import { initSourceSchema, loadCsvSnapshot, sourceSchemaExists } from "../../source/totesys-db.ts"
import { task } from "../effects.ts"

export const withSourceClient = <A>(work: (client: pg.Client) => Promise<A>) =>
  task(async () => {
    const client = new pg.Client({ connectionString: reveal(readConfig(SourceDatabaseUrl)), application_name: "totes-cli" })
    await client.connect()
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
  { dir: Argument.String("csv-dir").pipe(Argument.withDescription("Folder with one <table>.csv per totesys table")), replace },
  ({ dir, replace }) =>
    withSourceClient(async (client) => {
      if (replace || !(await sourceSchemaExists(client))) await initSourceSchema(client, { replace })
      const started = Date.now()
      await loadCsvSnapshot(client, resolve(dir), (r) => console.log(`  ${r.table.padEnd(15)} ${String(r.rows).padStart(8)} rows`))
      console.log(`loaded ${resolve(dir)} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    })
).pipe(Command.withDescription("Load a snapshot folder of CSVs into the source (FK order, constraints on, sequences reset)"))

export const sourceCommand = Command.make("source").pipe(
  Command.withDescription("The totesys source database: schema, snapshots, synthetic data, workload"),
  Command.withSubcommands([init, load])
)
