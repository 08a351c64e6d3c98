/** Runs reader + consumer in-process on an isolated environment, for integration tests. */
import pg from "pg"
import { consumerFromEnv, migrateFromEnv, type LocalConsumer } from "../../services/consumer/main.ts"
import { readerFromEnv } from "../../services/reader/main.ts"
import type { Reader } from "../../services/reader/reader.ts"
import { waitCaughtUp } from "../../services/status/status.ts"
import { waitFor } from "./processes.ts"

export interface RunningPipeline {
  readonly reader: Reader | undefined
  readonly consumer: LocalConsumer | undefined
  readonly caughtUp: (timeoutMs?: number) => Promise<void>
  readonly stop: () => Promise<void>
}

export const startPipeline = async (
  env: Record<string, string>,
  options: { reader?: boolean; consumer?: boolean; heartbeatIntervalMs?: number } = {}
): Promise<RunningPipeline> => {
  await migrateFromEnv(env)
  const reader = options.reader === false ? undefined : readerFromEnv(env, { heartbeatIntervalMs: options.heartbeatIntervalMs ?? 200, statusIntervalMs: 1_000 })
  const readerRun = reader?.start()
  readerRun?.catch(() => {})
  // Until the initial snapshot is done, new source rows would arrive as snapshot reads.
  if (reader) await waitFor(() => {
    if (reader.error) throw reader.error
    return reader.stats.durableLsn !== null
  }, 120_000, "the reader's initial snapshot")
  const consumer = options.consumer === false ? undefined : consumerFromEnv(env, { idleWaitMs: 50 })
  const stopConsumer = new AbortController()
  const polling = consumer?.poller.run(stopConsumer.signal)
  polling?.catch(() => {})
  const caughtUp = async (timeoutMs = 60_000) => {
    const source = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL })
    const warehouse = new pg.Client({ connectionString: env.WAREHOUSE_DATABASE_URL })
    await source.connect()
    await warehouse.connect()
    try {
      await waitCaughtUp({ source, warehouse }, { timeoutMs, onWait: () => {
        if (reader?.error) throw reader.error
      } })
    } finally {
      await source.end()
      await warehouse.end()
    }
  }
  return {
    reader,
    consumer,
    caughtUp,
    stop: async () => {
      await reader?.stop()
      stopConsumer.abort()
      await polling?.catch(() => {})
      await consumer?.close()
    }
  }
}
