/**
 * Per-test isolation on the shared stack: fresh databases, stream, bucket, table and slot names.
 */
import { randomUUID } from "node:crypto"
import pg from "pg"
import { inject } from "vitest"
import { createBucket, createCheckpointTable, createStream } from "../../tools/local/provision.ts"
import { initSourceSchema, loadCsvSnapshot } from "../../tools/source/totesys-db.ts"
import { waitFor } from "./processes.ts"

export const stackEnv = (): Record<string, string> => inject("stackEnv")

const shortId = () => randomUUID().replace(/-/g, "").slice(0, 10)

const withDatabaseName = (url: string, database: string) => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** Creates a new empty database on the shared Postgres and returns its URL. */
export const freshDatabase = async (prefix: string): Promise<string> => {
  const env = stackEnv()
  const name = `${prefix}_${shortId()}`
  const admin = new pg.Client({ connectionString: withDatabaseName(env.SOURCE_DATABASE_URL!, "postgres") })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE "${name}"`)
  } finally {
    await admin.end()
  }
  return withDatabaseName(env.SOURCE_DATABASE_URL!, name)
}

/**
 * A whole isolated pipeline environment: its own source and warehouse databases, stream,
 * bucket, checkpoint table, slot and publication, on the shared servers.
 */
export const isolatedPipelineEnv = async (options: { shards?: number } = {}): Promise<Record<string, string>> => {
  const base = stackEnv()
  const id = shortId()
  const env: Record<string, string> = {
    ...base,
    SOURCE_DATABASE_URL: await freshDatabase("src"),
    WAREHOUSE_DATABASE_URL: await freshDatabase("wh"),
    TOTES_STREAM: `stream-${id}`,
    TOTES_LAKE_BUCKET: `lake-${id}`,
    TOTES_CHECKPOINT_TABLE: `checkpoints-${id}`,
    TOTES_SLOT: `slot_${id}`,
    TOTES_PUBLICATION: `pub_${id}`
  }
  await Promise.all([
    createStream(env, env.TOTES_STREAM!, options.shards ?? 2),
    createBucket(env, env.TOTES_LAKE_BUCKET!),
    createCheckpointTable(env, env.TOTES_CHECKPOINT_TABLE!)
  ])
  return env
}

/** Waits until no session is connected to the database of `url` (a killed client's server sessions end when the server notices). */
export const waitNoSessions = async (url: string, timeoutMs = 30_000) => {
  const database = decodeURIComponent(new URL(url).pathname.slice(1))
  const admin = new pg.Client({ connectionString: withDatabaseName(url, "postgres") })
  await admin.connect()
  let sessions: Array<string> = []
  try {
    await waitFor(
      async () => {
        const { rows } = await admin.query("SELECT pid, state, left(query, 60) AS query FROM pg_stat_activity WHERE datname = $1", [database])
        sessions = rows.map((r) => `${r.pid} ${r.state}: ${r.query}`)
        return sessions.length === 0
      },
      timeoutMs,
      () => `no session left on ${database} (still: ${sessions.join("; ")})`
    )
  } finally {
    await admin.end()
  }
}

export const connect = async (url: string): Promise<pg.Client> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  return client
}

export const SNAPSHOT_FEB = new URL("../../../shared/totesys-data/snapshot-2024-02-23/csv/", import.meta.url).pathname
export const SNAPSHOT_NOV = new URL("../../../shared/totesys-data/snapshot-2024-11-15/csv/", import.meta.url).pathname

/** An isolated environment whose source holds the real February snapshot; returns the rows loaded per table. */
export const februaryEnv = async (options: { shards?: number } = {}) => {
  const env = await isolatedPipelineEnv(options)
  const source = await connect(env.SOURCE_DATABASE_URL!)
  await initSourceSchema(source)
  const snapshotRows: Record<string, number> = {}
  for (const report of await loadCsvSnapshot(source, SNAPSHOT_FEB)) snapshotRows[report.table] = report.rows
  return { env, source, snapshotRows }
}
