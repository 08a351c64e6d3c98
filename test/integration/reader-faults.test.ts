import { describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { compareLsn } from "../../contracts/lsn.ts"
import { kinesisClient } from "../../services/shared/aws-clients.ts"
import { readerFromEnv } from "../../services/reader/main.ts"
import { dropSlot } from "../../services/reader/source-admin.ts"
import { initSourceSchema } from "../../tools/source/totesys-db.ts"
import { injectKinesisFaults } from "../fakes/kinesis-faults.ts"
import { auditedChanges, installAudit } from "../support/audit.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { runMiniWorkload, seedDimensions } from "../support/mini-workload.ts"
import { waitFor } from "../support/processes.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"
import { stoppedAfterEach, waitDurable } from "../support/readers.ts"

const readers = stoppedAfterEach()


const order = (a: ChangeEvent, b: ChangeEvent) => compareLsn(a.source.commitLsn, b.source.commitLsn) || a.source.index - b.source.index

describe("reader against a failing Kinesis", () => {
  it("loses nothing and keeps per-key order through throttling, timeouts and partial failures", async () => {
    const env = await isolatedPipelineEnv({ shards: 2 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    await installAudit(source)
    await seedDimensions(source)
    const kinesis = kinesisClient(env)
    const faults = injectKinesisFaults(kinesis, { throttleRate: 0.15, timeoutRate: 0.1, partialRate: 0.3, seed: 7 })
    const reader = readerFromEnv(env, { kinesis, heartbeatIntervalMs: 300 })
    readers.push(reader)
    reader.start().catch(() => {})
    await waitDurable(reader, source)
    const seq = Number((await source.query("SELECT max(seq) AS s FROM totes_audit")).rows[0].s)
    // Hot keys: payments flip, addresses change again and again, orders come and go.
    await runMiniWorkload(source, { seed: 3, transactions: 400 })
    await waitDurable(reader, source)
    await reader.stop()

    expect(faults.throttled).toBeGreaterThan(0)
    expect(faults.timedOut).toBeGreaterThan(0)
    expect(faults.failedEntries).toBeGreaterThan(0)

    const records = await readWholeStream(env)
    const changes = records.filter((r) => r.record.kind === "change" && r.record.op !== "r")
    const distinct = new Map<string, ChangeEvent>()
    for (const r of changes) distinct.set((r.record as ChangeEvent).id, r.record as ChangeEvent)
    const expected = (await auditedChanges(source, seq)).map((a) => `${a.xid}|${a.table}|${a.op}|${a.key ?? ""}`).sort()
    const got = [...distinct.values()].map((e) => `${e.source.xid}|${e.source.table}|${e.op}|${e.key ? Object.values(e.key)[0] : ""}`).sort()
    expect(got).toEqual(expected)

    // Per row, events reach their shard in commit order (first appearance; retried duplicates may repeat).
    const firstSeen = new Map<string, Array<ChangeEvent>>()
    const seen = new Set<string>()
    const streamOrder = (a: (typeof changes)[number], b: (typeof changes)[number]) =>
      a.shardId !== b.shardId
        ? (a.shardId < b.shardId ? -1 : 1)
        : a.sequenceNumber !== b.sequenceNumber
          ? (BigInt(a.sequenceNumber) < BigInt(b.sequenceNumber) ? -1 : 1)
          : a.subSequenceNumber - b.subSequenceNumber
    for (const r of changes.sort(streamOrder)) {
      const event = r.record as ChangeEvent
      if (seen.has(event.id)) continue
      seen.add(event.id)
      const list = firstSeen.get(r.partitionKey) ?? []
      list.push(event)
      firstSeen.set(r.partitionKey, list)
    }
    let multiEventKeys = 0
    for (const events of firstSeen.values()) {
      if (events.length > 1) multiEventKeys++
      expect(events.map((e) => e.id)).toEqual([...events].sort(order).map((e) => e.id))
    }
    expect(multiEventKeys).toBeGreaterThan(5)
    kinesis.destroy()
    await source.end()
  })
})

describe("slot guard", () => {
  it("refuses to run when the slot was dropped or recreated behind its back; --resnapshot starts over", async () => {
    const env = await isolatedPipelineEnv({ shards: 1 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    await seedDimensions(source)
    const first = readerFromEnv(env, { heartbeatIntervalMs: 200 })
    readers.push(first)
    first.start().catch(() => {})
    await waitDurable(first, source)
    await first.stop()

    // Dropped: detected as a missing slot.
    await dropSlot(source, env.TOTES_SLOT!)
    await expect(readerFromEnv(env).start()).rejects.toThrow(/is missing but the checkpoint says/)

    // Recreated by someone else at the current WAL position: detected as moved past the checkpoint.
    await runMiniWorkload(source, { seed: 1, transactions: 5 })
    await source.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [env.TOTES_SLOT])
    const second = readerFromEnv(env)
    await expect(second.start()).rejects.toThrow(/was moved past the reader's checkpoint/)
    await second.stop()

    // The operator's way out: --resnapshot starts over with a new slot and initial snapshot.
    const messages: Array<string> = []
    const third = readerFromEnv(env, { resnapshot: true, heartbeatIntervalMs: 200, onProgress: (p) => p.phase === "info" && messages.push(p.message) })
    readers.push(third)
    third.start().catch(() => {})
    await waitDurable(third, source)
    expect(messages.join("\n")).toMatch(/--resnapshot: replication slot .* was moved past/)
    const snapshotReads = (await readWholeStream(env)).filter((r) => r.record.kind === "change" && r.record.op === "r")
    const staffIds = new Set(snapshotReads.flatMap((r) => (r.record.kind === "change" && r.record.source.table === "staff" ? [r.record.id] : [])))
    expect(staffIds.size).toBe(10) // 5 staff rows, read by the first and by the new snapshot (new ids)
    await source.end()
  })

  it("refuses a second reader on the same slot", async () => {
    const env = await isolatedPipelineEnv({ shards: 1 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    const first = readerFromEnv(env, { heartbeatIntervalMs: 200 })
    readers.push(first)
    first.start().catch(() => {})
    await waitFor(() => first.stats.durableLsn !== null, 20_000, "first reader streaming")
    const second = readerFromEnv(env)
    await expect(second.start()).rejects.toThrow(/another reader holds slot/)
    await second.stop()
    await source.end()
  })
})
