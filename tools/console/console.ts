/**
 * `totes console`: the live console against any configured stage (the same variables as
 * `totes status`). Every second it reads the status and the warehouse's own counters
 * (services/status/) and derives the time series from successive readings: no CloudWatch, no
 * metrics service. Read-only; the page is served on 127.0.0.1 (server.ts).
 */
import { Effect } from "effect"
import type pg from "pg"
import { makeLakeWatermarkReader, throttledLakeWatermarkReader } from "../../services/lake/watermark-read.ts"
import { CheckpointStore } from "../../services/shared/checkpoint-store.ts"
import { LakeBucket, PipelineSchema, readConfig, reveal, SlotName, SourceDatabaseUrl, Stage, StreamName, WarehouseDatabaseUrl, WarehouseSchema } from "../../services/shared/config.ts"
import { connectClient, type DatabaseName } from "../../services/shared/database-connection.ts"
import { makeLakeStore } from "../../services/shared/lake-store.ts"
import { errorReason } from "../../services/shared/logger.ts"
import { s3Client } from "../../services/shared/s3-client.ts"
import { makeLakeActivityReader, throttledLakeActivityReader } from "../../services/status/lake-activity.ts"
import { readStatus } from "../../services/status/status.ts"
import { makeWarehouseActivitySampler } from "../../services/status/warehouse-activity.ts"
import { startConsoleServer } from "./server.ts"
import { ConsoleState } from "./state.ts"

export interface ConsoleOptions {
  readonly port: number
  readonly signal: AbortSignal
  readonly intervalMs?: number
  readonly log?: (line: string) => void
}

/** A database connection that is made again after it broke (a console outlives a database restart). */
const reconnecting = (database: DatabaseName, url: string) => {
  let client: pg.Client | undefined
  let broken = false
  return {
    get: async () => {
      if (client && broken) {
        await client.end().catch(() => {})
        client = undefined
      }
      if (!client) {
        broken = false
        client = await connectClient(database, url, { application_name: "totes-console", onError: () => (broken = true) })
      }
      return client
    },
    /** The next `get` connects anew (after a failed query). */
    reset: () => (broken = true),
    end: async () => {
      await client?.end().catch(() => {})
    }
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true })
  })

export const runConsole = async (options: ConsoleOptions) => {
  const log = options.log ?? ((line: string) => console.log(line))
  const intervalMs = options.intervalMs ?? 1_000
  const schemas = { schema: readConfig(WarehouseSchema), pipelineSchema: readConfig(PipelineSchema) }
  const source = reconnecting("source", reveal(readConfig(SourceDatabaseUrl)))
  const warehouse = reconnecting("warehouse", reveal(readConfig(WarehouseDatabaseUrl)))
  try {
    // Both databases must answer once before the console is served: a wrong URL fails at once, with its reason.
    await source.get()
    await warehouse.get()
    const checkpoints = Effect.runSync(CheckpointStore.make())
    const lake = makeLakeStore(readConfig(LakeBucket), s3Client())
    // The lake changes every buffer interval (a minute or more in AWS): read it every 5 s, not every second.
    const lakeWatermarks = throttledLakeWatermarkReader(makeLakeWatermarkReader(lake), 5_000)
    const lakeActivity = throttledLakeActivityReader(makeLakeActivityReader(lake), 5_000)
    const activity = makeWarehouseActivitySampler(schemas)
    const state = new ConsoleState({ mode: "stage", title: `totes console · stage ${readConfig(Stage)}`, intervalMs })
    const server = await startConsoleServer({ port: options.port, snapshot: () => state.snapshot() })
    try {
      log(`totes console: ${server.url} (read-only, on this machine only; Ctrl-C stops it)`)
      while (!options.signal.aborted) {
        const at = Date.now()
        try {
          const [src, wh] = [await source.get(), await warehouse.get()]
          const status = await Effect.runPromise(readStatus({ source: src, warehouse: wh, checkpoints, slot: readConfig(SlotName), stream: readConfig(StreamName), lakeWatermarks, lakeActivity, ...schemas }))
          const counts = await activity.sample(wh)
          state.record({ at, status, published: null, applied: counts.appliedChanges, latenciesMs: counts.latenciesMs })
        } catch (error) {
          // Which part failed is not always clear (a dropped connection, DynamoDB, S3): connect anew, at most once a second.
          source.reset()
          warehouse.reset()
          state.record({ at, status: undefined, published: null, applied: null, latenciesMs: [] })
          state.failed(`reading the status: ${errorReason(error)}`)
        }
        await sleep(Math.max(0, intervalMs - (Date.now() - at)), options.signal)
      }
    } finally {
      await server.close()
    }
  } finally {
    await source.end()
    await warehouse.end()
  }
}
