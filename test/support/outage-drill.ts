/**
 * The outage drill of the outage tests (outage-logging, reader-outages): `totes run` with some
 * components reaches each dependency under test through a TCP proxy, the rest of the pipeline runs
 * in the test process on direct connections, and each dependency in turn is cut for 20 s while a
 * workload writes before, during and after. The times of each outage's window are taken just
 * BEFORE the proxy is cut and just BEFORE it is restored: a component may log the change before
 * the test's next line runs.
 */
import { setTimeout as sleep } from "node:timers/promises"
import type pg from "pg"
import { expect } from "vitest"
import { generateTotesys } from "../../tools/source/generate.ts"
import { DEFAULT_MIX, simulate, type SimulationReport } from "../../tools/source/simulate.ts"
import { deriveStarSchema, readStarSchema } from "../fixtures/derive-star-schema.ts"
import { startPipeline, type RunningPipeline } from "./pipeline.ts"
import { spawnTotes, waitFor, type Spawned } from "./processes.ts"
import { connect, isolatedPipelineEnv } from "./stack.ts"
import { startTcpProxy, viaProxy, type TcpProxy } from "./tcp-proxy.ts"

/** A dependency to cut: the variable that points at it, and the components of `totes run` that log its outage. */
export interface DrillOutage {
  readonly dependency: string
  readonly variable: string
  readonly components: ReadonlyArray<string>
}

/** Epoch ms just before the proxy was cut (`down`) and just before it was restored (`up`). */
export interface OutageWindow {
  readonly down: number
  readonly up: number
}

export interface LogLine {
  readonly level: string
  readonly time: string
  readonly component: string
  readonly message: string
  readonly dependency?: string
  readonly durationMs?: number
  readonly retries?: number
}

const OUTAGE_MS = 20_000

const FACTS = [["fact_sales_order", "sales_order"], ["fact_purchase_order", "purchase_order"], ["fact_payment", "payment"]] as const

export interface OutageDrillOptions {
  /** The generator's seed for the source's history before the drill. */
  readonly seed: number
  readonly outages: ReadonlyArray<DrillOutage>
  /** The components `totes run` runs (behind the proxies). */
  readonly components: ReadonlyArray<string>
  /** What of the pipeline runs in the test process (on direct connections). */
  readonly inProcess: { readonly reader?: boolean; readonly consumer?: boolean }
  /** More variables for `totes run`. */
  readonly runEnv?: Record<string, string>
}

export interface OutageDrill {
  readonly env: Record<string, string>
  readonly source: pg.Client
  /** The in-process part of the pipeline. */
  readonly pipeline: RunningPipeline
  readonly run: Spawned
  /** `totes run`'s JSON log lines so far. */
  readonly logLines: () => Array<LogLine>
  /**
   * Cuts each dependency in turn for 20 s under a workload (before, during, after), waiting for
   * the pipeline to catch up before the cut and after the restore, and then for every component
   * that uses the dependency to log the end of its outage. The workloads' reports and the windows.
   */
  readonly cutEach: (caughtUp: { readonly beforeMs: number; readonly afterMs: number }) => Promise<{
    readonly reports: ReadonlyArray<SimulationReport>
    readonly windows: Readonly<Record<string, OutageWindow>>
  }>
  /** Stops `totes run` (SIGTERM: exit code 143 expected), the in-process pipeline, the proxies and `source`. */
  readonly stop: () => Promise<void>
  /**
   * Nothing lost, nothing twice: the warehouse equals the independent derivation, with one fact
   * row per snapshot row and per committed change (`reports`: every workload of the drill).
   */
  readonly expectNothingLost: (reports: ReadonlyArray<SimulationReport>) => Promise<void>
}

export const startOutageDrill = async (options: OutageDrillOptions): Promise<OutageDrill> => {
  const env = await isolatedPipelineEnv({ shards: 2 })
  const source: pg.Client = await connect(env.SOURCE_DATABASE_URL!)
  const generated = (await generateTotesys(source, { seed: options.seed, days: 10 })).rows
  const pipeline = await startPipeline(env, options.inProcess)
  const proxies: Record<string, TcpProxy> = Object.fromEntries(
    await Promise.all(options.outages.map(async (o) => [o.dependency, await startTcpProxy(Number(new URL(env[o.variable]!).port))] as const))
  )
  const runEnv: Record<string, string> = { ...env, TOTES_METRICS: "off", ...options.runEnv }
  for (const o of options.outages) {
    const url = env[o.variable]!
    runEnv[o.variable] = url.startsWith("postgres") ? viaProxy(url, proxies[o.dependency]!) : `http://127.0.0.1:${proxies[o.dependency]!.port}`
  }
  const run = spawnTotes(["run", "--components", options.components.join(",")], runEnv)
  const logLines = (): Array<LogLine> =>
    run
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{") && l.includes('"level"'))
      .map((l) => JSON.parse(l) as LogLine)
  await waitFor(() => run.output().includes(`running: ${options.components.join(", ")}`), 30_000, () => `totes run:\n${run.output()}`)

  return {
    env,
    source,
    pipeline,
    run,
    logLines,
    cutEach: async (caughtUp) => {
      const reports: Array<SimulationReport> = []
      const windows: Record<string, OutageWindow> = {}
      for (const outage of options.outages) {
        const proxy = proxies[outage.dependency]!
        reports.push(await simulate(source, { seed: `before-${outage.dependency}`, rate: Infinity, maxTransactions: 20, mix: DEFAULT_MIX }))
        await pipeline.caughtUp(caughtUp.beforeMs)
        // Taken before the cut: the component may log the outage before the next line here runs.
        const down = Date.now()
        proxy.down()
        reports.push(await simulate(source, { seed: `during-${outage.dependency}`, rate: 5, durationMs: OUTAGE_MS, mix: DEFAULT_MIX }))
        // The outage lasts OUTAGE_MS whatever the workload took: a long outage, retried many times, is what the drill is about.
        await sleep(Math.max(0, OUTAGE_MS - (Date.now() - down)))
        // Taken before the restore, for the same reason.
        windows[outage.dependency] = { down, up: Date.now() }
        proxy.up()
        reports.push(await simulate(source, { seed: `after-${outage.dependency}`, rate: Infinity, maxTransactions: 20, mix: DEFAULT_MIX }))
        await pipeline.caughtUp(caughtUp.afterMs)
        // every component that uses the dependency: one warning when it went, one line when it came back
        await waitFor(
          () => outage.components.every((c) => logLines().some((l) => l.component === c && l.dependency === outage.dependency && l.level === "info")),
          60_000,
          () => `the end of the ${outage.dependency} outage in the log:\n${run.output().slice(-3000)}`
        )
      }
      return { reports, windows }
    },
    stop: async () => {
      run.child.kill("SIGTERM")
      expect(await run.exited).toBe(143)
      await pipeline.stop()
      for (const proxy of Object.values(proxies)) await proxy.close()
      await source.end()
    },
    expectNothingLost: async (reports) => {
      expect(await readStarSchema(env.WAREHOUSE_DATABASE_URL!)).toEqual(await deriveStarSchema(env.SOURCE_DATABASE_URL!))
      const warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
      try {
        for (const [fact, table] of FACTS) {
          const { rows } = await warehouse.query(
            `SELECT count(*) FILTER (WHERE change_op = 'r')::int AS r, count(*) FILTER (WHERE change_op <> 'r')::int AS changes, count(DISTINCT event_id)::int AS ids, count(*)::int AS n FROM ${fact}`
          )
          const committed = reports.reduce((sum, r) => sum + r.tables[table].insert + r.tables[table].update + r.tables[table].delete, 0)
          expect({ fact, ...rows[0] }).toEqual({ fact, r: generated[table], changes: committed, ids: rows[0].n, n: rows[0].n })
        }
      } finally {
        await warehouse.end()
      }
    }
  }
}

/**
 * The lines a component logged about one dependency's outage are exactly one pair: the warning
 * while the dependency was down (inside the window), the end once it was back. Returns the pair.
 */
export const expectOnePairInWindow = (lines: ReadonlyArray<LogLine>, window: OutageWindow, label: string): readonly [LogLine, LogLine] => {
  expect(lines.map((l) => l.level), `${label}: ${JSON.stringify(lines)}`).toEqual(["warn", "info"])
  const [start, end] = [Date.parse(lines[0]!.time), Date.parse(lines[1]!.time)]
  expect(start, `${label} start`).toBeGreaterThanOrEqual(window.down)
  expect(start, `${label} start`).toBeLessThanOrEqual(window.up)
  expect(end, `${label} end`).toBeGreaterThanOrEqual(window.up)
  return [lines[0]!, lines[1]!]
}
