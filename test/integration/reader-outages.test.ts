/**
 * Outages of the reader's dependencies (the source database, Kinesis, DynamoDB), 20 s each through
 * a TCP proxy that drops and refuses every connection, while a workload writes: `totes run
 * --components reader` waits every one out (reconnecting to the source, retrying PutRecords, holding
 * the checkpoint), logs exactly one line when it starts and one when it ends, and the warehouse
 * (fed by a consumer on direct connections) ends equal to the independent derivation with one fact
 * row per change.
 */
import type pg from "pg"
import { describe, expect, it } from "vitest"
import { generateTotesys } from "../../tools/source/generate.ts"
import { DEFAULT_MIX, simulate, type SimulationReport } from "../../tools/source/simulate.ts"
import { deriveStarSchema, readStarSchema } from "../fixtures/derive-star-schema.ts"
import { startPipeline } from "../support/pipeline.ts"
import { spawnTotes, waitFor } from "../support/processes.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"
import { startTcpProxy, viaProxy } from "../support/tcp-proxy.ts"

const FACTS = [["fact_sales_order", "sales_order"], ["fact_purchase_order", "purchase_order"], ["fact_payment", "payment"]] as const

const OUTAGES = [
  { dependency: "source database", variable: "SOURCE_DATABASE_URL" },
  { dependency: "Kinesis", variable: "AWS_ENDPOINT_URL_KINESIS" },
  { dependency: "DynamoDB", variable: "AWS_ENDPOINT_URL_DYNAMODB" }
] as const

interface LogLine {
  readonly level: string
  readonly time: string
  readonly component: string
  readonly message: string
  readonly dependency?: string
}

describe("outages of the reader's dependencies", () => {
  it("are waited out, logged as one pair of lines each, and lose nothing", async () => {
    const env = await isolatedPipelineEnv({ shards: 2 })
    const source: pg.Client = await connect(env.SOURCE_DATABASE_URL!)
    const generated = (await generateTotesys(source, { seed: 17, days: 10 })).rows
    const consumer = await startPipeline(env, { reader: false })
    const proxies = Object.fromEntries(
      await Promise.all(OUTAGES.map(async (o) => [o.dependency, await startTcpProxy(Number(new URL(env[o.variable]!).port))] as const))
    )
    const runEnv: Record<string, string> = { ...env, TOTES_METRICS: "off" }
    for (const o of OUTAGES) {
      const url = env[o.variable]!
      runEnv[o.variable] = url.startsWith("postgres") ? viaProxy(url, proxies[o.dependency]!) : `http://127.0.0.1:${proxies[o.dependency]!.port}`
    }
    const run = spawnTotes(["run", "--components", "reader"], runEnv)
    const logLines = (): Array<LogLine> =>
      run
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{") && l.includes('"level"'))
        .map((l) => JSON.parse(l) as LogLine)
    await waitFor(() => run.output().includes("running: reader"), 30_000, `totes run:\n${run.output()}`)
    await consumer.caughtUp(180_000) // the initial snapshot is in the warehouse

    const reports: Array<SimulationReport> = []
    const windows: Record<string, { down: number; up: number }> = {}
    for (const outage of OUTAGES) {
      const proxy = proxies[outage.dependency]!
      reports.push(await simulate(source, { seed: `before-${outage.dependency}`, rate: Infinity, maxTransactions: 20, mix: DEFAULT_MIX }))
      await consumer.caughtUp(120_000)
      // Taken before the cut: the component may log the outage before the next line here runs.
      const started = Date.now()
      proxy.down()
      windows[outage.dependency] = { down: started, up: Number.NaN }
      reports.push(await simulate(source, { seed: `during-${outage.dependency}`, rate: 5, durationMs: 20_000, mix: DEFAULT_MIX }))
      await new Promise((r) => setTimeout(r, Math.max(0, 20_000 - (Date.now() - started))))
      windows[outage.dependency]!.up = Date.now()
      proxy.up()
      reports.push(await simulate(source, { seed: `after-${outage.dependency}`, rate: Infinity, maxTransactions: 20, mix: DEFAULT_MIX }))
      await consumer.caughtUp(180_000)
      await waitFor(
        () => logLines().some((l) => l.component === "reader" && l.dependency === outage.dependency && l.level === "info"),
        60_000,
        `the end of the ${outage.dependency} outage in the log:\n${run.output().slice(-3000)}`
      )
    }
    expect(run.child.exitCode, run.output().slice(-3000)).toBeNull() // still running: every outage was waited out

    for (const outage of OUTAGES) {
      const lines = logLines().filter((l) => l.component === "reader" && l.dependency === outage.dependency)
      expect(lines.map((l) => l.level), `${outage.dependency}: ${JSON.stringify(lines)}`).toEqual(["warn", "info"])
      const { down, up } = windows[outage.dependency]!
      const [start, end] = [Date.parse(lines[0]!.time), Date.parse(lines[1]!.time)]
      expect(start, `${outage.dependency} start`).toBeGreaterThanOrEqual(down)
      expect(start, `${outage.dependency} start`).toBeLessThanOrEqual(up)
      expect(end, `${outage.dependency} end`).toBeGreaterThanOrEqual(up)
    }
    // never a line per attempt: nothing else at warn or above
    const loud = logLines().filter((l) => l.component === "reader" && (l.level === "warn" || l.level === "error"))
    expect(loud.map((l) => l.dependency)).toEqual(OUTAGES.map((o) => o.dependency))

    run.child.kill("SIGTERM")
    expect(await run.exited).toBe(143)
    await consumer.stop()
    for (const proxy of Object.values(proxies)) await proxy.close()

    expect(await readStarSchema(env.WAREHOUSE_DATABASE_URL!)).toEqual(await deriveStarSchema(env.SOURCE_DATABASE_URL!))
    const warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
    for (const [fact, table] of FACTS) {
      const { rows } = await warehouse.query(
        `SELECT count(*) FILTER (WHERE change_op = 'r')::int AS r, count(*) FILTER (WHERE change_op <> 'r')::int AS changes, count(DISTINCT event_id)::int AS ids, count(*)::int AS n FROM ${fact}`
      )
      const committed = reports.reduce((sum, r) => sum + r.tables[table].insert + r.tables[table].update + r.tables[table].delete, 0)
      expect({ fact, ...rows[0] }).toEqual({ fact, r: generated[table], changes: committed, ids: rows[0].n, n: rows[0].n })
    }
    await warehouse.end()
    await source.end()
  }, 600_000)
})
