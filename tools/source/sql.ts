/** Small SQL helpers for the source tools: transactions and batched, parameterised inserts. */
import type pg from "pg"
import type { TotesysTable } from "../../contracts/totesys.ts"
import { COLUMNS, sqlValues } from "./model.ts"

/** PostgreSQL allows at most 65,535 parameters in one statement. */
const MAX_PARAMETERS = 65_535

/** Runs `body` between BEGIN and COMMIT (ROLLBACK and rethrow on failure). */
export const inTransaction = async <A>(client: pg.ClientBase, body: () => Promise<A>): Promise<A> => {
  await client.query("BEGIN")
  try {
    const result = await body()
    await client.query("COMMIT")
    return result
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {})
    throw error
  }
}

/** `INSERT INTO "<table>" (<columns>) VALUES ($1, …), (…)` for `rowCount` rows. */
export const insertStatement = (table: TotesysTable, rowCount: number, returning?: string): string => {
  const columns = COLUMNS[table]
  const tuples: Array<string> = []
  for (let r = 0; r < rowCount; r++) {
    const base = r * columns.length
    tuples.push(`(${columns.map((_, c) => `$${base + c + 1}`).join(", ")})`)
  }
  return `INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(", ")}) VALUES ${tuples.join(", ")}${returning ? ` RETURNING "${returning}"` : ""}`
}

/** Inserts in-memory rows (all columns, ids included) with multi-row parameterised INSERTs. */
export const insertRows = async (
  client: pg.ClientBase,
  table: TotesysTable,
  rows: ReadonlyArray<object>,
  batchSize = 1_000
): Promise<number> => {
  const width = COLUMNS[table].length
  const size = Math.max(1, Math.min(batchSize, Math.floor(MAX_PARAMETERS / width)))
  let inserted = 0
  for (let start = 0; start < rows.length; start += size) {
    const batch = rows.slice(start, start + size)
    const result = await client.query(insertStatement(table, batch.length), batch.flatMap((row) => sqlValues(table, row)))
    inserted += result.rowCount ?? 0
  }
  return inserted
}
