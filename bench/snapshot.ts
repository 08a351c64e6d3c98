/**
 * Bulk initial snapshot: a source table of BENCH_ROWS sales orders (default 1,000,000) taken by
 * the reader's initial snapshot (COPY chunks into the lake, one pointer per chunk on a 4-shard
 * stream) and merged by the consumer, from the reader's start until the warehouse holds every
 * row (mirror and fact history) — next to `\copy sales_order to` (COPY … TO STDOUT read by a
 * client, best of three) of the same rows in the same run.
 *
 *   node --import tsx bench/snapshot.ts        (BENCH_ROWS=200000 for a quicker run; BENCH_CHUNK_ROWS=100000)
 *
 * A second reference: the very rows the snapshot wrote (mirror, fact history, dimensions) loaded
 * with COPY into a fresh warehouse of the same schema — what writing them costs PostgreSQL at
 * least, whatever computes them.
 *
 * Exactness: every star-schema table of the warehouse hashed against the independent derivation
 * from the source (test/fixtures/derive-star-schema.ts), and the fact history checked to hold
 * exactly one 'r' row per source row.
 */
import { Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import pg from "pg"
import { to as copyTo } from "pg-copy-streams"
import { consumerFromEnv, migrateFromEnv } from "../services/consumer/main.ts"
import { readerFromEnv } from "../services/reader/main.ts"
import { metrics, nullSink } from "../services/shared/metrics.ts"
import { DERIVATIONS, STAR_COLUMNS } from "../test/fixtures/derive-star-schema.ts"
import { initSourceSchema } from "../tools/source/totesys-db.ts"
import { copyWarehouseRows, createDatabase } from "./copy-reference.ts"
import { perSecond, seconds, withStack } from "./support.ts"

metrics.setSink(nullSink) // the figures are printed below; no EMF lines in between

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000)
const CHUNK_ROWS = Number(process.env.BENCH_CHUNK_ROWS ?? 100_000)
const count = (n: number) => n.toLocaleString("en-GB")

const connect = async (url: string) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  return client
}

/** One of everything a sales order references, then ROWS sales orders with varied values. */
const buildSource = async (client: pg.Client) => {
  await initSourceSchema(client)
  await client.query(`
    INSERT INTO address (address_line_1, city, postal_code, country, phone, last_updated) VALUES ('1 Bench Road', 'Leeds', 'LS1 1AA', 'UK', '0113 000', now());
    INSERT INTO department (department_name, location, last_updated) VALUES ('Sales', 'Leeds', now());
    INSERT INTO staff (first_name, last_name, department_id, email_address, last_updated) VALUES ('Ada', 'Bench', 1, 'ada@example.com', now());
    INSERT INTO counterparty (counterparty_legal_name, legal_address_id, last_updated) VALUES ('Bench Ltd', 1, now());
    INSERT INTO currency (currency_code, last_updated) VALUES ('GBP', now());
    INSERT INTO design (design_name, file_location, file_name, last_updated) VALUES ('Bench', '/designs', 'bench.json', now())`)
  await client.query(
    `INSERT INTO sales_order (created_at, last_updated, design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
                              agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
     SELECT t, t + interval '1 hour 0.125 seconds', 1, 1, 1, 1 + g % 90000, round(1 + (g % 99991) / 100.0, 2), 1,
            to_char(date '2022-11-03' + g % 700, 'YYYY-MM-DD'), to_char(date '2022-11-10' + g % 700, 'YYYY-MM-DD'), 1
     FROM generate_series(1, $1::int) g, LATERAL (SELECT timestamp '2022-11-03 08:00' + g * interval '31.337 seconds' AS t) x`,
    [ROWS]
  )
  await client.query("VACUUM ANALYZE sales_order")
}

/** `\copy sales_order to …`: COPY … TO STDOUT read to the end by a client; milliseconds and bytes. */
const copyOut = async (client: pg.Client): Promise<{ ms: number; bytes: number }> => {
  let bytes = 0
  const started = performance.now()
  await pipeline(
    client.query(copyTo("COPY sales_order TO STDOUT")),
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        bytes += chunk.length
        done()
      }
    })
  )
  return { ms: performance.now() - started, bytes }
}

/** md5 of a query's rows as Postgres prints them, in a stable order. */
const digest = async (client: pg.Client, sql: string) =>
  (await client.query(`SELECT count(*)::int AS n, md5(coalesce(string_agg(q::text, E'\\n' ORDER BY q::text), '')) AS h FROM (${sql}) q`)).rows[0] as { n: number; h: string }

await withStack(async (stack) => {
  const stamp = Date.now()
  const env: Record<string, string> = {
    ...stack.env,
    SOURCE_DATABASE_URL: await createDatabase(stack.env.SOURCE_DATABASE_URL!, `bench_snapshot_src_${stamp}`),
    WAREHOUSE_DATABASE_URL: await createDatabase(stack.env.SOURCE_DATABASE_URL!, `bench_snapshot_wh_${stamp}`),
    TOTES_SLOT: `bench_snapshot_${stamp}`,
    TOTES_PUBLICATION: `bench_snapshot_${stamp}`
  }
  const source = await connect(env.SOURCE_DATABASE_URL!)
  console.log(`building a source of ${count(ROWS)} sales orders…`)
  await buildSource(source)

  const references = [await copyOut(source), await copyOut(source), await copyOut(source)]
  const reference = references.reduce((a, b) => (a.ms <= b.ms ? a : b))
  console.log(`\\copy sales_order to: ${references.map((r) => seconds(r.ms)).join(" / ")} s (best kept), ${(reference.bytes / 1048576).toFixed(1)} MiB`)

  await migrateFromEnv(env)
  const warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
  const reader = readerFromEnv(env, { heartbeatIntervalMs: 500, statusIntervalMs: 5_000, snapshotChunkRows: CHUNK_ROWS })
  const consumer = consumerFromEnv(env, { idleWaitMs: 50 })
  const stopConsumer = new AbortController()

  const started = performance.now()
  let readerDoneMs: number | undefined
  const readerRun = reader.start()
  readerRun.catch(() => {})
  const polling = consumer.poller.run(stopConsumer.signal)
  polling.catch(() => {})
  let lastLine = started
  for (;;) {
    if (reader.error) throw reader.error
    if (readerDoneMs === undefined && reader.stats.durableLsn !== null) readerDoneMs = performance.now() - started
    const { mirror, facts } = (
      await warehouse.query(
        "SELECT (SELECT count(*) FROM totes.mirror WHERE table_name = 'sales_order')::int AS mirror, (SELECT count(*) FROM fact_sales_order)::int AS facts"
      )
    ).rows[0] as { mirror: number; facts: number }
    if (mirror >= ROWS && facts >= ROWS && readerDoneMs !== undefined) break
    if (performance.now() - lastLine > 10_000) {
      lastLine = performance.now()
      console.log(`  … ${seconds(lastLine - started)} s: ${count(facts)} fact rows in the warehouse`)
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  const totalMs = performance.now() - started
  await reader.stop()
  stopConsumer.abort()
  await polling.catch(() => {})
  await consumer.close()

  // Exactness: every star table against the derivation from the source, and the history.
  const mismatches: Array<string> = []
  for (const [table, columns] of Object.entries(STAR_COLUMNS)) {
    if (table === "dim_currency") continue // currency_name comes from ISO 4217 data in JavaScript
    const read = table.startsWith("dim_") ? `SELECT ${columns.join(", ")} FROM ${table} WHERE NOT is_deleted` : `SELECT ${columns.join(", ")} FROM ${table}_current`
    const [expected, actual] = [await digest(source, DERIVATIONS[table]!), await digest(warehouse, read)]
    if (expected.n !== actual.n || expected.h !== actual.h) mismatches.push(`${table}: ${actual.n} rows (derivation ${expected.n}), md5 ${actual.h === expected.h ? "equal" : "differs"}`)
  }
  const history = (
    await warehouse.query("SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS ids, count(*) FILTER (WHERE change_op = 'r')::int AS r FROM fact_sales_order")
  ).rows[0] as { n: number; ids: number; r: number }
  if (history.n !== ROWS || history.ids !== ROWS || history.r !== ROWS) mismatches.push(`fact_sales_order history: ${JSON.stringify(history)}, expected ${ROWS} 'r' rows`)
  await warehouse.end()
  await source.end()
  const floor = await copyWarehouseRows(env.WAREHOUSE_DATABASE_URL!, stack.env.SOURCE_DATABASE_URL!)

  const ratio = ROWS / totalMs / (ROWS / reference.ms)
  console.log("")
  console.log(`| path | rows | seconds | rows/s |`)
  console.log(`|---|---:|---:|---:|`)
  console.log(`| \`\\copy sales_order to\` (COPY … TO STDOUT, reference) | ${count(ROWS)} | ${seconds(reference.ms)} | ${perSecond(ROWS, reference.ms)} |`)
  console.log(`| reader: initial snapshot durable (chunks in the lake, pointers on the stream) | ${count(ROWS)} | ${seconds(readerDoneMs!)} | ${perSecond(ROWS, readerDoneMs!)} |`)
  console.log(`| COPY of the warehouse rows the snapshot wrote (${count(floor.rows)} mirror and fact rows, dimensions, indexes, jsonb) into a fresh warehouse (second reference) | ${count(ROWS)} | ${seconds(floor.ms)} | ${perSecond(ROWS, floor.ms)} |`)
  console.log(`| initial snapshot → warehouse (mirror + fact history, chunks of ${count(CHUNK_ROWS)}) | ${count(ROWS)} | ${seconds(totalMs)} | ${perSecond(ROWS, totalMs)} |`)
  console.log("")
  console.log(`snapshot → warehouse / \\copy to: ${ratio.toFixed(3)}; second reference / \\copy to: ${(reference.ms / floor.ms).toFixed(3)}`)
  console.log(`exact: ${mismatches.length === 0 ? "yes (every star table equals the derivation; one 'r' fact row per source row)" : `NO\n  ${mismatches.join("\n  ")}`}`)
  if (mismatches.length > 0) process.exitCode = 1
})
