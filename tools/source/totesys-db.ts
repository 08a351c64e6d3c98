/**
 * The totesys source database: create the schema, load a snapshot folder of CSVs.
 */
import { createReadStream, existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { pipeline } from "node:stream/promises"
import pg from "pg"
import { from as copyFrom } from "pg-copy-streams"
import { PRIMARY_KEYS, TOTESYS_TABLES } from "../../contracts/totesys.ts"

const SCHEMA_SQL = readFileSync(new URL("./schema.sql", import.meta.url), "utf8")

/** Creates the totesys schema; fails if it already exists unless `replace` drops it first. */
export const initSourceSchema = async (client: pg.ClientBase, options: { replace?: boolean } = {}) => {
  if (options.replace) {
    await client.query(`DROP TABLE IF EXISTS ${[...TOTESYS_TABLES].reverse().map((t) => `"${t}"`).join(", ")} CASCADE`)
    await client.query(`DROP TYPE IF EXISTS "PaymentTypeName", "TransactionType"`)
  }
  await client.query(SCHEMA_SQL)
}

export const sourceSchemaExists = async (client: pg.ClientBase): Promise<boolean> => {
  const { rows } = await client.query(`SELECT to_regclass('public.payment') IS NOT NULL AS present`)
  return rows[0].present as boolean
}

/** Sets every table's sequence to its max id, as after a restore. */
export const resetSequences = async (client: pg.ClientBase) => {
  for (const table of TOTESYS_TABLES) {
    const key = PRIMARY_KEYS[table]
    await client.query(
      `SELECT setval(pg_get_serial_sequence($1, $2), GREATEST(COALESCE((SELECT max("${key}") FROM "${table}"), 0), 1), (SELECT count(*) > 0 FROM "${table}"))`,
      [`public."${table}"`, key]
    )
  }
}

export interface LoadReport {
  readonly table: string
  readonly rows: number
}

/**
 * Loads `<dir>/<table>.csv` for every table (header row, empty unquoted field = NULL) in FK
 * order inside one transaction, with every constraint on, then resets the sequences.
 */
export const loadCsvSnapshot = async (
  client: pg.ClientBase,
  dir: string,
  onTable: (report: LoadReport) => void = () => {}
): Promise<ReadonlyArray<LoadReport>> => {
  const missing = TOTESYS_TABLES.filter((t) => !existsSync(join(dir, `${t}.csv`)))
  if (missing.length > 0) throw new Error(`snapshot folder ${dir} lacks ${missing.map((t) => `${t}.csv`).join(", ")}`)
  const reports: Array<LoadReport> = []
  await client.query("BEGIN")
  try {
    for (const table of TOTESYS_TABLES) {
      const header = readFileSync(join(dir, `${table}.csv`), "utf8").split("\n", 1)[0]!.trim()
      const columns = header.split(",").map((c) => `"${c.replace(/"/g, "")}"`).join(", ")
      const copy = client.query(copyFrom(`COPY "${table}" (${columns}) FROM STDIN WITH (FORMAT csv, HEADER true)`))
      await pipeline(createReadStream(join(dir, `${table}.csv`)), copy)
      const report = { table, rows: Number(copy.rowCount) }
      reports.push(report)
      onTable(report)
    }
    await resetSequences(client)
    await client.query("COMMIT")
  } catch (error) {
    await client.query("ROLLBACK")
    throw error
  }
  return reports
}
