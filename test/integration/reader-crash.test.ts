/**
 * kill -9 of the reader process at random moments during a workload, restarted each time:
 * the distinct event ids on the stream cover every committed change (duplicates allowed, loss not).
 */
import { setTimeout as sleep } from "node:timers/promises"
import { describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { initSourceSchema } from "../../tools/source/totesys-db.ts"
import { auditedChanges, installAudit } from "../support/audit.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { runMiniWorkload, seedDimensions } from "../support/mini-workload.ts"
import { spawnTotes, waitFor } from "../support/processes.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"

describe("reader crash safety", () => {
  it("loses nothing across 10 kill -9 restarts during a workload", async () => {
    const env = await isolatedPipelineEnv({ shards: 2 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    await installAudit(source)
    await seedDimensions(source)
    // Rows committed before the first reader starts arrive as snapshot reads, not changes.
    const seededThrough = Number((await source.query("SELECT coalesce(max(seq), 0) AS seq FROM totes_audit")).rows[0].seq)

    const workloadClient = await connect(env.SOURCE_DATABASE_URL!)
    const stop = new AbortController()
    const startWorkload = async () => {
      let seed = 1
      while (!stop.signal.aborted) {
        await runMiniWorkload(workloadClient, { seed: seed++, transactions: 5, signal: stop.signal })
        await sleep(25) // a paced workload, so that it spans all ten kills
      }
    }
    let workload: Promise<void> | undefined

    let seed = 42
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31)
    for (let cycle = 0; cycle < 10; cycle++) {
      const reader = spawnTotes(["run", "--components", "reader"], env)
      await waitFor(() => reader.output().includes("streaming slot"), 30_000, () => `reader start (cycle ${cycle}): ${reader.output()}`)
      // The workload starts once the slot exists: what committed before is in the snapshot.
      if (cycle === 0) workload = startWorkload()
      await sleep(200 + random() * 1500) // the kill comes at a random moment: that is the test
      reader.child.kill("SIGKILL")
      await reader.exited
    }
    stop.abort()
    await workload
    await workloadClient.end()

    // A final reader runs until it has published everything, then stops cleanly.
    const final = spawnTotes(["run", "--components", "reader"], { ...env })
    await waitFor(() => final.output().includes("streaming slot"), 30_000, "final reader start")
    const expected = await auditedChanges(source, seededThrough)
    const distinctIds = async () => {
      const records = await readWholeStream(env)
      const byId = new Map<string, ChangeEvent>()
      for (const r of records) if (r.record.kind === "change" && r.record.op !== "r") byId.set(r.record.id, r.record)
      return byId
    }
    // Reading the whole stream is not cheap: look once a second.
    await waitFor(async () => (await distinctIds()).size >= expected.length, 60_000, "every change on the stream", 1_000).catch(async (error) => {
      const have = new Set([...(await distinctIds()).values()].map((e) => `${e.source.xid}|${e.source.table}|${e.op}|${e.key ? Object.values(e.key)[0] : ""}`))
      const missing = expected.map((a) => `${a.xid}|${a.table}|${a.op}|${a.key ?? ""}`).filter((k) => !have.has(k))
      throw new Error(`${error.message}: ${have.size} of ${expected.length}; missing e.g. ${missing.slice(0, 10).join(" ")}\n${final.output()}`)
    })
    final.child.kill("SIGTERM")
    expect(await final.exited).not.toBeNull()

    const events = [...(await distinctIds()).values()]
    const fromStream = events.map((e) => `${e.source.xid}|${e.source.table}|${e.op}|${e.key ? Object.values(e.key)[0] : ""}`).sort()
    const fromAudit = expected.map((a) => `${a.xid}|${a.table}|${a.op}|${a.key ?? ""}`).sort()
    expect(fromStream.length).toBeGreaterThan(200)
    expect(fromStream).toEqual(fromAudit)
    await source.end()
  })
})
