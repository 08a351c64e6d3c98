/**
 * The whole live path on the real local stack: source → reader → Kinesis → consumer → warehouse,
 * compared with an independent full-refresh derivation of the final source state.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { DEFAULT_MIX, simulate, type SimulationReport } from "../../tools/source/simulate.ts"
import { deriveStarSchema, readStarSchema } from "../fixtures/derive-star-schema.ts"
import { connect, februaryEnv } from "../support/stack.ts"
import { startPipeline, type RunningPipeline } from "../support/pipeline.ts"
import { waitFor } from "../support/processes.ts"
import type pg from "pg"

describe("live pipeline on the February snapshot plus a simulated workload", () => {
  let env: Record<string, string>
  let pipeline: RunningPipeline
  let source: pg.Client
  let warehouse: pg.Client
  let report: SimulationReport
  let snapshotRows: Record<string, number>

  beforeAll(async () => {
    ;({ env, source, snapshotRows } = await februaryEnv({ shards: 3 }))
    pipeline = await startPipeline(env)
    report = await simulate(source, { seed: 11, rate: Infinity, maxTransactions: 400, mix: DEFAULT_MIX })
    await pipeline.caughtUp(120_000)
    warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
  })

  afterAll(async () => {
    await pipeline?.stop()
    await source?.end()
    await warehouse?.end()
  })

  it("exercised every kind of change", () => {
    for (const kind of ["sale", "purchase", "edit_sales_order", "delete_order", "update_address", "update_department"] as const) {
      expect(report.kinds[kind] ?? 0, kind).toBeGreaterThan(0)
    }
  })

  it("dims equal the derivation and every fact's current view equals the source", async () => {
    const expected = await deriveStarSchema(env.SOURCE_DATABASE_URL!)
    const actual = await readStarSchema(env.WAREHOUSE_DATABASE_URL!)
    for (const table of Object.keys(expected.dims)) expect(actual.dims[table], table).toEqual(expected.dims[table])
    for (const table of Object.keys(expected.facts)) expect(actual.facts[table], table).toEqual(expected.facts[table])
  })

  it("fact history holds exactly one row per committed change", async () => {
    for (const [fact, table] of [["fact_sales_order", "sales_order"], ["fact_purchase_order", "purchase_order"], ["fact_payment", "payment"]] as const) {
      const { rows } = await warehouse.query(`SELECT change_op, count(*)::int AS n FROM ${fact} GROUP BY 1 ORDER BY 1`)
      const counts = Object.fromEntries(rows.map((r) => [r.change_op, r.n]))
      const changes = report.tables[table]
      expect({ table, r: counts.r ?? 0, c: counts.c ?? 0, u: counts.u ?? 0, d: counts.d ?? 0 }).toEqual({
        table,
        r: snapshotRows[table],
        c: changes.insert,
        u: changes.update,
        d: changes.delete
      })
      const dup = await warehouse.query(`SELECT count(*)::int AS n FROM (SELECT event_id FROM ${fact} GROUP BY 1 HAVING count(*) > 1) d`)
      expect(dup.rows[0].n).toBe(0)
    }
  })

  it("reports freshness: consistent_through is recent and advancing", async () => {
    const consistentThrough = async () => (await warehouse.query("SELECT consistent_through_lsn::text AS lsn FROM pipeline_freshness")).rows[0].lsn as string
    const first = await consistentThrough()
    expect(first).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
    // On an idle source the heartbeats (every 200 ms) move it on: within the 1.5 s this test always allowed.
    await waitFor(async () => (await consistentThrough()) !== first, 1_500, `consistent_through to move past ${first}`)
  })
})
