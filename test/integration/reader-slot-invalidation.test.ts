/**
 * The server's limits on a slot (PostgreSQL 18, a private cluster with max_slot_wal_keep_size):
 * the reader measures the WAL left before invalidation (SlotSafeWalBytes, the slot-wal-headroom
 * alarm) and warns once the slot is past the limit, while it can still be saved; a slot the server
 * invalidated (wal_removed, idle_timeout) is refused with its cause and the repair, and
 * --resnapshot starts over.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { alarmSpecs } from "../../infra/alarms-spec.ts"
import { stageConfig } from "../../infra/stage-config.ts"
import { kinesisClient } from "../../services/shared/aws-clients.ts"
import { metrics } from "../../services/shared/metrics.ts"
import { readerFromEnv } from "../../services/reader/main.ts"
import type { ReaderProgress } from "../../services/reader/reader.ts"
import { slotInfo } from "../../services/reader/source-admin.ts"
import { startPostgres, type LocalPostgres } from "../../tools/local/postgres.ts"
import { initSourceSchema } from "../../tools/source/totesys-db.ts"
import { waitFor } from "../support/processes.ts"
import { stoppedAfterEach, waitDurable } from "../support/readers.ts"
import { isolatedPipelineEnv } from "../support/stack.ts"

const readers = stoppedAfterEach()
const KEEP_MB = 48
let server: LocalPostgres
let dir: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "totes-slot-limits-"))
  server = await startPostgres({ dir, databases: [], settings: { max_slot_wal_keep_size: `${KEEP_MB}MB` } })
})

afterAll(async () => {
  await server?.stop()
  rmSync(dir, { recursive: true, force: true })
})

/** A source database of its own on the private cluster, with the totesys schema and a table outside the publication. */
const sourceEnv = async (): Promise<{ env: Record<string, string>; source: pg.Client }> => {
  const env: Record<string, string> = await isolatedPipelineEnv({ shards: 1 })
  const database = `src_${env.TOTES_SLOT!.slice(5)}`
  const admin = new pg.Client({ connectionString: server.url("postgres") })
  await admin.connect()
  await admin.query(`CREATE DATABASE "${database}"`)
  await admin.end()
  env.SOURCE_DATABASE_URL = server.url(database)
  const source = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL })
  await source.connect()
  await initSourceSchema(source)
  await source.query("CREATE TABLE scratch (id bigserial PRIMARY KEY, filler text)")
  return { env, source }
}

/** Writes about `mb` MiB of WAL the reader has nothing to publish for, in whole segments. */
const writeWal = async (source: pg.Client, mb: number) => {
  for (let written = 0; written < mb; written += 16) {
    await source.query("INSERT INTO scratch (filler) SELECT repeat('x', 1000) FROM generate_series(1, 14000)")
    await source.query("SELECT pg_switch_wal()")
  }
  await source.query("TRUNCATE scratch")
}

const warnings = (progress: ReadonlyArray<ReaderProgress>) => progress.flatMap((p) => (p.phase === "warning" ? [p.message] : []))

describe("slot limits on the source", () => {
  it("measures the WAL left before invalidation and warns past max_slot_wal_keep_size, while a reader that catches up keeps its slot", async () => {
    const { env, source } = await sourceEnv()
    // A stream that stops taking records: the reader cannot make progress, so the slot holds WAL.
    let release: () => void = () => {}
    let blocked: Promise<void> | undefined
    const kinesis = kinesisClient(env)
    kinesis.middlewareStack.add(
      (next: any, context: any) => async (args: any) => {
        if (blocked && context.commandName === "PutRecordsCommand") await blocked
        return next(args)
      },
      { step: "initialize", name: "blockablePutRecords" }
    )
    const captured = metrics.capture()
    const progress: Array<ReaderProgress> = []
    const reader = readerFromEnv(env, { kinesis, heartbeatIntervalMs: 100, lagIntervalMs: 100, onProgress: (p) => progress.push(p) })
    readers.push(reader)
    reader.start().catch(() => {})
    try {
      await waitFor(() => captured.sink.values("SlotSafeWalBytes").length > 2, 30_000, "SlotSafeWalBytes samples")
      const healthy = captured.sink.values("SlotSafeWalBytes").at(-1)!
      expect(healthy).toBeGreaterThan((KEEP_MB / 2) * 2 ** 20)
      expect(healthy).toBeLessThan(2 * KEEP_MB * 2 ** 20)

      blocked = new Promise((resolve) => (release = resolve))
      await source.query("INSERT INTO design (design_name, file_location, file_name, last_updated) VALUES ('Waiting', '/usr', 'd.json', now())")
      captured.sink.clear()
      await writeWal(source, KEEP_MB + 32)
      const UNRESERVED = `slot '${env.TOTES_SLOT}' retains more WAL than max_slot_wal_keep_size allows (wal_status unreserved): the next checkpoint invalidates it unless the reader catches up first. Raise max_slot_wal_keep_size now if the reader cannot catch up.`
      await waitFor(() => warnings(progress).includes(UNRESERVED), 30_000, "the unreserved warning")
      // The alarm's condition held on the way, before anything was lost: the slot is still valid.
      const samples = captured.sink.values("SlotSafeWalBytes")
      // The stage's rule (a quarter of max_slot_wal_keep_size left) applied to this server's limit.
      const thresholds = { ...stageConfig("dev").alarms, slotWalHeadroomBytes: (KEEP_MB / 4) * 2 ** 20 }
      const headroomAlarm = alarmSpecs("local", thresholds, { consumerFunctionName: "f", failureQueueName: "q", deliveryStreamName: "d" }).find((a) => a.id === "slot-wal-headroom")!
      expect(headroomAlarm).toMatchObject({ metricName: "SlotSafeWalBytes", statistic: "Minimum", comparison: "LessThanThreshold" })
      const threshold = headroomAlarm.threshold
      expect(Math.min(...samples)).toBeLessThan(threshold)
      expect(samples.at(-1)).toBe(0)
      expect((await slotInfo(source, env.TOTES_SLOT!))?.walStatus).toBe("unreserved")

      // The stream recovers before a checkpoint: the reader catches up and the slot is reserved again.
      release()
      blocked = undefined
      await waitDurable(reader, source, 60_000)
      await waitFor(async () => ["reserved", "extended"].includes((await slotInfo(source, env.TOTES_SLOT!))?.walStatus ?? ""), 30_000, "the slot back within its limit")
      await waitFor(() => progress.some((p) => p.phase === "info" && p.message === `resolved: ${UNRESERVED}`), 10_000, "the warning resolved")
      await source.query("CHECKPOINT")
      expect((await slotInfo(source, env.TOTES_SLOT!))?.invalidationReason).toBeNull()
      expect(reader.error).toBeUndefined()
    } finally {
      release()
      captured.restore()
      await reader.stop()
      await source.end()
    }
  })

  it("refuses a slot the server invalidated, with its cause and the repair; --resnapshot starts over", async () => {
    const { env, source } = await sourceEnv()
    const slot = env.TOTES_SLOT!
    const streamOnce = async (options: { resnapshot?: boolean } = {}) => {
      const messages: Array<string> = []
      const reader = readerFromEnv(env, { heartbeatIntervalMs: 100, ...options, onProgress: (p) => p.phase === "info" && messages.push(p.message) })
      readers.push(reader)
      reader.start().catch(() => {})
      await waitDurable(reader, source, 30_000)
      await reader.stop()
      return messages
    }
    const refusal = async () => {
      const reader = readerFromEnv(env)
      readers.push(reader)
      return reader.start().then(
        () => "started",
        (error: Error) => error.message
      )
    }
    try {
      await streamOnce()

      // WAL beyond max_slot_wal_keep_size while the reader is down, then a checkpoint.
      await writeWal(source, KEEP_MB + 48)
      await source.query("CHECKPOINT")
      expect(await slotInfo(source, slot)).toMatchObject({ walStatus: "lost", invalidationReason: "wal_removed" })
      const walRemoved = await refusal()
      expect(walRemoved).toMatch(
        new RegExp(
          `^replication slot '${slot}' was invalidated by the server \\(wal_removed\\): it needed WAL beyond max_slot_wal_keep_size, and the server removed that WAL while the reader was down or behind; changes after the reader's checkpoint \\(\\d+/[0-9A-F]+\\) can no longer be read from it\\. Refusing to run: the server no longer streams from this slot\\. Repair: restart the reader with --resnapshot`
        )
      )
      expect(walRemoved).toContain("or repair the tables online with totes resnapshot --tables <tables>")

      // The repair: a new slot and snapshot.
      const messages = await streamOnce({ resnapshot: true })
      expect(messages.some((m) => m.startsWith(`--resnapshot: replication slot '${slot}' was invalidated by the server (wal_removed)`))).toBe(true)
      expect(await slotInfo(source, slot)).toMatchObject({ walStatus: "reserved", invalidationReason: null })

      // PostgreSQL 18: a slot unused for longer than idle_replication_slot_timeout.
      await source.query("ALTER SYSTEM SET idle_replication_slot_timeout = 1")
      await source.query("SELECT pg_reload_conf()")
      try {
        // A checkpoint invalidates the slot once it has been unused for longer than that and the
        // checkpointer has read the new setting: checkpoint until it has.
        await waitFor(
          async () => {
            await source.query("CHECKPOINT")
            return (await slotInfo(source, slot))?.invalidationReason === "idle_timeout"
          },
          30_000,
          () => `a checkpoint invalidating slot '${slot}' for idle_replication_slot_timeout`,
          250
        )
        expect(await slotInfo(source, slot)).toMatchObject({ walStatus: "lost", invalidationReason: "idle_timeout" })
      } finally {
        await source.query("ALTER SYSTEM RESET idle_replication_slot_timeout")
        await source.query("SELECT pg_reload_conf()")
      }
      expect(await refusal()).toMatch(
        new RegExp(`^replication slot '${slot}' was invalidated by the server \\(idle_timeout\\): it was unused for longer than idle_replication_slot_timeout while the reader was down; `)
      )
    } finally {
      await source.end()
    }
  })
})
