/**
 * `totes dev` (= `npm start`): the whole pipeline on the local stack in one process, with the
 * simulator writing changes, a live dashboard and the web console (tools/console/). Ctrl-C stops
 * everything it started.
 */
import { existsSync } from "node:fs"
import { resolve } from "node:path"
import { Effect } from "effect"
import { migrateFromEnv } from "../../services/consumer/main.ts"
import { firstExit, spawnComponents, stopComponents } from "../../services/cli/component-processes.ts"
import { readStackEnv, runningStackPid, stackDown, stackFiles, stackUp } from "../local/stack-process.ts"
import { makeLakeWatermarkReader, throttledLakeWatermarkReader } from "../../services/lake/watermark-read.ts"
import { s3Client } from "../../services/shared/aws-clients.ts"
import { CheckpointStore } from "../../services/shared/checkpoint-store.ts"
import { makeLakeStore } from "../../services/shared/lake-store.ts"
import { connectClient } from "../../services/shared/database-connection.ts"
import { makeLogger } from "../../services/shared/logger.ts"
import { dependencyOf, makeOutageReporter } from "../../services/shared/outage-reporter.ts"
import { generateTotesys } from "../source/generate.ts"
import { DEFAULT_MIX, simulate } from "../source/simulate.ts"
import { readStatus, type PipelineStatus } from "../../services/status/status.ts"
import { makeLakeActivityReader, throttledLakeActivityReader } from "../../services/status/lake-activity.ts"
import { startDevConsole } from "../console/dev-console.ts"
import { renderDashboard } from "./dashboard.ts"
import { FiguresSink } from "./figures.ts"

export interface DevOptions {
  readonly dir: string
  readonly seed: string
  readonly rate: number
  readonly days: number
  readonly signal: AbortSignal
  /** Print a plain status line per refresh instead of redrawing in place (non-TTY output). */
  readonly plain?: boolean
  readonly refreshMs?: number
  /** Port of the web console on 127.0.0.1 (0: a free one). */
  readonly port?: number
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((r) => {
    const t = setTimeout(r, ms)
    signal.addEventListener("abort", () => (clearTimeout(t), r()), { once: true })
  })

/** A component's JSON log line (services/shared/logger.ts), or undefined for anything else. */
const parseLogLine = (line: string): { level?: string; message?: string; reason?: string; table?: string; rows?: number } | undefined => {
  try {
    const record = JSON.parse(line) as unknown
    return record && typeof record === "object" ? (record as { level?: string; message?: string }) : undefined
  } catch {
    return undefined
  }
}

export const runDev = async (options: DevOptions) => {
  const dir = resolve(options.dir)
  const log = (line: string) => console.log(line)
  const errors: Array<string> = []
  const remember = (where: string) => (error: unknown) => {
    errors.push(`${where}: ${(error as Error)?.message ?? String(error)}`.slice(0, 160))
    if (errors.length > 20) errors.shift()
  }
  // Outages show on the dashboard as two lines each (started; back after N s), not one per retry.
  const outageLog = (component: string) =>
    makeLogger(component, {
      sink: { write: (line) => {
        const record = JSON.parse(line) as { message: string; reason?: string }
        remember(component)(new Error(`${record.message}${record.reason ? ` (${record.reason})` : ""}`))
      } }
    })
  const cleanups: Array<() => Promise<void>> = []
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await step().catch(() => {})
  }
  try {
    // 1. the local stack, in its own background process group (like `totes stack up`): a
    //    terminal's Ctrl-C reaches this process, which then stops everything in order, rather
    //    than reaching PostgreSQL directly and cutting the pipeline's connections mid-flight.
    const reused = Boolean(runningStackPid(dir) && existsSync(stackFiles(dir).env))
    log(reused ? `using the local stack already running in ${dir}` : "starting the local stack (PostgreSQL, Kinesis, DynamoDB, S3)…")
    if (!reused) {
      // The stack stops by itself if this process dies without cleaning up (kill -9).
      await stackUp(dir, { ownerPid: process.pid })
      cleanups.push(async () => {
        await stackDown(dir)
      })
    }
    const env = readStackEnv(dir)
    if (options.signal.aborted) return

    // 2. a generated totesys in the source (fresh each session when the stack is ours)
    const source = await connectClient("source", env.SOURCE_DATABASE_URL!, { application_name: "totes-dev", onError: remember("source") })
    cleanups.push(() => source.end())
    const hasRows = (await source.query("SELECT to_regclass('public.payment') IS NOT NULL AS present")).rows[0].present
      ? Number((await source.query("SELECT count(*) AS n FROM payment")).rows[0].n) > 0
      : false
    if (!hasRows) {
      log(`generating totesys (seed ${options.seed}, ${options.days} days of history)…`)
      const report = await generateTotesys(source, { seed: options.seed, days: options.days, until: new Date() })
      log(`  ${Object.values(report.rows).reduce((a, b) => a + b, 0)} rows in ${report.ms} ms`)
    }
    await migrateFromEnv(env)

    // 3. the pipeline: reader, consumer and archiver, each in its own process (as `totes run`
    //    starts them), their metric lines feeding the dashboard, their warnings and errors shown on it.
    const figures = new FiguresSink()
    const children = spawnComponents(["reader", "consumer", "archiver"], {
      // The lake: the local Firehose stand-in flushes every few seconds so objects show up quickly.
      env: { ...process.env, ...env, TOTES_METRICS: "stdout", TOTES_ARCHIVER_FLUSH_MS: env.TOTES_ARCHIVER_FLUSH_MS ?? "5000" },
      onStdout: (_component, line) => {
        figures.write(line)
        if (process.env.TOTES_METRICS === "stdout") process.stdout.write(`${line}\n`)
      },
      onStderr: (component, line) => {
        const record = parseLogLine(line)
        if (!record) return
        if (component === "reader" && record.message === "snapshot table done") log(`  snapshot ${record.table}: ${record.rows} rows`)
        if (record.level === "warn" || record.level === "error") remember(component)(new Error(`${record.message}${record.reason ? ` (${record.reason})` : ""}`))
      }
    })
    cleanups.push(() => stopComponents(children))
    void firstExit(children).then((ended) => {
      if (!options.signal.aborted) remember(ended.component)(new Error(`stopped (exit ${ended.code ?? ended.signal})`))
    })

    // 4. the simulator, writing changes with real timestamps
    const simulator = await connectClient("source", env.SOURCE_DATABASE_URL!, { application_name: "totes-dev-simulator", onError: remember("simulator") })
    const stopSimulator = new AbortController()
    const simulated = { transactions: 0, rowChanges: 0 }
    const simulation = simulate(simulator, {
      seed: `${options.seed}-live`,
      rate: options.rate,
      mix: DEFAULT_MIX,
      clock: "wall",
      signal: stopSimulator.signal,
      onCommit: (tx) => {
        simulated.transactions++
        simulated.rowChanges += tx.changes.length
      }
    })
      .then((report) => report.stoppedBy === "connection-lost" && remember("simulator")(new Error(`stopped: the source connection was lost (${report.error})`)))
      .catch(remember("simulator"))
    cleanups.push(async () => {
      stopSimulator.abort()
      await simulation
      await simulator.end().catch(() => {})
    })

    // 5. the live dashboard
    const checkpoints = Effect.runSync(CheckpointStore.make(env))
    // One reader for the whole session (it reads each new lake object once), at most every 5 s.
    const lakeStore = makeLakeStore(env.TOTES_LAKE_BUCKET!, s3Client(env))
    const lakeWatermarks = throttledLakeWatermarkReader(makeLakeWatermarkReader(lakeStore), 5_000)
    const lakeActivity = throttledLakeActivityReader(makeLakeActivityReader(lakeStore), 5_000)
    const warehouse = await connectClient("warehouse", env.WAREHOUSE_DATABASE_URL!, { application_name: "totes-dev-status", onError: remember("status") })
    cleanups.push(() => warehouse.end())
    const statusOutages = makeOutageReporter({ log: outageLog("status") })
    cleanups.push(async () => statusOutages.close())
    // 6. the web console, fed by the same readings as the dashboard
    const devConsole = await startDevConsole({ port: options.port ?? 0, figures, intervalMs: options.refreshMs ?? 1_000, errors: () => errors })
    cleanups.push(() => devConsole.close())
    log(`console    ${devConsole.url}`)
    const startedAt = Date.now()
    let drawn = 0
    while (!options.signal.aborted) {
      figures.sample()
      let status: PipelineStatus | undefined
      try {
        status = await Effect.runPromise(readStatus({ source, warehouse, checkpoints, slot: env.TOTES_SLOT!, stream: env.TOTES_STREAM!, lakeWatermarks, lakeActivity }))
        for (const dependency of ["source", "warehouse", "DynamoDB"]) statusOutages.success(dependency)
      } catch (error) {
        statusOutages.failure(dependencyOf(error, "warehouse", env), error, "read status")
      }
      const lines = renderDashboard({ startedAt, figures: figures.figures, status, simulated, lake: { objects: figures.figures.lakeObjects, bytes: figures.figures.lakeBytes }, errors, envPath: stackFiles(dir).env })
      if (options.plain) {
        log(lines.slice(2).join("\n"))
      } else {
        if (drawn > 0) process.stdout.write(`\x1b[${drawn}A`)
        process.stdout.write(lines.map((l) => `\x1b[2K${l}`).join("\n") + "\n")
        drawn = lines.length
      }
      devConsole.record(status)
      await sleep(options.refreshMs ?? 1_000, options.signal)
    }
    log("stopping…")
  } finally {
    await cleanup()
    log("stopped: nothing left running")
  }
}
