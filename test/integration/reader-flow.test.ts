/** Flow control: a slow Kinesis and a large transaction keep memory bounded; SIGTERM drains cleanly. */
import { setTimeout as sleep } from "node:timers/promises"
import { describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { compareLsn } from "../../contracts/lsn.ts"
import { kinesisClient } from "../../services/shared/aws-clients.ts"
import { readerFromEnv } from "../../services/reader/main.ts"
import { currentWalLsn } from "../../services/reader/source-admin.ts"
import { initSourceSchema } from "../../tools/source/totesys-db.ts"
import { auditedChanges, installAudit } from "../support/audit.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { runMiniWorkload, seedDimensions } from "../support/mini-workload.ts"
import { spawnTotes, waitFor } from "../support/processes.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"
import { stoppedAfterEach } from "../support/readers.ts"

const readers = stoppedAfterEach()

describe("reader flow control", () => {
  it("keeps at most maxBufferedRecords in memory for a 20,000-row transaction against a slow stream", async () => {
    const env = await isolatedPipelineEnv({ shards: 2 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    const slow = kinesisClient(env)
    slow.middlewareStack.add(
      (next: any) => async (args: any) => {
        await sleep(40) // every call to the stream is slow
        return next(args)
      },
      { step: "initialize", name: "slowKinesis" }
    )
    const reader = readerFromEnv(env, { kinesis: slow, maxBufferedRecords: 500, heartbeatIntervalMs: 200 })
    readers.push(reader)
    reader.start().catch(() => {})
    await waitFor(() => reader.stats.durableLsn !== null, 30_000, "reader streaming")
    await source.query(`INSERT INTO design (design_name, file_location, file_name, last_updated) SELECT 'D' || g, '/usr', 'd.json', now() FROM generate_series(1, 20000) g`)
    const target = await currentWalLsn(source)
    await waitFor(() => Boolean(reader.stats.durableLsn && compareLsn(reader.stats.durableLsn, target) >= 0), 120_000, "the transaction published")
    expect(reader.stats.maxQueued).toBeGreaterThan(100) // the buffer did fill up…
    expect(reader.stats.maxQueued).toBeLessThanOrEqual(500) // …and never past its bound
    const designs = (await readWholeStream(env)).filter((r) => r.record.kind === "change" && r.record.source.table === "design")
    expect(new Set(designs.map((r) => r.record.id)).size).toBe(20_000)
    await source.end()
  })

  it("drains on SIGTERM: exits promptly, publishes only whole transactions, and a restart loses nothing", async () => {
    const env = await isolatedPipelineEnv({ shards: 2 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    await installAudit(source)
    await seedDimensions(source)
    const from = Number((await source.query("SELECT max(seq) AS s FROM totes_audit")).rows[0].s)
    const first = spawnTotes(["run", "--components", "reader"], env)
    await waitFor(() => first.output().includes("streaming slot"), 30_000, "reader streaming")
    const writing = runMiniWorkload(source, { seed: 4, transactions: 150 })
    // SIGTERM comes while the reader is publishing the workload (it has put some of it on the stream).
    const published = async () => (await readWholeStream(env)).filter((r) => r.record.kind === "change" && r.record.op !== "r").length
    let seen = 0
    await waitFor(async () => (seen = await published()) >= 10, 30_000, () => `the first reader publishing the workload (${seen} changes on the stream)`, 100)
    const signalled = Date.now()
    first.child.kill("SIGTERM")
    const code = await first.exited
    expect(Date.now() - signalled).toBeLessThan(10_000)
    expect([0, 130, 143]).toContain(code) // an orderly, signalled stop
    await writing

    const second = spawnTotes(["run", "--components", "reader"], env)
    await waitFor(() => second.output().includes("streaming slot"), 30_000, "second reader streaming")
    const expected = (await auditedChanges(source, from)).length
    const distinct = async () => new Set((await readWholeStream(env)).flatMap((r) => (r.record.kind === "change" && r.record.op !== "r" ? [r.record.id] : []))).size
    await waitFor(async () => (await distinct()) >= expected, 60_000, "every change on the stream")
    second.child.kill("SIGTERM")
    await second.exited
    const changes = (await readWholeStream(env)).flatMap((r) => (r.record.kind === "change" && r.record.op !== "r" ? [r.record as ChangeEvent] : []))
    expect(new Set(changes.map((e) => e.id)).size).toBe(expected)
    // What the first reader published before stopping, it had acknowledged: nothing was sent twice.
    expect(changes.length).toBe(expected)
    await source.end()
  })
})
