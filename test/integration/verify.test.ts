/**
 * Verify on the real local stack: it passes on a correct warehouse (also while the source keeps
 * changing) and reports exactly the rows changed by hand in a corrupted one, with a non-zero exit
 * status from the command.
 */
import { Effect } from "effect"
import type pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { verify, type VerifyReport } from "../../services/replay/verify.ts"
import { VERIFY_TABLES } from "../../services/replay/verify-spec.ts"
import { DEFAULT_MIX, simulate } from "../../tools/source/simulate.ts"
import { runLakeCli as runCli } from "../support/lake.ts"
import { startPipeline, type RunningPipeline } from "../support/pipeline.ts"
import { waitFor } from "../support/processes.ts"
import { connect, februaryEnv } from "../support/stack.ts"

const differences = (report: VerifyReport) => report.tables.flatMap((t) => t.differences.map((d) => ({ table: t.table, ...d })))

describe("verify", () => {
  let env: Record<string, string>
  let pipeline: RunningPipeline
  let source: pg.Client
  let warehouse: pg.Client

  beforeAll(async () => {
    ;({ env, source } = await februaryEnv({ shards: 2 }))
    pipeline = await startPipeline(env)
    await simulate(source, { seed: 41, rate: Infinity, maxTransactions: 150, mix: DEFAULT_MIX })
    await pipeline.caughtUp(120_000)
    warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
  })

  afterAll(async () => {
    await pipeline?.stop()
    await source?.end()
    await warehouse?.end()
  })

  it("passes on a correct warehouse, with matching counts for every table", async () => {
    const report = await Effect.runPromise(verify({ sourceUrl: env.SOURCE_DATABASE_URL!, warehouseUrl: env.WAREHOUSE_DATABASE_URL!, bucketWidth: 256 }))
    expect(differences(report)).toEqual([])
    expect(report.ok).toBe(true)
    expect(report.tables.map((t) => t.table)).toEqual(VERIFY_TABLES)
    for (const t of report.tables) {
      expect(t.sourceRows, t.table).toBe(t.warehouseRows)
      expect(t.sourceRows, t.table).toBeGreaterThan(0)
      expect(t.differingBuckets, t.table).toBe(0)
    }
  })

  it("passes while the source keeps changing (differences of moving rows are not reported)", async () => {
    const controller = new AbortController()
    let committed = 0
    const moving = simulate(source, { seed: 42, rate: 40, durationMs: 60_000, mix: DEFAULT_MIX, signal: controller.signal, onCommit: () => committed++ })
    try {
      // Verify starts once the source is really moving (and goes on moving while it reads).
      await waitFor(() => committed >= 20, 30_000, () => `the workload under way (${committed} transactions committed)`)
      const report = await Effect.runPromise(verify({ sourceUrl: env.SOURCE_DATABASE_URL!, warehouseUrl: env.WAREHOUSE_DATABASE_URL!, bucketWidth: 256 }))
      expect(differences(report)).toEqual([])
    } finally {
      controller.abort()
      await moving
    }
    await pipeline.caughtUp(120_000)
  })

  it("reports exactly the rows changed by hand, and the command exits non-zero", async () => {
    const staff = (await warehouse.query("SELECT staff_id FROM dim_staff WHERE NOT is_deleted ORDER BY staff_id OFFSET 3 LIMIT 1")).rows[0].staff_id as number
    await warehouse.query("UPDATE dim_staff SET first_name = first_name || ' (edited)' WHERE staff_id = $1", [staff])
    const order = (await warehouse.query("SELECT sales_order_id, units_sold FROM fact_sales_order_current ORDER BY sales_order_id OFFSET 10 LIMIT 1")).rows[0]
    await warehouse.query(
      `UPDATE fact_sales_order SET units_sold = units_sold + 1
       WHERE sales_record_id = (SELECT sales_record_id FROM fact_sales_order WHERE sales_order_id = $1 ORDER BY source_lsn DESC, source_seq DESC LIMIT 1)`,
      [order.sales_order_id]
    )

    const report = await Effect.runPromise(verify({ sourceUrl: env.SOURCE_DATABASE_URL!, warehouseUrl: env.WAREHOUSE_DATABASE_URL!, bucketWidth: 256 }))
    expect(report.ok).toBe(false)
    const first = (await warehouse.query("SELECT first_name FROM dim_staff WHERE staff_id = $1", [staff])).rows[0].first_name as string
    expect(differences(report)).toEqual([
      { table: "dim_staff", key: staff, kind: "different", columns: [{ column: "first_name", source: first.replace(" (edited)", ""), warehouse: first }] },
      {
        table: "fact_sales_order",
        key: order.sales_order_id,
        kind: "different",
        columns: [{ column: "units_sold", source: String(order.units_sold), warehouse: String(order.units_sold + 1) }]
      }
    ])
    // Only the differing buckets were read key by key.
    expect(report.tables.find((t) => t.table === "dim_staff")!.differingBuckets).toBe(1)
    expect(report.tables.find((t) => t.table === "fact_sales_order")!.differingBuckets).toBe(1)

    const cli = await runCli(["verify", "--json", "--tables", "dim_staff,fact_sales_order,dim_location"], env)
    expect(cli.code, cli.stderr).not.toBe(0)
    const json = JSON.parse(cli.stdout) as VerifyReport
    expect(differences(json).map((d) => `${d.table}:${d.key}`)).toEqual([`dim_staff:${staff}`, `fact_sales_order:${order.sales_order_id}`])
    expect(cli.stderr).toMatch(/2 row\(s\) differ/)

    const clean = await runCli(["verify", "--tables", "dim_location,fact_payment"], env)
    expect(clean.code, clean.stderr + clean.stdout).toBe(0)
    expect(clean.stdout).toMatch(/dim_location .* ok/)
  })
})
