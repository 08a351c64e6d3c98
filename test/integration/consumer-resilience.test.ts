/**
 * The consumer under failure: kill -9 at random moments, and the warehouse unreachable mid-stream
 * for longer than the consumer retries a batch. Either way the warehouse ends equal to the
 * independent derivation, with exactly one fact row per committed change.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { describe, expect, it } from "vitest"
import type pg from "pg"
import { DEFAULT_MIX, simulate, type SimulationReport } from "../../tools/source/simulate.ts"
import { generateTotesys } from "../../tools/source/generate.ts"
import { deriveStarSchema, readStarSchema } from "../fixtures/derive-star-schema.ts"
import { startPipeline } from "../support/pipeline.ts"
import { spawnTotes, waitFor } from "../support/processes.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"
import { startTcpProxy, viaProxy } from "../support/tcp-proxy.ts"

const FACTS = [["fact_sales_order", "sales_order"], ["fact_purchase_order", "purchase_order"], ["fact_payment", "payment"]] as const

const expectWarehouseMatchesSource = async (env: Record<string, string>, generated: Record<string, number>, reports: ReadonlyArray<SimulationReport>) => {
  const expected = await deriveStarSchema(env.SOURCE_DATABASE_URL!)
  const actual = await readStarSchema(env.WAREHOUSE_DATABASE_URL!)
  expect(actual).toEqual(expected)
  const warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
  try {
    for (const [fact, table] of FACTS) {
      const { rows } = await warehouse.query(`SELECT count(*) FILTER (WHERE change_op = 'r')::int AS r, count(*) FILTER (WHERE change_op <> 'r')::int AS changes, count(DISTINCT event_id)::int AS ids, count(*)::int AS n FROM ${fact}`)
      const committed = reports.reduce((sum, r) => sum + r.tables[table].insert + r.tables[table].update + r.tables[table].delete, 0)
      expect({ fact, ...rows[0] }).toEqual({ fact, r: generated[table], changes: committed, ids: rows[0].n, n: rows[0].n })
    }
  } finally {
    await warehouse.end()
  }
}

const prepare = async () => {
  const env = await isolatedPipelineEnv({ shards: 2 })
  const source: pg.Client = await connect(env.SOURCE_DATABASE_URL!)
  const generated = (await generateTotesys(source, { seed: 5, days: 20 })).rows
  return { env, source, generated }
}

describe("consumer resilience", () => {
  it("survives 10 kill -9 restarts with an identical warehouse and no duplicate fact rows", async () => {
    const { env, source, generated } = await prepare()
    const pipeline = await startPipeline(env, { consumer: false })
    const reports: Array<SimulationReport> = []
    let seed = 77
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31)
    for (let cycle = 0; cycle < 10; cycle++) {
      const consumer = spawnTotes(["run", "--components", "consumer"], env)
      await waitFor(() => consumer.output().includes("running: consumer"), 30_000, () => `consumer start: ${consumer.output()}`)
      reports.push(await simulate(source, { seed: `kill-${cycle}`, rate: Infinity, maxTransactions: 40, mix: DEFAULT_MIX }))
      await sleep(300 + random() * 1200) // the kill comes at a random moment: that is the test
      consumer.child.kill("SIGKILL")
      await consumer.exited
    }
    const final = spawnTotes(["run", "--components", "consumer"], env)
    await pipeline.caughtUp(120_000)
    final.child.kill("SIGTERM")
    await final.exited
    await pipeline.stop()
    await expectWarehouseMatchesSource(env, generated, reports)
    await source.end()
  }, 240_000) // 11 process starts: on a shared 2-core machine beside other tests, more than the default 120 s

  it("waits out a warehouse outage longer than its retries mid-stream and catches up with nothing lost", async () => {
    const { env, source, generated } = await prepare()
    const proxy = await startTcpProxy(Number(new URL(env.WAREHOUSE_DATABASE_URL!).port))
    const pipeline = await startPipeline({ ...env, WAREHOUSE_DATABASE_URL: viaProxy(env.WAREHOUSE_DATABASE_URL!, proxy) })
    const reports = [await simulate(source, { seed: "before", rate: Infinity, maxTransactions: 50, mix: DEFAULT_MIX })]
    await pipeline.caughtUp(60_000)

    proxy.down()
    reports.push(await simulate(source, { seed: "during", rate: 20, maxTransactions: 100, mix: DEFAULT_MIX }))
    const applied = pipeline.consumer!.poller.stats.batches
    // The outage lasts until the consumer has used up its retries on a batch (about 20 s of backoff)
    // and reported it failed, to be read again later: the path a long outage takes.
    await waitFor(() => pipeline.consumer!.poller.stats.failedBatches > 0, 120_000, "the consumer reporting a batch failed after its retries")
    expect(pipeline.consumer!.poller.stats.batches).toBe(applied) // nothing could be applied meanwhile
    expect(pipeline.consumer!.poller.stats.failedBatches).toBeGreaterThan(0)
    proxy.up()

    reports.push(await simulate(source, { seed: "after", rate: Infinity, maxTransactions: 50, mix: DEFAULT_MIX }))
    await pipeline.caughtUp(120_000)
    await pipeline.stop()
    await proxy.close()
    await expectWarehouseMatchesSource(env, generated, reports)
    await source.end()
  })
})
