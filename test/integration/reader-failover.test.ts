/**
 * Failover slots on PostgreSQL 18, with two embedded clusters: a primary and a physical standby
 * (a cold copy of the primary, tools/local/postgres.ts) that synchronises failover slots. The
 * reader reaches the source through a TCP proxy; a failover is a crash of the primary, the
 * promotion of the standby and the proxy pointing at it. The reader reconnects by itself and
 * continues from the synchronised slot: the stream equals the new primary's audit of committed
 * changes (nothing lost, and nothing the new primary does not have).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import pg from "pg"
import { afterEach, describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { readerFromEnv } from "../../services/reader/main.ts"
import type { ReaderProgress } from "../../services/reader/reader.ts"
import { slotInfo } from "../../services/reader/source-admin.ts"
import { startPostgres, startStandby, type LocalPostgres, type LocalStandby } from "../../tools/local/postgres.ts"
import { initSourceSchema } from "../../tools/source/totesys-db.ts"
import { auditedChanges, installAudit } from "../support/audit.ts"
import { writeDesignsUntil } from "../support/design-writer.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { seedDimensions } from "../support/mini-workload.ts"
import { waitFor } from "../support/processes.ts"
import { stoppedAfterEach, waitDurable } from "../support/readers.ts"
import { isolatedPipelineEnv } from "../support/stack.ts"
import { startTcpProxy, viaProxy, type TcpProxy } from "../support/tcp-proxy.ts"

const readers = stoppedAfterEach()
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
})

const query = async <R extends pg.QueryResultRow = any>(url: string, text: string, params: Array<unknown> = []): Promise<Array<R>> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<R>(text, params)).rows
  } finally {
    await client.end()
  }
}

/** A primary with the totesys schema, the audit trigger and some dimensions; cleaned up after the test. */
const primaryWithSource = async (): Promise<LocalPostgres> => {
  const dir = mkdtempSync(join(tmpdir(), "totes-failover-"))
  const primary = await startPostgres({ dir, databases: ["totesys"] })
  cleanups.push(async () => {
    await primary.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  const source = new pg.Client({ connectionString: primary.url("totesys") })
  await source.connect()
  await initSourceSchema(source)
  await installAudit(source)
  await seedDimensions(source)
  await source.end()
  return primary
}

const standbyOf = async (primary: LocalPostgres, options: Parameters<typeof startStandby>[1]): Promise<LocalStandby> => {
  const standby = await startStandby(primary, options)
  cleanups.push(() => standby.stop())
  return standby
}

const proxyTo = async (port: number): Promise<TcpProxy> => {
  const proxy = await startTcpProxy(port)
  cleanups.push(() => proxy.close())
  return proxy
}

/** The reader's slot as the standby sees it: synchronised and persistent (a temporary one is dropped at promotion). */
const syncedSlot = async (standby: LocalStandby, slot: string) =>
  (
    await query(standby.url("postgres"), "SELECT synced, temporary, failover, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1", [slot])
  )[0] as { synced: boolean; temporary: boolean; failover: boolean; confirmed: string | null } | undefined

const messages = (progress: ReadonlyArray<ReaderProgress>, phase: "warning" | "info") => progress.flatMap((p) => (p.phase === phase ? [p.message] : []))

const designChanges = async (env: Record<string, string>) =>
  [
    ...new Set(
      (await readWholeStream(env)).flatMap((r) =>
        r.record.kind === "change" && r.record.op !== "r" && r.record.source.table === "design" ? [`${r.record.op}|${Object.values((r.record as ChangeEvent).key ?? {})[0]}`] : []
      )
    )
  ].sort()

describe("failover slots (PostgreSQL 18, primary and physical standby)", () => {
  it("the reader continues from the promoted standby's synchronised slot with nothing lost under a writing workload", async () => {
    const primary = await primaryWithSource()
    const standby = await standbyOf(primary, { slot: "standby1" })
    const proxy = await proxyTo(primary.port)
    const env: Record<string, string> = { ...(await isolatedPipelineEnv({ shards: 2 })), SOURCE_DATABASE_URL: viaProxy(primary.url("totesys"), proxy) }
    const from = Number((await query(primary.url("totesys"), "SELECT max(seq) AS s FROM totes_audit"))[0].s)

    const progress: Array<ReaderProgress> = []
    const reader = readerFromEnv(env, {
      failoverSlot: true,
      slotSyncGraceMs: 10_000,
      heartbeatIntervalMs: 50,
      lagIntervalMs: 250,
      statusIntervalMs: 500,
      onProgress: (p) => progress.push(p)
    })
    readers.push(reader)
    const running = reader.start()
    running.catch(() => {})
    await waitFor(() => reader.stats.durableLsn !== null, 30_000, "reader streaming")
    const slot = env.TOTES_SLOT!
    expect(messages(progress, "info")).toContain(`created slot '${slot}' with failover: standbys with sync_replication_slots = on keep it`)
    expect(await query(primary.url("totesys"), "SELECT failover FROM pg_replication_slots WHERE slot_name = $1", [slot])).toEqual([{ failover: true }])

    const stopWriting = new AbortController()
    const counts = { committed: 0, failures: 0 }
    const writing = writeDesignsUntil(env.SOURCE_DATABASE_URL!, stopWriting.signal, counts)
    // The standby synchronises the slot (persistent once the primary's copy has moved on) …
    await waitFor(async () => {
      const synced = await syncedSlot(standby, slot)
      return Boolean(synced?.synced && !synced.temporary && synced.failover && synced.confirmed)
    }, 60_000, "the standby holds a synchronised, persistent copy of the slot")
    // … and the reader found nothing missing on the way (the grace for slow synchronisation has passed).
    await waitFor(() => messages(progress, "info").some((m) => m.includes("has failover and is synchronised through standby slot(s) standby1")), 30_000, "the reader saw the standby ready")
    // A negative check needs a window: no warning in the next second (four slot checks at lagIntervalMs 250).
    await sleep(1_000)
    expect(messages(progress, "warning")).toEqual([])

    // Failover: the primary crashes, the standby is promoted, the proxy points at it.
    proxy.down()
    await primary.crash()
    await standby.promote()
    const seqAtPromotion = Number((await query(standby.url("totesys"), "SELECT max(seq) AS s FROM totes_audit"))[0].s)
    proxy.retarget(standby.port)
    proxy.up()

    await waitFor(() => reader.stats.reconnects > 0, 30_000, "reader noticed the failover")
    // The workload goes on against the new primary, so the reader must also take what is written there.
    const noticed = counts.committed
    await waitFor(() => counts.committed >= noticed + 50, 60_000, () => `the workload writing to the new primary (${counts.committed - noticed} designs since the reader noticed the failover)`)
    stopWriting.abort()
    const written = await writing
    expect(written.failures).toBeGreaterThan(0) // the workload really saw the failover
    expect(written.committed).toBeGreaterThan(50)

    const check = new pg.Client({ connectionString: standby.url("totesys") })
    await check.connect()
    try {
      await waitDurable(reader, check, 60_000)
      expect(reader.error).toBeUndefined()
      // Every change the new primary holds is on the stream, and nothing it lacks: the old primary
      // sent the reader nothing the standby had not received (synchronized_standby_slots).
      const audit = await auditedChanges(check, from)
      const expected = audit.filter((a) => a.table === "design").map((a) => `${a.op}|${a.key}`).sort()
      expect(await designChanges(env)).toEqual(expected)
      expect(expected.length).toBeGreaterThan(50)
      expect((await auditedChanges(check, seqAtPromotion)).length).toBeGreaterThan(0) // written to the new primary
      // The reader streams from the promoted server's copy of the slot.
      const onNew = await slotInfo(check, slot)
      expect(onNew).toMatchObject({ failover: true, synced: true, walStatus: "reserved" })
      expect(onNew?.activePid).not.toBeNull()
    } finally {
      await check.end()
    }
    // The new primary has no standby of its own: the reader says so (the slot would not survive a second failover).
    await waitFor(() => messages(progress, "warning").length >= 2, 30_000, "warnings about the new primary's missing standby")
    expect(messages(progress, "warning").map((m) => m.slice(0, 60))).toEqual([
      "no physical replication slot exists on this server: no stand",
      "synchronized_standby_slots is empty: the reader can receive "
    ])
    await reader.stop()
    await running
  })

  it("says what a standby lacks and that synchronized_standby_slots holds the reader back, before a failover would show it", async () => {
    const primary = await primaryWithSource()
    // A standby that does not synchronise slots; the primary also waits for a slot that does not exist.
    await standbyOf(primary, { slot: "standby1", syncReplicationSlots: false })
    await waitFor(
      async () => (await query(primary.url("postgres"), "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'standby1' AND active AND xmin IS NOT NULL")).length === 1,
      30_000,
      "the standby connected with hot_standby_feedback"
    )
    const setListed = async (value: string) => {
      await query(primary.url("postgres"), `ALTER SYSTEM SET synchronized_standby_slots = '${value}'`)
      await query(primary.url("postgres"), "SELECT pg_reload_conf()")
    }
    await setListed("standby1, ghost")
    const env: Record<string, string> = { ...(await isolatedPipelineEnv({ shards: 1 })), SOURCE_DATABASE_URL: primary.url("totesys") }
    const progress: Array<ReaderProgress> = []
    const reader = readerFromEnv(env, { failoverSlot: true, slotSyncGraceMs: 1_000, heartbeatIntervalMs: 100, lagIntervalMs: 200, onProgress: (p) => progress.push(p) })
    readers.push(reader)
    reader.start().catch(() => {})
    await waitFor(() => reader.stats.durableLsn !== null, 30_000, "the initial snapshot checkpointed")
    await waitFor(() => messages(progress, "warning").length >= 2, 30_000, "warnings about the standbys")
    expect(messages(progress, "warning")).toEqual([
      "synchronized_standby_slots names 'ghost', which is not a slot on this server: logical decoding waits for it, so the reader receives nothing. Remove it from synchronized_standby_slots or create the standby's slot.",
      "the standby streaming through 'standby1' holds no synchronised slot (its slot has no catalog_xmin): set sync_replication_slots = on and a dbname in primary_conninfo on that standby."
    ])

    // The stall the warning announces: a committed change does not reach the reader …
    const source = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL })
    await source.connect()
    try {
      const { rows } = await source.query("INSERT INTO design (design_name, file_location, file_name, last_updated) VALUES ('Held back', '/usr', 'd.json', now()) RETURNING design_id")
      // A negative check needs a window: two seconds, where a reader that is not held back streams a change in well under one.
      await sleep(2_000)
      expect(await designChanges(env)).toEqual([])
      // … until the operator fixes synchronized_standby_slots.
      await setListed("standby1")
      await waitDurable(reader, source, 30_000)
      expect(await designChanges(env)).toEqual([`c|${rows[0].design_id}`])
      await waitFor(() => messages(progress, "info").some((m) => m.startsWith("resolved: synchronized_standby_slots names 'ghost'")), 10_000, "the stall reported resolved")
    } finally {
      await source.end()
    }
  })

  it("switches an existing slot without failover when failover slots are asked for (before it streams, while nobody holds the slot)", async () => {
    const primary = await primaryWithSource()
    const env: Record<string, string> = { ...(await isolatedPipelineEnv({ shards: 1 })), SOURCE_DATABASE_URL: primary.url("totesys") }
    const slot = env.TOTES_SLOT!
    const failoverOf = async () => (await query(primary.url("totesys"), "SELECT failover FROM pg_replication_slots WHERE slot_name = $1", [slot]))[0]?.failover
    const run = async (failoverSlot: boolean, work: (progress: Array<ReaderProgress>) => Promise<void>) => {
      const progress: Array<ReaderProgress> = []
      const reader = readerFromEnv(env, { failoverSlot, slotSyncGraceMs: 0, heartbeatIntervalMs: 100, lagIntervalMs: 100, onProgress: (p) => progress.push(p) })
      readers.push(reader)
      reader.start().catch(() => {})
      await waitFor(() => reader.stats.durableLsn !== null, 30_000, "reader streaming")
      await work(progress)
      await reader.stop()
      expect(reader.error).toBeUndefined()
    }

    await run(false, async (progress) => {
      // A negative check needs a window: half a second is five slot checks at lagIntervalMs 100.
      await sleep(500)
      expect(messages(progress, "warning")).toEqual([]) // not asked for: nothing to say
    })
    expect(await failoverOf()).toBe(false)

    await run(true, async (progress) => {
      const infos = progress.flatMap((p) => (p.phase === "info" ? [p.message] : []))
      expect(infos).toContain(`slot '${slot}' now survives a failover to a synchronised standby (FAILOVER true)`)
      expect(await failoverOf()).toBe(true)
      // No standby here: the reader says so, but not that the slot lacks failover.
      await waitFor(() => messages(progress, "warning").length >= 2, 10_000, "the standby findings")
      expect(messages(progress, "warning").map((m) => m.slice(0, 40))).toEqual(["no physical replication slot exists on t", "synchronized_standby_slots is empty: the"])
    })
  })
})
