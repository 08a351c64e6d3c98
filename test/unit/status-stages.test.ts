/** The pipeline's stages as the console draws them: each state follows from one reading. */
import { describe, expect, it } from "vitest"
import { pipelineStages, type PipelineStage } from "../../services/status/stages.ts"
import { pipelineStatus } from "../fixtures/status.ts"

const byId = (stages: ReadonlyArray<PipelineStage>) => Object.fromEntries(stages.map((s) => [s.id, s]))
const states = (stages: ReadonlyArray<PipelineStage>) => Object.fromEntries(stages.map((s) => [s.id, s.state]))

describe("pipeline stages", () => {
  it("a healthy pipeline: every stage running, in the order of the path", () => {
    const stages = pipelineStages(pipelineStatus())
    expect(stages.map((s) => s.id)).toEqual(["source", "reader", "stream", "lake", "consumer", "warehouse"])
    expect(new Set(stages.map((s) => s.state))).toEqual(new Set(["running"]))
    const s = byId(stages)
    expect(s.source!.detail).toBe("WAL at 0/3000000")
    expect(s.reader!.detail).toBe("durable 0/3000000 · lag 0 B, 0.0 s")
    expect(s.stream!.detail).toBe("4 shards")
    expect(s.lake!.detail).toBe("complete through 0/2FF0000 · lag 5.0 s · 12 objects in the last hour")
    expect(s.consumer!.detail).toBe("lag 4.0 KiB, 0.5 s")
    expect(s.warehouse!.detail).toBe("consistent through 0/2FFF000")
  })

  it("a reader without a slot or without a connection is stopped; one far behind is behind", () => {
    expect(byId(pipelineStages(pipelineStatus({ reader: { slotConfirmedLsn: null, slotActive: false } }))).reader).toMatchObject({ state: "stopped", detail: "no replication slot: the reader has not started, or its slot is gone" })
    expect(byId(pipelineStages(pipelineStatus({ reader: { slotActive: false, lagBytes: 2_097_152 } }))).reader).toMatchObject({ state: "stopped", detail: "slot inactive: no reader connected · durable 0/3000000 · lag 2.0 MiB" })
    expect(byId(pipelineStages(pipelineStatus({ reader: { checkpointLsn: null } }))).reader!.state).toBe("behind")
    expect(byId(pipelineStages(pipelineStatus({ reader: { lagSeconds: 30 } }))).reader!.state).toBe("running")
    expect(byId(pipelineStages(pipelineStatus({ reader: { lagSeconds: 31 } }))).reader!.state).toBe("behind")
    expect(byId(pipelineStages(pipelineStatus({ reader: { lagSeconds: 31 } }), { behindSeconds: 60, lakeBehindSeconds: 900 })).reader!.state).toBe("running")
  })

  it("dead letters draw attention to the consumer; paused tables to the warehouse", () => {
    const dead = pipelineStages(pipelineStatus({ lakeActivity: { deadLetters: { count: 3, lookbackDays: 30, newest: [] } } }))
    expect(byId(dead).consumer).toMatchObject({ state: "attention", detail: "lag 4.0 KiB, 0.5 s · 3 dead letters in 30 days" })
    const paused = pipelineStages(
      pipelineStatus({ paused: [{ table: "design", column: "design_name", problem: "missing", detail: "no column design_name", consistentBeforeLsn: "0/1", consistentBeforeAt: null, parkedEvents: 2 }] })
    )
    expect(byId(paused).warehouse).toMatchObject({ state: "attention", detail: "consistent through 0/2FFF000 · paused: design" })
    // Behind outweighs attention.
    expect(byId(pipelineStages(pipelineStatus({ consumer: { lagSeconds: 45 }, lakeActivity: { deadLetters: { count: 1, lookbackDays: 30, newest: [] } } }))).consumer!.state).toBe("behind")
  })

  it("what is not known yet is unknown, and says why", () => {
    const fresh = pipelineStages(
      pipelineStatus({ consumer: { shards: [], consistentThroughLsn: null, consistentThroughAt: null, consistentThroughSource: null, lagBytes: null, lagSeconds: null }, lake: { watermarkLsn: null, watermarkAt: null, lagBytes: null, lagSeconds: null } })
    )
    expect(states(fresh)).toEqual({ source: "running", reader: "running", stream: "unknown", lake: "unknown", consumer: "unknown", warehouse: "unknown" })
    expect(byId(fresh).lake!.detail).toBe("no heartbeat archived yet · 12 objects in the last hour")
    expect(byId(pipelineStages(pipelineStatus({ lake: null }))).lake).toMatchObject({ state: "unknown", detail: "not read" })
    expect(byId(pipelineStages(pipelineStatus({ lake: { error: "S3 unavailable" } }))).lake).toMatchObject({ state: "unknown", detail: "cannot read: S3 unavailable" })
    expect(byId(pipelineStages(pipelineStatus({ lake: { lagSeconds: 901 } }))).lake!.state).toBe("behind")
    expect(byId(pipelineStages(pipelineStatus({ consumer: { consistentThroughSource: "replay" } }))).warehouse!.detail).toBe("consistent through 0/2FFF000 (rebuilt by replay)")
  })
})
