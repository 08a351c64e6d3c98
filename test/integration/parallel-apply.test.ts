/**
 * Shards apply in parallel: one workload (with address and department changes, which feed other
 * rows' dimensions, and deletes) goes through a 4-shard stream and two consumers at once, each
 * polling every shard (so besides four shards in parallel, every batch also arrives twice,
 * concurrently). The warehouse equals the independent derivation, with exactly one fact row per
 * committed change, and the warehouse really did run several apply transactions at once.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type pg from "pg"
import { consumerFromEnv } from "../../services/consumer/main.ts"
import { DEFAULT_MIX, simulate, type SimulationReport } from "../../tools/source/simulate.ts"
import { deriveStarSchema, readStarSchema } from "../fixtures/derive-star-schema.ts"
import { startPipeline, type RunningPipeline } from "../support/pipeline.ts"
import { waitDurable } from "../support/readers.ts"
import { connect, februaryEnv } from "../support/stack.ts"

describe("parallel apply", () => {
  let env: Record<string, string>
  let pipeline: RunningPipeline
  let source: pg.Client
  let warehouse: pg.Client
  let report: SimulationReport
  let snapshotRows: Record<string, number>
  let maxConcurrent = 0

  beforeAll(async () => {
    ;({ env, source, snapshotRows } = await februaryEnv({ shards: 4 }))
    pipeline = await startPipeline(env, { consumer: false })
    report = await simulate(source, { seed: 21, rate: Infinity, maxTransactions: 600, mix: DEFAULT_MIX })
    await waitDurable(pipeline.reader!, source, 120_000)
    warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)

    // The whole backlog is on the stream: now two consumers apply it at once.
    const consumers = [consumerFromEnv(env, { idleWaitMs: 50 }), consumerFromEnv(env, { idleWaitMs: 50 })]
    const stop = new AbortController()
    const polling = consumers.map((c) => c.poller.run(stop.signal).catch(() => {}))
    const sampling = (async () => {
      while (!stop.signal.aborted) {
        const { rows } = await warehouse.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'totes-consumer' AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')"
        )
        maxConcurrent = Math.max(maxConcurrent, rows[0].n)
        await sleep(5) // a sampler, not a wait: look again shortly, for as long as the consumers apply
      }
    })()
    try {
      await pipeline.caughtUp(180_000)
    } finally {
      stop.abort()
      await Promise.all(polling)
      await sampling
      for (const c of consumers) await c.close()
    }
  })

  afterAll(async () => {
    await pipeline?.stop()
    await source?.end()
    await warehouse?.end()
  })

  it("exercised cross-row dimensions and deletes", () => {
    for (const kind of ["sale", "purchase", "delete_order", "update_address", "update_department"] as const) {
      expect(report.kinds[kind] ?? 0, kind).toBeGreaterThan(0)
    }
  })

  it("ran several apply transactions at the same time", () => {
    expect(maxConcurrent).toBeGreaterThanOrEqual(2)
  })

  it("equals the independent derivation of the source", async () => {
    const expected = await deriveStarSchema(env.SOURCE_DATABASE_URL!)
    const actual = await readStarSchema(env.WAREHOUSE_DATABASE_URL!)
    for (const table of Object.keys(expected.dims)) expect(actual.dims[table], table).toEqual(expected.dims[table])
    for (const table of Object.keys(expected.facts)) expect(actual.facts[table], table).toEqual(expected.facts[table])
  })

  it("holds exactly one fact row per committed change, none twice", async () => {
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
})
