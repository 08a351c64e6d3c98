/**
 * The source restarts under a writing workload: the reader notices, reconnects with backoff and
 * resumes from its checkpoint by itself; every committed change reaches the stream. The reader
 * also never overlaps two queries on one pg client (pg 9 will refuse; pg 8 warns).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { readerFromEnv } from "../../services/reader/main.ts"
import type { ReaderProgress } from "../../services/reader/reader.ts"
import { startPostgres, type LocalPostgres } from "../../tools/local/postgres.ts"
import { initSourceSchema } from "../../tools/source/totesys-db.ts"
import { auditedChanges, installAudit } from "../support/audit.ts"
import { writeDesignsUntil } from "../support/design-writer.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { seedDimensions } from "../support/mini-workload.ts"
import { waitFor } from "../support/processes.ts"
import { stoppedAfterEach, waitDurable } from "../support/readers.ts"
import { isolatedPipelineEnv } from "../support/stack.ts"

const readers = stoppedAfterEach()

/**
 * Records every query issued on a pg client that is still busy with another one (pg 8 queues it
 * and, from the third, prints a deprecation warning; pg 9 will refuse it).
 */
const watchOverlappingQueries = () => {
  const overlaps: Array<string> = []
  const prototype = pg.Client.prototype as unknown as { query: (...args: Array<unknown>) => unknown }
  const original = prototype.query
  prototype.query = function (this: { _activeQuery?: unknown; _queryQueue?: Array<unknown>; connectionParameters?: { application_name?: string } }, ...args: Array<unknown>) {
    if (this._activeQuery || (this._queryQueue?.length ?? 0) > 0) overlaps.push(this.connectionParameters?.application_name ?? "?")
    return original.apply(this, args)
  }
  return { overlaps, restore: () => void (prototype.query = original) }
}
let server: LocalPostgres
let dir: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "totes-reconnect-"))
  server = await startPostgres({ dir, databases: ["totesys"] })
})

afterAll(async () => {
  await server?.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe("reader and a restarting source", () => {
  it("reconnects by itself and loses nothing when PostgreSQL restarts under a writing workload", async () => {
    const env = { ...(await isolatedPipelineEnv({ shards: 2 })), SOURCE_DATABASE_URL: server.url("totesys") }
    const source = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL })
    await source.connect()
    await initSourceSchema(source)
    await installAudit(source)
    await seedDimensions(source)
    const from = Number((await source.query("SELECT max(seq) AS s FROM totes_audit")).rows[0].s)
    await source.end()

    const watch = watchOverlappingQueries()
    const progress: Array<ReaderProgress> = []
    const reader = readerFromEnv(env, { heartbeatIntervalMs: 20, lagIntervalMs: 20, statusIntervalMs: 500, onProgress: (p) => progress.push(p) })
    readers.push(reader)
    const running = reader.start()
    running.catch(() => {})
    await waitFor(() => reader.stats.durableLsn !== null, 30_000, "reader streaming")

    const stopWriting = new AbortController()
    const counts = { committed: 0, failures: 0 }
    const writing = writeDesignsUntil(env.SOURCE_DATABASE_URL, stopWriting.signal, counts)
    // The restart comes while the workload writes and the reader streams it.
    const streamed = () => reader.stats.byTableOp["design:c"] ?? 0
    await waitFor(() => streamed() >= 30, 30_000, () => `the reader streaming the workload (${streamed()} designs published)`)
    await server.restart(1_500)
    await waitFor(() => reader.stats.reconnects > 0, 30_000, "reader noticed the restart")
    // The workload goes on after the restart, so the reader must also take what is written from then on.
    const noticed = counts.committed
    await waitFor(() => counts.committed >= noticed + 30, 60_000, () => `the workload writing again after the restart (${counts.committed - noticed} designs since the reader noticed it)`)
    stopWriting.abort()
    const written = await writing
    expect(written.failures).toBeGreaterThan(0) // the workload really saw the outage
    expect(written.committed).toBeGreaterThan(50)

    const check = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL })
    check.on("error", () => {})
    await check.connect()
    try {
    await waitDurable(reader, check, 60_000)
    expect(reader.error).toBeUndefined()
    const expected = (await auditedChanges(check, from)).filter((a) => a.table === "design").map((a) => `${a.op}|${a.key}`).sort()
    const stream = await readWholeStream(env)
    const got = [
      ...new Set(stream.flatMap((r) => (r.record.kind === "change" && r.record.op !== "r" && r.record.source.table === "design" ? [`${r.record.op}|${Object.values((r.record as ChangeEvent).key ?? {})[0]}`] : [])))
    ].sort()
    expect(got).toEqual(expected)
    expect(expected.length).toBeGreaterThanOrEqual(written.committed)

    // The outage was reported once when it started and once when it ended, not per attempt.
    const outages = progress.flatMap((p) => (p.phase === "outage" && p.dependency === "source database" ? [p.state] : []))
    expect(outages).toEqual(["started", "ended"])
    await reader.stop()
    await running
    watch.restore()
    expect(watch.overlaps).toEqual([])
    } finally {
      await check.end()
    }
  })
})
