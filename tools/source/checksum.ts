/**
 * A content checksum of the 11 totesys tables, computed by the database: per table the row
 * count and the md5 of every row's text in primary-key order, and one md5 over all tables.
 * Two databases with the same checksum hold the same rows (ids, timestamps to the millisecond,
 * NULLs, money and enum values included).
 */
import type pg from "pg"
import { PRIMARY_KEYS, TOTESYS_TABLES, type TotesysTable } from "../../contracts/totesys.ts"
import { inTransaction } from "./sql.ts"

export interface TableChecksum {
  readonly rows: number
  readonly md5: string
}

export interface TotesysChecksum {
  readonly tables: Record<TotesysTable, TableChecksum>
  /** md5 over 'table:rows:md5' lines of all tables in TOTESYS_TABLES order. */
  readonly checksum: string
}

export const checksumTotesys = async (client: pg.ClientBase, tables: ReadonlyArray<TotesysTable> = TOTESYS_TABLES): Promise<TotesysChecksum> =>
  inTransaction(client, async () => {
    // Row text must not depend on the session's settings.
    await client.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    await client.query("SET LOCAL datestyle = 'ISO, YMD'")
    await client.query("SET LOCAL timezone = 'UTC'")
    await client.query("SET LOCAL extra_float_digits = 1")
    const sql = tables
      .map(
        (table) =>
          `SELECT '${table}' AS "table", count(*)::int AS rows, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t."${PRIMARY_KEYS[table]}"), '')) AS md5 FROM "${table}" t`
      )
      .join(" UNION ALL ")
    const { rows } = await client.query(sql)
    const result = {} as Record<TotesysTable, TableChecksum>
    for (const row of rows) result[row.table as TotesysTable] = { rows: row.rows, md5: row.md5 }
    const lines = tables.map((t) => `${t}:${result[t].rows}:${result[t].md5}`).join("\n")
    const { rows: total } = await client.query("SELECT md5($1::text) AS md5", [lines])
    return { tables: result, checksum: total[0].md5 as string }
  })
