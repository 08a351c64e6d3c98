import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import { MemoryLogSink, makeLogger } from "../../services/shared/logger.ts"
import { metrics } from "../../services/shared/metrics.ts"
import { DeadLetterFailed } from "../../services/consumer/process-batch.ts"
import { SnapshotChunkUnavailable } from "../../services/consumer/snapshot-chunks.ts"
import { KinesisReadError } from "../../services/shared/kinesis/shard-reading.ts"
import { dependencyOf, errorCodeOf, makeOutageReporter } from "../../services/shared/outage-reporter.ts"
import { warehouseError } from "../../services/warehouse/warehouse-errors.ts"

const refused = (port: number) => Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:${port}`), { code: "ECONNREFUSED" })

describe("outage reporter", () => {
  beforeEach(() => {
    vi.useFakeTimers()
    vi.setSystemTime(new Date("2026-11-20T10:00:00.000Z"))
  })
  afterEach(() => vi.useRealTimers())

  const setup = (quietMs?: number) => {
    const sink = new MemoryLogSink()
    const log = makeLogger("consumer", { sink, level: "debug", now: () => new Date() })
    return { sink, outages: makeOutageReporter({ log, ...(quietMs === undefined ? {} : { quietMs }) }) }
  }

  it("logs one line when an outage starts and one when a success ends it, with duration, retries and what was retried", () => {
    const { sink, outages } = setup()
    for (let attempt = 0; attempt < 20; attempt++) {
      outages.failure("Kinesis", refused(4567), `poll shardId-00000000000${attempt % 2}`)
      vi.advanceTimersByTime(1_000)
    }
    expect(outages.current()).toMatchObject([{ dependency: "Kinesis", failures: 20 }])
    outages.success("Kinesis") // 1 s after the last failure: may rest on an older call, not yet the end
    expect(sink.lines).toHaveLength(1)
    vi.advanceTimersByTime(1_000)
    outages.success("Kinesis")
    outages.success("Kinesis") // no outage any more: nothing
    expect(sink.records().map(({ time: _time, ...r }) => r)).toEqual([
      {
        level: "warn",
        component: "consumer",
        message: "Kinesis is unavailable; retrying with backoff (one line when it is back)",
        dependency: "Kinesis",
        reason: "connect ECONNREFUSED 127.0.0.1:4567",
        errorCode: "ECONNREFUSED",
        operations: ["poll shardId-000000000000"]
      },
      {
        level: "info",
        component: "consumer",
        message: "Kinesis is available again after 21.0 s; 20 failed attempts retried",
        dependency: "Kinesis",
        durationMs: 21_000,
        retries: 20,
        operations: ["poll shardId-000000000000", "poll shardId-000000000001"],
        reason: "connect ECONNREFUSED 127.0.0.1:4567",
        errorCode: "ECONNREFUSED"
      }
    ])
    expect(outages.current()).toEqual([])
  })

  it("ends an outage after a quiet period when no success is reported, its duration running to the last failure", () => {
    const { sink, outages } = setup(5_000)
    outages.failure("DynamoDB", new Error("x"))
    vi.advanceTimersByTime(3_000)
    outages.failure("DynamoDB", new Error("y"))
    vi.advanceTimersByTime(4_999)
    expect(sink.lines).toHaveLength(1)
    vi.advanceTimersByTime(1)
    const records = sink.records()
    expect(records).toHaveLength(2)
    expect(records[1]).toMatchObject({ level: "info", dependency: "DynamoDB", durationMs: 3_000, retries: 2, reason: "y", operations: [] })
  })

  it("keeps each dependency's outage apart", () => {
    const { sink, outages } = setup(0)
    outages.failure("S3", new Error("a"))
    outages.failure("warehouse", new Error("b"))
    outages.failure("S3", new Error("c"))
    vi.advanceTimersByTime(60_000) // quietMs 0: only success ends an outage
    outages.success("warehouse")
    expect(sink.records().map((r) => `${r.level} ${r.dependency as string}`)).toEqual(["warn S3", "warn warehouse", "info warehouse"])
    expect(outages.current().map((o) => o.dependency)).toEqual(["S3"])
    outages.close()
  })

  it("a success right after a failure (a call made before the outage) does not split it", () => {
    const { sink, outages } = setup()
    outages.failure("Kinesis", new Error("shard 0 cut"), "read shardId-0")
    vi.advanceTimersByTime(190)
    outages.success("Kinesis") // shard 1's batch, read before the cut
    vi.advanceTimersByTime(100)
    for (let second = 0; second < 20; second++) {
      outages.failure("Kinesis", new Error("still cut"), `read shardId-${second % 2}`)
      vi.advanceTimersByTime(1_000)
    }
    vi.advanceTimersByTime(1_500)
    outages.success("Kinesis")
    expect(sink.records().map((r) => [r.level, r.retries])).toEqual([
      ["warn", undefined],
      ["info", 21]
    ])
  })

  it("a new outage after the end of one starts again with a warning", () => {
    const { sink, outages } = setup()
    outages.failure("S3", new Error("a"))
    vi.advanceTimersByTime(2_000)
    outages.success("S3")
    outages.failure("S3", new Error("b"))
    expect(sink.records().map((r) => r.level)).toEqual(["warn", "info", "warn"])
  })
})

describe("outage metrics", () => {
  beforeEach(() => {
    vi.useFakeTimers()
    vi.setSystemTime(new Date("2026-11-20T10:00:00.000Z"))
  })
  afterEach(() => vi.useRealTimers())

  it("count an outage when it starts, repeat its duration once a minute while it lasts, and give the total when it ends", () => {
    const captured = metrics.capture()
    try {
      const outages = makeOutageReporter({ log: makeLogger("archiver", { sink: new MemoryLogSink(), now: () => new Date() }), component: "archiver", quietMs: 0 })
      for (let second = 0; second <= 150; second += 5) {
        outages.failure("S3", refused(4569), "put raw object")
        vi.advanceTimersByTime(5_000)
      }
      outages.success("S3") // 5 s after the last failure: the outage lasted 155 s
      const where = { Component: "archiver", Dependency: "S3" }
      expect(captured.sink.values("DependencyOutages", where)).toEqual([1])
      expect(captured.sink.values("DependencyOutageSeconds", where)).toEqual([60, 120, 155])
      outages.close()
    } finally {
      captured.restore()
    }
  })
})

describe("dependencyOf", () => {
  const env = { AWS_ENDPOINT_URL_KINESIS: "http://127.0.0.1:4567", AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:4568", AWS_ENDPOINT_URL_S3: "http://127.0.0.1:4569" }

  it("names the dependency from tagged errors, AWS hosts and local endpoints", () => {
    expect(dependencyOf({ _tag: "CheckpointError", message: "t: connect ECONNREFUSED" }, "Kinesis", env)).toBe("DynamoDB")
    expect(dependencyOf({ _tag: "LakeError", message: "m" }, "Kinesis", env)).toBe("S3")
    expect(dependencyOf(new Error("getaddrinfo ENOTFOUND kinesis.eu-west-2.amazonaws.com"), "x", {})).toBe("Kinesis")
    expect(dependencyOf(new Error("getaddrinfo ENOTFOUND dynamodb.eu-west-2.amazonaws.com"), "x", {})).toBe("DynamoDB")
    expect(dependencyOf(refused(4568), "Kinesis", env)).toBe("DynamoDB")
    expect(dependencyOf(refused(4569), "Kinesis", env)).toBe("S3")
    expect(dependencyOf(refused(9999), "Kinesis", env)).toBe("Kinesis")
    expect(dependencyOf(undefined, "warehouse", env)).toBe("warehouse")
  })

  it("names the dependency behind the consumer's and the archiver's own tagged errors", () => {
    const pgRefused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })
    expect(dependencyOf(warehouseError(pgRefused), "Kinesis", env)).toBe("warehouse")
    expect(dependencyOf(new DeadLetterFailed({ id: "shard-1", message: "cannot dead-letter shard-1: socket hang up" }), "Kinesis", env)).toBe("S3")
    expect(dependencyOf(new SnapshotChunkUnavailable({ key: "snapshots/x", message: "m" }), "Kinesis", env)).toBe("S3")
    expect(dependencyOf(new KinesisReadError({ message: "socket hang up", cause: new Error("socket hang up") }), "warehouse", env)).toBe("Kinesis")
  })
})

describe("errorCodeOf", () => {
  it("gives the driver's or SDK's own code, also through a tagged error that wraps it, else the tag", () => {
    const pgError = Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" })
    expect(errorCodeOf(pgError)).toBe("57P01")
    expect(errorCodeOf(warehouseError(pgError))).toBe("57P01")
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "ProvisionedThroughputExceededException" })
    expect(errorCodeOf(new KinesisReadError({ message: throttled.message, cause: throttled }))).toBe("ProvisionedThroughputExceededException")
    expect(errorCodeOf(new DeadLetterFailed({ id: "x", message: "m" }))).toBe("DeadLetterFailed")
    expect(errorCodeOf(new Error("plain"))).toBeUndefined()
  })
})
