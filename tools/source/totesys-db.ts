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

/** A snapshot CSV that cannot be loaded: the file, the line when known, and why. */
export class CsvLoadError extends Error {
  override readonly name = "CsvLoadError"
}

/** The header's column names, or why the file cannot be loaded (checked before the database is touched). */
const readHeader = (path: string, file: string): Array<string> => {
  const first = readFileSync(path, "utf8").split("\n", 1)[0]!.replace(/^\uFEFF/, "").trim()
  if (first === "") throw new CsvLoadError(`${file}: the file is empty or its first line is blank; expected a header row with the table's column names`)
  const columns = first.split(",").map((c) => c.trim().replace(/^"(.*)"$/, "$1"))
  const blank = columns.findIndex((c) => c === "")
  if (blank >= 0) throw new CsvLoadError(`${file} line 1: column ${blank + 1} of the header has no name`)
  return columns
}

const tableColumns = async (client: pg.ClientBase, table: string): Promise<Array<string>> =>
  (await client.query(`SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`, [table])).rows.map((r) => r.column_name as string)

/** A COPY error as `file line N: message (column c)`, from PostgreSQL's context (`COPY t, line N, column c: …`). */
const copyError = (file: string, error: unknown): CsvLoadError => {
  const e = error as { message?: string; where?: string; detail?: string }
  const at = /COPY [^,]+, line (\d+)(?:, column ([^:]+))?/.exec(e.where ?? "")
  const detail = e.detail ? ` (${e.detail})` : ""
  const column = at?.[2] ? ` (column ${at[2]})` : ""
  return new CsvLoadError(`${file}${at ? ` line ${at[1]}` : ""}: ${e.message ?? String(error)}${column}${detail}`, { cause: error })
}

/**
 * Loads `<dir>/<table>.csv` for every table (header row, empty unquoted field = NULL) in FK
 * order, with every constraint on, and resets the sequences: all or nothing, in one transaction
 * that also creates the schema when absent (`replace`: drops an existing one first). A bad file
 * is named with its line; the source is left as it was.
 */
export const loadCsvSnapshot = async (
  client: pg.ClientBase,
  dir: string,
  onTable: (report: LoadReport) => void = () => {},
  options: { readonly replace?: boolean } = {}
): Promise<ReadonlyArray<LoadReport>> => {
  const missing = TOTESYS_TABLES.filter((t) => !existsSync(join(dir, `${t}.csv`)))
  if (missing.length > 0) throw new Error(`snapshot folder ${dir} lacks ${missing.map((t) => `${t}.csv`).join(", ")}`)
  const headers = new Map(TOTESYS_TABLES.map((table) => [table, readHeader(join(dir, `${table}.csv`), `${table}.csv`)]))
  const reports: Array<LoadReport> = []
  await client.query("BEGIN")
  try {
    if (options.replace || !(await sourceSchemaExists(client))) await initSourceSchema(client, { replace: options.replace ?? false })
    for (const table of TOTESYS_TABLES) {
      const file = `${table}.csv`
      const header = headers.get(table)!
      const known = await tableColumns(client, table)
      const unknown = header.filter((c) => !known.includes(c))
      if (unknown.length > 0) throw new CsvLoadError(`${file} line 1: unknown column(s) ${unknown.join(", ")}; ${table} has ${known.join(", ")}`)
      const copy = client.query(copyFrom(`COPY "${table}" (${header.map((c) => `"${c}"`).join(", ")}) FROM STDIN WITH (FORMAT csv, HEADER true)`))
      try {
        await pipeline(createReadStream(join(dir, file)), copy)
      } catch (error) {
        throw copyError(file, error)
      }
      const report = { table, rows: Number(copy.rowCount) }
      reports.push(report)
      onTable(report)
    }
    await resetSequences(client)
    await client.query("COMMIT")
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {})
    throw error
  }
  return reports
}
