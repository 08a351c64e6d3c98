/**
 * The pipeline against the source's own write rate, on the same machine in the same run.
 *
 *   node --import tsx bench/throughput.ts     (BENCH_CLIENTS=6, BENCH_STEP_S=60, BENCH_MAX_S=20)
 *
 * 1. The source's maximum write rate for a realistic multi-client workload, with no pipeline: six
 *    clients each committing orders as fast as they can (one sales order, its transaction and its
 *    payment per transaction, as totesys does) plus the payment job marking payments paid.
 * 2. The whole pipeline (reader, consumer, archiver: three processes, as `totes run` starts them)
 *    under steady load at fractions of that rate, one step each BENCH_STEP_S seconds: the lag of the
 *    warehouse (now − consistent_through_at, sampled twice a second) and the p99 commit → warehouse
 *    latency of the step's fact rows. The sustainable rate is the highest step whose lag stayed
 *    under 5 s for the whole step.
 * 3. Exactness: once caught up, the warehouse equals an independent derivation of the source.
 */
import { spawn, type ChildProcess } from "node:child_process"
import pg from "pg"
import { metrics, nullSink } from "../services/shared/metrics.ts"
import { generateTotesys } from "../tools/source/generate.ts"
import { deriveStarSchema, readStarSchema } from "../test/fixtures/derive-star-schema.ts"
import { withStack } from "./support.ts"

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 6)
const STEP_S = Number(process.env.BENCH_STEP_S ?? 60)
const MAX_S = Number(process.env.BENCH_MAX_S ?? 20)
const FRACTIONS = (process.env.BENCH_FRACTIONS ?? "0.25,0.5,0.65,0.8").split(",").map(Number)
const LAG_LIMIT_S = 5
const BIN = new URL("../bin/totes.mjs", import.meta.url).pathname

metrics.setSink(nullSink)

/** One order: sales order, its transaction and its payment, one round trip (CTEs), as totesys writes them together. */
const ORDER = `
WITH so AS (
  INSERT INTO sales_order (created_at, last_updated, design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
                           agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
  SELECT now(), now(), (SELECT design_id FROM design ORDER BY random() LIMIT 1), 1 + floor(random() * 20)::int, 1 + floor(random() * 20)::int,
         $1::int, $2::numeric, 1 + floor(random() * 3)::int, to_char(now() + interval '5 days', 'YYYY-MM-DD'),
         to_char(now() + interval '10 days', 'YYYY-MM-DD'), 1 + floor(random() * 30)::int
  RETURNING sales_order_id, counterparty_id, currency_id, units_sold * unit_price AS amount
), tx AS (
  INSERT INTO transaction (transaction_type, sales_order_id, created_at, last_updated)
  SELECT 'SALE', sales_order_id, now(), now() FROM so RETURNING transaction_id
)
INSERT INTO payment (created_at, last_updated, transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid,
                     payment_date, company_ac_number, counterparty_ac_number)
SELECT now(), now(), tx.transaction_id, so.counterparty_id, so.amount, so.currency_id, 1, false, to_char(now() + interval '10 days', 'YYYY-MM-DD'), 12345678, 87654321
FROM so, tx`

/** The payment job: one earlier payment marked paid (an update). */
const PAY = `UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = (SELECT payment_id FROM payment WHERE NOT paid ORDER BY payment_id LIMIT 1 FOR UPDATE SKIP LOCKED)`

/** Runs `clients` writers for `seconds` at `rate` transactions/s in all (Infinity: as fast as they can). */
const runLoad = async (url: string, clients: number, seconds: number, rate: number) => {
  const until = performance.now() + seconds * 1000
  let committed = 0
  let rowChanges = 0
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const client = new pg.Client({ connectionString: url, application_name: `bench-writer-${c}` })
      await client.connect()
      const interval = Number.isFinite(rate) ? (1000 * clients) / rate : 0
      let next = performance.now() + (interval * c) / clients
      try {
        for (let i = 0; performance.now() < until; i++) {
          if (interval > 0) {
            const wait = next - performance.now()
            if (wait > 0) await new Promise((r) => setTimeout(r, wait))
            next += interval
          }
          if (i % 8 === 7) {
            const r = await client.query(PAY)
            rowChanges += r.rowCount ?? 0
          } else {
            await client.query(ORDER, [1 + (i % 50), `${(1 + (i % 9)).toFixed(2)}`])
            rowChanges += 3
          }
          committed++
        }
      } finally {
        await client.end()
      }
    })
  )
  return { committed, rowChanges, perSecond: committed / seconds, rowsPerSecond: rowChanges / seconds }
}

const component = (name: string, env: Record<string, string>): ChildProcess =>
  spawn(process.execPath, [BIN, "run", "--components", name], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] })

const stop = async (child: ChildProcess) => {
  if (child.exitCode !== null) return
  const exited = new Promise((r) => child.once("exit", r))
  child.kill("SIGTERM")
  await exited
}

await withStack(async (stack) => {
  const env: Record<string, string> = { ...stack.env, TOTES_METRICS: "off", TOTES_LOG_LEVEL: "warn", TOTES_HEARTBEAT_MS: "500" }
  const source = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL })
  await source.connect()
  await generateTotesys(source, { seed: "bench", days: 30 })

  // 1. The source alone.
  const alone = await runLoad(env.SOURCE_DATABASE_URL!, CLIENTS, MAX_S, Infinity)
  console.log(`source alone, ${CLIENTS} clients for ${MAX_S} s: ${alone.perSecond.toFixed(0)} commits/s (${alone.rowsPerSecond.toFixed(0)} row changes/s)`)

  // 2. The whole pipeline.
  const children = ["reader", "consumer", "archiver"].map((name) => component(name, env))
  const warehouse = new pg.Client({ connectionString: env.WAREHOUSE_DATABASE_URL })
  await warehouse.connect()
  try {
    // Ready once the consumer has migrated the warehouse and applied a heartbeat of every shard.
    for (;;) {
      await new Promise((r) => setTimeout(r, 500))
      const ready = await warehouse.query("SELECT consistent_through_at FROM pipeline_freshness").catch(() => undefined)
      if (ready?.rows[0]?.consistent_through_at) break
    }
    console.log("")
    console.log("| step | offered commits/s | achieved commits/s | row changes/s | max lag | p99 commit → warehouse | kept up (lag < 5 s) |")
    console.log("|---|---:|---:|---:|---:|---:|:---:|")
    let sustainable = 0
    for (const fraction of FRACTIONS) {
      const rate = alone.perSecond * fraction
      const started = new Date()
      let maxLag = 0
      let sampling = true
      const sampler = (async () => {
        while (sampling) {
          const { rows } = await warehouse.query("SELECT extract(epoch FROM now() - consistent_through_at)::float8 AS lag FROM pipeline_freshness")
          maxLag = Math.max(maxLag, rows[0].lag ?? Infinity)
          await new Promise((r) => setTimeout(r, 500))
        }
      })()
      const load = await runLoad(env.SOURCE_DATABASE_URL!, CLIENTS, STEP_S, rate)
      sampling = false
      await sampler
      const ended = new Date()
      // Latency of the step's changes, once they have arrived (wait at most 60 s more).
      for (let i = 0; i < 120; i++) {
        const { rows } = await warehouse.query("SELECT consistent_through_at >= $1 AS done FROM pipeline_freshness", [ended])
        if (rows[0].done) break
        await new Promise((r) => setTimeout(r, 500))
      }
      const { rows } = await warehouse.query(
        `SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM applied_at - source_committed_at)) AS p99
         FROM fact_sales_order WHERE source_committed_at BETWEEN $1 AND $2`,
        [started, ended]
      )
      const keptUp = maxLag < LAG_LIMIT_S
      if (keptUp) sustainable = Math.max(sustainable, load.perSecond)
      console.log(
        `| ${fraction.toFixed(2)} × max | ${rate.toFixed(0)} | ${load.perSecond.toFixed(0)} | ${load.rowsPerSecond.toFixed(0)} | ${maxLag.toFixed(1)} s | ${(Number(rows[0].p99 ?? NaN) * 1000).toFixed(0)} ms | ${keptUp ? "yes" : "no"} |`
      )
    }
    console.log("")
    console.log(
      `sustainable rate: ${sustainable.toFixed(0)} commits/s = ${(sustainable / alone.perSecond).toFixed(2)} × the source's maximum (${alone.perSecond.toFixed(0)} commits/s with no pipeline)`
    )

    // 3. Exactness, once everything is in.
    const { rows: lsn } = await source.query("SELECT pg_current_wal_insert_lsn()::text AS lsn")
    for (let i = 0; i < 240; i++) {
      const { rows } = await warehouse.query("SELECT consistent_through_lsn >= $1::pg_lsn AS done FROM pipeline_freshness", [lsn[0].lsn])
      if (rows[0].done) break
      await new Promise((r) => setTimeout(r, 500))
    }
    const expected = await deriveStarSchema(env.SOURCE_DATABASE_URL!)
    const actual = await readStarSchema(env.WAREHOUSE_DATABASE_URL!)
    const same = JSON.stringify(expected) === JSON.stringify(actual)
    console.log(`exactness: the warehouse ${same ? "equals" : "DIFFERS FROM"} the independent derivation of the source`)
  } finally {
    for (const child of children) await stop(child)
    await warehouse.end().catch(() => {})
    await source.end()
  }
})
