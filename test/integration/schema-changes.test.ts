/**
 * Source schema changes, as an operator makes them while the pipeline runs. What the warehouse can
 * absorb flows on (a new column, a dropped column it does not use, a widening type whose values
 * still fit); what breaks a column it uses (a rename, a drop, values that no longer fit) pauses that
 * table — never a silent NULL, never a dead letter per row — while every other table goes on, and
 * `totes warehouse resume` applies the kept changes once, in order, after the operator's decision.
 */
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { MemoryLogSink, setDefaultLogSink } from "../../services/shared/logger.ts"
import { generateTotesys } from "../../tools/source/generate.ts"
import { startPipeline, type RunningPipeline } from "../support/pipeline.ts"
import { runTotes, waitFor } from "../support/processes.ts"
import { waitDurable } from "../support/readers.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"

describe("source schema changes", () => {
  let env: Record<string, string>
  let pipeline: RunningPipeline
  let source: pg.Client
  let warehouse: pg.Client

  /** Everything committed so far has reached the warehouse (or been parked): the consumer applied the reader's latest heartbeat. */
  const settled = async () => {
    await waitDurable(pipeline.reader!, source, 60_000)
    const target = pipeline.reader!.stats.durableLsn!
    await waitFor(
      async () => (await warehouse.query("SELECT consistent_through_lsn >= $1::pg_lsn AS done FROM pipeline_freshness", [target])).rows[0].done === true,
      60_000,
      `warehouse consistent through ${target}`
    )
  }
  const paused = async () => (await warehouse.query("SELECT paused_tables FROM pipeline_freshness")).rows[0].paused_tables as Array<string>
  const design = async (id: number) => (await warehouse.query("SELECT design_name, file_location FROM dim_design WHERE design_id = $1", [id])).rows[0]
  const newSalesOrder = async () =>
    Number(
      (
        await source.query(
          `INSERT INTO sales_order (created_at, last_updated, design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
                                    agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
           VALUES (now(), now(), 1, 1, 1, 10, 2.50, 1, '2026-12-01', '2026-12-05', 1) RETURNING sales_order_id`
        )
      ).rows[0].sales_order_id
    )

  beforeAll(async () => {
    env = await isolatedPipelineEnv({ shards: 2 })
    source = await connect(env.SOURCE_DATABASE_URL!)
    await generateTotesys(source, { seed: "schema", days: 5 })
    pipeline = await startPipeline(env)
    warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
    await settled()
  })

  afterAll(async () => {
    await pipeline?.stop()
    await source?.end()
    await warehouse?.end()
  })

  it("flows on through changes the warehouse can absorb: a new column, a dropped unused column, widening types", async () => {
    await source.query("ALTER TABLE design ADD COLUMN colour text")
    await source.query("UPDATE design SET design_name = 'Added column', colour = 'red' WHERE design_id = 1")
    await source.query("ALTER TABLE counterparty DROP COLUMN commercial_contact")
    await source.query("UPDATE counterparty SET counterparty_legal_name = 'No contact Ltd' WHERE counterparty_id = 1")
    await source.query("ALTER TABLE sales_order ALTER COLUMN units_sold TYPE bigint")
    const widened = await newSalesOrder()
    await source.query("ALTER TABLE sales_order ALTER COLUMN units_sold TYPE numeric(12,2)")
    await source.query("UPDATE sales_order SET units_sold = 84755 WHERE sales_order_id = $1", [widened]) // "84755.00": still an integer
    await settled()
    expect(await paused()).toEqual([])
    expect((await design(1)).design_name).toBe("Added column")
    expect((await warehouse.query("SELECT counterparty_legal_name FROM dim_counterparty WHERE counterparty_id = 1")).rows[0].counterparty_legal_name).toBe("No contact Ltd")
    expect((await warehouse.query("SELECT units_sold FROM fact_sales_order_current WHERE sales_order_id = $1", [widened])).rows[0].units_sold).toBe(84755)
  })

  it("pauses a table whose used column is renamed, keeps its changes, lets the others go on, and resumes with the mapping", async () => {
    const before = await design(2)
    const logs = new MemoryLogSink()
    const restoreLogs = setDefaultLogSink(logs)
    await source.query("ALTER TABLE design RENAME COLUMN design_name TO title")
    await source.query("UPDATE design SET title = 'Renamed A', file_location = '/a' WHERE design_id = 2")
    await source.query("INSERT INTO design (created_at, title, file_location, file_name, last_updated) VALUES (now(), 'Renamed B', '/b', 'b.json', now())")
    const order = await newSalesOrder() // another table: applied meanwhile
    await settled()
    restoreLogs()
    expect(await paused()).toEqual(["design"])
    expect(await design(2)).toEqual(before) // never a silent NULL: the old values stay until resumed
    // The consumer's one warning for the pause (logged by Effect code through the pipeline's Logger).
    const warnings = logs.records().filter((r) => r.message.includes("table paused"))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({ level: "warn", component: "consumer", table: "design", column: "design_name", problem: "missing" })
    expect(warnings[0]!.action).toBe("decide, then: totes warehouse resume --table design --rename design_name=<new source column> | --accept-missing design_name")
    expect((await warehouse.query("SELECT count(*)::int AS n FROM fact_sales_order WHERE sales_order_id = $1", [order])).rows[0].n).toBe(1)
    await waitFor(async () => (await runTotes(["status"], env)).output.includes("added title; dropped or renamed design_name"), 20_000, "the reader's report in totes status")
    const status = await runTotes(["status"], env)
    expect(status.output).toMatch(/schema {5}.*design: added title; dropped or renamed design_name \(the warehouse uses design_name: the table will pause until resumed\)/)
    expect(status.output).toMatch(/schema {5}.*design: added colour \(the warehouse can absorb it\)/)
    expect(status.output).toMatch(/paused {5}design: the change has no column design_name .*2 changes kept/)
    const waiting = await runTotes(["status", "--wait-caught-up", "--timeout", "30"], env)
    expect(waiting.code).not.toBe(0)
    expect(waiting.output).toContain("not caught up: paused by a schema change: design")

    const resumed = await runTotes(["warehouse", "resume", "--table", "design", "--rename", "design_name=title"], env)
    expect(resumed.output).toContain("design: resumed; 2 parked changes applied in source order")
    expect(resumed.code).toBe(0)
    expect(await paused()).toEqual([])
    expect(await design(2)).toEqual({ design_name: "Renamed A", file_location: "/a" })
    // Later changes use the mapping straight away.
    await source.query("UPDATE design SET title = 'Renamed again' WHERE design_id = 2")
    await settled()
    expect((await design(2)).design_name).toBe("Renamed again")
    expect((await warehouse.query("SELECT count(*)::int AS n FROM dim_design WHERE design_name = 'Renamed B'")).rows[0].n).toBe(1)
  })

  it("pauses on a dropped used column; accepting the drop gives NULL from the pause on, each change once", async () => {
    const paymentId = Number((await source.query("SELECT max(payment_id) AS id FROM payment")).rows[0].id)
    const historyBefore = Number((await warehouse.query("SELECT count(*) AS n FROM fact_payment WHERE payment_id = $1", [paymentId])).rows[0].n)
    await source.query("ALTER TABLE payment DROP COLUMN payment_date")
    await source.query("UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = $1", [paymentId])
    await settled()
    expect(await paused()).toEqual(["payment"])
    const current = async () => (await warehouse.query("SELECT paid, payment_date FROM fact_payment_current WHERE payment_id = $1", [paymentId])).rows[0]
    expect((await current()).payment_date).not.toBeNull() // untouched, not wiped
    const wrong = await runTotes(["warehouse", "resume", "--table", "payment", "--accept-missing", "no_such_column"], env)
    expect(wrong.code).not.toBe(0)
    expect(wrong.output).toContain("payment has no column no_such_column that the warehouse uses")
    const resumed = await runTotes(["warehouse", "resume", "--table", "payment", "--accept-missing", "payment_date"], env)
    expect(resumed.code).toBe(0)
    expect(await current()).toEqual({ paid: true, payment_date: null })
    expect(Number((await warehouse.query("SELECT count(*) AS n FROM fact_payment WHERE payment_id = $1", [paymentId])).rows[0].n)).toBe(historyBefore + 1)
  })

  it("pauses on values that no longer fit; resumes once the warehouse column is widened", async () => {
    await source.query("ALTER TABLE sales_order ALTER COLUMN units_sold TYPE numeric(12,2)")
    const order = await newSalesOrder()
    await settled()
    await source.query("UPDATE sales_order SET units_sold = 10.5 WHERE sales_order_id = $1", [order])
    await settled()
    expect(await paused()).toEqual(["sales_order"])
    const row = (await warehouse.query("SELECT detail FROM pipeline_paused_tables")).rows[0]
    expect(row.detail).toBe("units_sold holds a number with decimals, which does not fit the warehouse's int column")
    const resumed = await runTotes(["warehouse", "resume", "--table", "sales_order", "--widen", "units_sold=numeric(12,2)"], env)
    expect(resumed.code).toBe(0)
    expect(await paused()).toEqual([])
    expect((await warehouse.query("SELECT units_sold::text AS u FROM fact_sales_order_current WHERE sales_order_id = $1", [order])).rows[0].u).toBe("10.50")
  })

  it("totes verify reads the source as the decisions do and finds no difference; a hand-made one is named by table, key, column and side", async () => {
    await settled()
    const clean = await runTotes(["verify", "--wait", "60"], env, 120_000)
    expect(clean.output).not.toContain("SCHEMA MISMATCH")
    expect(clean.code).toBe(0)
    await warehouse.query("UPDATE dim_design SET design_name = 'Tampered' WHERE design_id = 2")
    const tampered = await runTotes(["verify", "--tables", "dim_design", "--wait", "60"], env, 120_000)
    expect(tampered.code).not.toBe(0)
    expect(tampered.output).toContain('dim_design key 2 column design_name: source "Renamed again", warehouse "Tampered"')
  })

  it("reports a schema mismatch as such when a table changed without a decision", async () => {
    await source.query("ALTER TABLE department RENAME COLUMN department_name TO dept_name")
    const report = await runTotes(["verify", "--tables", "dim_staff", "--wait", "60"], env, 120_000)
    expect(report.code).not.toBe(0)
    expect(report.output).toMatch(/dim_staff +SCHEMA MISMATCH on the source side: column d\.department_name does not exist/)
    await source.query("ALTER TABLE department RENAME COLUMN dept_name TO department_name")
  })
})
