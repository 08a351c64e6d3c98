/**
 * Outages of the consumer's and the archiver's dependencies (the warehouse, Kinesis, S3, DynamoDB),
 * 20 s each through a TCP proxy that drops and refuses every connection, while a workload writes:
 * `totes run --components consumer,archiver` waits every one out, logs exactly one line when it
 * starts and one when it ends (with duration and retries) per component that uses the dependency,
 * and the warehouse ends equal to the independent derivation with one fact row per change.
 * (The reader runs in the test process on direct connections; its own outages belong to the
 * reader's tests.)
 */
import type pg from "pg"
import { describe, expect, it } from "vitest"
import { generateTotesys } from "../../tools/source/generate.ts"
import { DEFAULT_MIX, simulate, type SimulationReport } from "../../tools/source/simulate.ts"
import { deriveStarSchema, readStarSchema } from "../fixtures/derive-star-schema.ts"
import { startPipeline } from "../support/pipeline.ts"
import { spawnTotes, waitFor } from "../support/processes.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"
import { startTcpProxy, viaProxy, type TcpProxy } from "../support/tcp-proxy.ts"

const FACTS = [["fact_sales_order", "sales_order"], ["fact_purchase_order", "purchase_order"], ["fact_payment", "payment"]] as const

/** Which components of `totes run` use each dependency, and the variable that points at it. */
const OUTAGES = [
  { dependency: "warehouse", variable: "WAREHOUSE_DATABASE_URL", components: ["consumer"] },
  { dependency: "Kinesis", variable: "AWS_ENDPOINT_URL_KINESIS", components: ["archiver", "consumer"] },
  { dependency: "S3", variable: "AWS_ENDPOINT_URL_S3", components: ["archiver"] },
  { dependency: "DynamoDB", variable: "AWS_ENDPOINT_URL_DYNAMODB", components: ["archiver", "consumer"] }
] as const

const proxied = (url: string, proxy: TcpProxy) => (url.startsWith("postgres") ? viaProxy(url, proxy) : `http://127.0.0.1:${proxy.port}`)

interface LogLine {
  readonly level: string
  readonly time: string
  readonly component: string
  readonly message: string
  readonly dependency?: string
  readonly durationMs?: number
  readonly retries?: number
}

describe("outages of the consumer's and the archiver's AWS dependencies", () => {
  it("are waited out, logged as one pair of lines each, and lose nothing", async () => {
    const env = await isolatedPipelineEnv({ shards: 2 })
    const source: pg.Client = await connect(env.SOURCE_DATABASE_URL!)
    const generated = (await generateTotesys(source, { seed: 13, days: 10 })).rows
    const reader = await startPipeline(env, { consumer: false })
    const proxies = Object.fromEntries(
      await Promise.all(OUTAGES.map(async (o) => [o.dependency, await startTcpProxy(Number(new URL(env[o.variable]!).port))] as const))
    )
    const runEnv: Record<string, string> = { ...env, TOTES_METRICS: "off", TOTES_ARCHIVER_FLUSH_MS: "1000" }
    for (const o of OUTAGES) runEnv[o.variable] = proxied(env[o.variable]!, proxies[o.dependency]!)
    const run = spawnTotes(["run", "--components", "consumer,archiver"], runEnv)
    const logLines = (): Array<LogLine> =>
      run
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{") && l.includes('"level"'))
        .map((l) => JSON.parse(l) as LogLine)
    await waitFor(() => run.output().includes("running: consumer, archiver"), 30_000, `totes run:\n${run.output()}`)

    const reports: Array<SimulationReport> = []
    const windows: Record<string, { down: number; up: number }> = {}
    for (const outage of OUTAGES) {
      const proxy = proxies[outage.dependency]!
      reports.push(await simulate(source, { seed: `before-${outage.dependency}`, rate: Infinity, maxTransactions: 20, mix: DEFAULT_MIX }))
      await reader.caughtUp(120_000)
      // Taken before the cut: the component may log the outage before the next line here runs.
      const started = Date.now()
      proxy.down()
      windows[outage.dependency] = { down: started, up: Number.NaN }
      reports.push(await simulate(source, { seed: `during-${outage.dependency}`, rate: 5, durationMs: 20_000, mix: DEFAULT_MIX }))
      await new Promise((r) => setTimeout(r, Math.max(0, 20_000 - (Date.now() - started))))
      windows[outage.dependency]!.up = Date.now()
      proxy.up()
      reports.push(await simulate(source, { seed: `after-${outage.dependency}`, rate: Infinity, maxTransactions: 20, mix: DEFAULT_MIX }))
      await reader.caughtUp(120_000)
      // every component that uses the dependency: one warning when it went, one line when it came back
      await waitFor(
        () => outage.components.every((c) => logLines().some((l) => l.component === c && l.dependency === outage.dependency && l.level === "info")),
        60_000,
        `the end of the ${outage.dependency} outage in the log:\n${run.output().slice(-3000)}`
      )
    }
    expect(run.child.exitCode, run.output().slice(-3000)).toBeNull() // still running: every outage was waited out

    for (const outage of OUTAGES) {
      for (const component of ["consumer", "archiver"]) {
        const lines = logLines().filter((l) => l.component === component && l.dependency === outage.dependency)
        const expected = (outage.components as ReadonlyArray<string>).includes(component) ? ["warn", "info"] : []
        expect(lines.map((l) => l.level), `${component} ${outage.dependency}: ${JSON.stringify(lines)}`).toEqual(expected)
        if (expected.length > 0) {
          // the warning while the dependency was down, the end once it was back, with what happened in between
          const { down, up } = windows[outage.dependency]!
          const [start, end] = [Date.parse(lines[0]!.time), Date.parse(lines[1]!.time)]
          expect(start, `${component} ${outage.dependency} start`).toBeGreaterThanOrEqual(down)
          expect(start, `${component} ${outage.dependency} start`).toBeLessThanOrEqual(up)
          expect(end, `${component} ${outage.dependency} end`).toBeGreaterThanOrEqual(up)
          expect(lines[1]!.durationMs, `${component} ${outage.dependency}`).toBeLessThanOrEqual(up - down + 5_000)
          expect(lines[1]!.retries).toBeGreaterThanOrEqual(1)
        }
      }
    }
    // never a line per attempt: everything the two components logged besides the start line
    expect(logLines().filter((l) => l.component !== "cli").length).toBe(OUTAGES.reduce((n, o) => n + 2 * o.components.length, 0))

    run.child.kill("SIGTERM")
    expect(await run.exited).toBe(143)
    await reader.stop()
    for (const proxy of Object.values(proxies)) await proxy.close()

    expect(await readStarSchema(env.WAREHOUSE_DATABASE_URL!)).toEqual(await deriveStarSchema(env.SOURCE_DATABASE_URL!))
    const warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
    for (const [fact, table] of FACTS) {
      const { rows } = await warehouse.query(`SELECT count(*) FILTER (WHERE change_op = 'r')::int AS r, count(*) FILTER (WHERE change_op <> 'r')::int AS changes, count(DISTINCT event_id)::int AS ids, count(*)::int AS n FROM ${fact}`)
      const committed = reports.reduce((sum, r) => sum + r.tables[table].insert + r.tables[table].update + r.tables[table].delete, 0)
      expect({ fact, ...rows[0] }).toEqual({ fact, r: generated[table], changes: committed, ids: rows[0].n, n: rows[0].n })
    }
    await warehouse.end()
    await source.end()
  }, 600_000)
})
