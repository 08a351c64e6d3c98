/**
 * The reference the lake benchmarks compare with: the same rows loaded with COPY into plain
 * tables of the source's shape (no keys, no indexes) — the fastest way Postgres takes rows.
 */
import { Readable, Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import pg from "pg"
import { from as copyFrom, to as copyTo } from "pg-copy-streams"
import { migrateWarehouse } from "../services/warehouse/migrate.ts"
import { SOURCE_COLUMNS, TOTESYS_TABLES } from "../contracts/totesys.ts"
import { initSourceSchema } from "../tools/source/totesys-db.ts"
import { syntheticEvents } from "../test/support/synthetic-lake.ts"

export const databaseUrl = (base: string, name: string) => {
  const url = new URL(base)
  url.pathname = `/${name}`
  return url.toString()
}

export const createDatabase = async (base: string, name: string) => {
  const admin = new pg.Client({ connectionString: databaseUrl(base, "postgres") })
  await admin.connect()
  await admin.query(`CREATE DATABASE "${name}"`)
  await admin.end()
  return databaseUrl(base, name)
}

const csvValue = (value: unknown): string => {
  if (value === null || value === undefined) return ""
  if (typeof value === "boolean") return value ? "t" : "f"
  const text = typeof value === "string" ? value : JSON.stringify(value)
  return `"${text.replace(/"/g, '""')}"`
}

/** Every synthetic event's row image as CSV, per table (prepared before the clock starts). */
const csvByTable = (count: number): Map<string, Array<string>> => {
  const out = new Map<string, Array<string>>(TOTESYS_TABLES.map((t) => [t, []]))
  for (const event of syntheticEvents(count)) {
    const table = event.source.table as (typeof TOTESYS_TABLES)[number]
    const image = event.after ?? event.before
    if (!image) continue
    out.get(table)!.push(`${SOURCE_COLUMNS[table].map((c) => csvValue(image[c])).join(",")}\n`)
  }
  return out
}

/** COPYs the row images of the first `count` synthetic events; returns rows, time and table size. */
export const copyReference = async (baseUrl: string, count: number): Promise<{ rows: number; ms: number; bytes: number }> => {
  const url = await createDatabase(baseUrl, `bench_copy_${Date.now()}`)
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await initSourceSchema(client)
    for (const table of TOTESYS_TABLES) await client.query(`CREATE TABLE "copy_${table}" (LIKE "${table}")`)
    const csv = csvByTable(count)
    const rows = [...csv.values()].reduce((n, lines) => n + lines.length, 0)
    const started = performance.now()
    for (const [table, lines] of csv) {
      if (lines.length === 0) continue
      const columns = SOURCE_COLUMNS[table as (typeof TOTESYS_TABLES)[number]].map((c) => `"${c}"`).join(", ")
      const copy = client.query(copyFrom(`COPY "copy_${table}" (${columns}) FROM STDIN WITH (FORMAT csv)`))
      const source = async function* () {
        for (let i = 0; i < lines.length; i += 1_000) yield lines.slice(i, i + 1_000).join("")
      }
      await pipeline(source, copy as unknown as Writable)
    }
    const ms = performance.now() - started
    const size = await client.query(`SELECT sum(pg_total_relation_size(c.oid))::bigint AS bytes FROM pg_class c WHERE c.relname LIKE 'copy\\_%' AND c.relkind = 'r'`)
    return { rows, ms, bytes: Number(size.rows[0].bytes) }
  } finally {
    await client.end()
  }
}

/** Columns a table is copied with: all but serial record ids and the times the database stamps. */
const copiedColumns = async (client: pg.Client, schema: string, table: string): Promise<Array<string>> => {
  const { rows } = await client.query(
    `SELECT column_name FROM information_schema.columns
     WHERE table_schema = $1 AND table_name = $2 AND column_default IS NULL ORDER BY ordinal_position`,
    [schema, table]
  )
  return rows.map((r) => `"${r.column_name}"`)
}

/**
 * The second reference: the very rows a replay wrote (mirror, facts, dimensions, dim_date), read
 * back and loaded with COPY into a fresh warehouse of the same schema (keys and indexes included).
 * What writing that warehouse costs PostgreSQL at least, whatever computes the rows.
 */
export const copyWarehouseRows = async (fromUrl: string, baseUrl: string): Promise<{ rows: number; ms: number }> => {
  const source = new pg.Client({ connectionString: fromUrl })
  const target = new pg.Client({ connectionString: await createDatabase(baseUrl, `bench_floor_${Date.now()}`) })
  await source.connect()
  await target.connect()
  try {
    await migrateWarehouse(target)
    const tables: Array<[string, string]> = [
      ["totes", "mirror"],
      ...["dim_date", "dim_staff", "dim_location", "dim_currency", "dim_design", "dim_counterparty", "dim_payment_type", "dim_transaction"].map((t): [string, string] => ["public", t]),
      ...["fact_sales_order", "fact_purchase_order", "fact_payment"].map((t): [string, string] => ["public", t])
    ]
    const texts: Array<{ sql: string; chunks: Array<Buffer> }> = []
    for (const [schema, table] of tables) {
      const columns = (await copiedColumns(source, schema, table)).join(", ")
      const chunks: Array<Buffer> = []
      await pipeline(source.query(copyTo(`COPY "${schema}"."${table}" (${columns}) TO STDOUT`)), new Writable({ write: (chunk: Buffer, _, done) => (chunks.push(chunk), done()) }))
      texts.push({ sql: `COPY "${schema}"."${table}" (${columns}) FROM STDIN`, chunks })
    }
    const rows = (await source.query(`SELECT (SELECT count(*) FROM totes.mirror) + (SELECT count(*) FROM fact_sales_order) + (SELECT count(*) FROM fact_purchase_order) + (SELECT count(*) FROM fact_payment) AS n`)).rows[0].n
    const started = performance.now()
    for (const { sql, chunks } of texts) await pipeline(Readable.from(chunks), target.query(copyFrom(sql)) as unknown as Writable)
    return { rows: Number(rows), ms: performance.now() - started }
  } finally {
    await source.end()
    await target.end()
  }
}
