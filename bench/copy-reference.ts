/**
 * The reference the lake benchmarks compare with: the same rows loaded with COPY into plain
 * tables of the source's shape (no keys, no indexes) — the fastest way Postgres takes rows.
 */
import { Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import pg from "pg"
import { from as copyFrom } from "pg-copy-streams"
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
