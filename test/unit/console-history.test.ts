/** The console's time series: one point per observation, rates from successive observations, bounded. */
import { describe, expect, it } from "vitest"
import { ConsoleHistory, SERIES, toPoint, type Observation } from "../../tools/console/history.ts"
import { pipelineStatus } from "../fixtures/status.ts"

const observation = (at: number, parts: Partial<Observation> = {}): Observation => ({ at, status: pipelineStatus(), published: null, applied: null, latenciesMs: [], ...parts })

describe("console history", () => {
  it("derives rates from two observations: events from counters, WAL bytes from positions", () => {
    const before = observation(10_000, {
      published: 100,
      applied: 90,
      status: pipelineStatus({ reader: { checkpointLsn: "0/1000000" }, consumer: { consistentThroughLsn: "0/F00000" } })
    })
    const after = observation(12_000, {
      published: 140,
      applied: 150,
      latenciesMs: [300, 100, 200, 1_000],
      status: pipelineStatus({ reader: { checkpointLsn: "0/1000800" }, consumer: { consistentThroughLsn: "0/F00400" } })
    })
    const point = toPoint(after, before)
    expect(point.t).toBe(12)
    expect(point.values).toMatchObject({
      publishedPerSecond: 20,
      appliedPerSecond: 30,
      publishedWalBytesPerSecond: 1024,
      appliedWalBytesPerSecond: 512,
      latencyP50Ms: 300,
      latencyP99Ms: 1_000
    })
  })

  it("the first observation has levels but no rates; a counter that went back (restart, statistics reset) gives a gap, not a negative rate", () => {
    const first = toPoint(observation(1_000, { applied: 50 }), undefined)
    expect(first.values.appliedPerSecond).toBeNull()
    expect(first.values.publishedWalBytesPerSecond).toBeNull()
    expect(first.values.consumerLagBytes).toBe(4096)
    expect(first.values.lakeLagSeconds).toBe(5)
    expect(first.values.latencyP50Ms).toBeNull()
    expect(toPoint(observation(2_000, { applied: 10 }), observation(1_000, { applied: 50 })).values.appliedPerSecond).toBeNull()
    expect(toPoint(observation(2_000, { applied: 60 }), observation(1_000, { applied: 50 })).values.appliedPerSecond).toBe(10)
  })

  it("per shard: bytes between the source's position and the shard's last heartbeat; no status, no values", () => {
    const status = pipelineStatus({
      source: { walLsn: "0/3000000" },
      consumer: { shards: [{ shardId: "shardId-000000000000", checkpointSequence: "1", appliedSequence: "1", heartbeatLsn: "0/2FFFC00" }, { shardId: "shardId-000000000001", checkpointSequence: null, appliedSequence: null, heartbeatLsn: null }] }
    })
    expect(toPoint(observation(1_000, { status }), undefined).shardLagBytes).toEqual({ "shardId-000000000000": 1024, "shardId-000000000001": null })
    const blind = toPoint(observation(2_000, { status: undefined }), observation(1_000))
    expect(Object.values(blind.values).every((v) => v === null)).toBe(true)
    expect(blind.shardLagBytes).toEqual({})
  })

  it("keeps the newest points up to its capacity and hands them over as columns", () => {
    const history = new ConsoleHistory(3)
    for (let i = 0; i < 5; i++) history.record(observation(1_000 * (i + 1), { applied: i * 10 }))
    expect(history.length).toBe(3)
    const columns = history.columns()
    expect(columns.t).toEqual([3, 4, 5])
    expect(Object.keys(columns.series)).toEqual([...SERIES])
    expect(columns.series.appliedPerSecond).toEqual([10, 10, 10])
    expect(Object.keys(columns.shards)).toEqual(["shardId-000000000000", "shardId-000000000001", "shardId-000000000002", "shardId-000000000003"])
    expect(columns.shards["shardId-000000000000"]).toEqual([4096, 4096, 4096])
  })
})
