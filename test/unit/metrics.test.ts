import { afterEach, describe, expect, it } from "vitest"
import {
  DIMENSIONS,
  METRIC_NAMES,
  METRIC_NAMESPACE,
  METRICS,
  MemoryMetricsSink,
  configureEmf,
  emfConfiguration,
  metrics,
  parseEmfLine,
  teeSink,
  toEmfLines,
  type EmfDocument
} from "../../services/shared/metrics.ts"

const EMF_UNITS = new Set([
  "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits", "Kilobits",
  "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
  "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
  "Terabits/Second", "Count/Second", "None"
])

/** Checks a document against the EMF specification's structural rules. */
const assertValidEmf = (doc: EmfDocument) => {
  expect(typeof doc._aws.Timestamp).toBe("number")
  expect(Number.isInteger(doc._aws.Timestamp)).toBe(true)
  expect(doc._aws.CloudWatchMetrics.length).toBeGreaterThan(0)
  for (const directive of doc._aws.CloudWatchMetrics) {
    expect(directive.Namespace).toBe(METRIC_NAMESPACE)
    expect(directive.Metrics.length).toBeGreaterThan(0)
    expect(directive.Metrics.length).toBeLessThanOrEqual(100)
    for (const set of directive.Dimensions) {
      expect(set.length).toBeLessThanOrEqual(30)
      // every dimension referenced must be a string root member
      for (const name of set) expect(typeof doc[name]).toBe("string")
    }
    for (const metric of directive.Metrics) {
      const value = doc[metric.Name]
      // every metric referenced must be a number or an array of numbers at the root
      if (Array.isArray(value)) {
        expect(value.length).toBeGreaterThan(0)
        expect(value.length).toBeLessThanOrEqual(100)
        for (const v of value) expect(typeof v).toBe("number")
      } else {
        expect(typeof value).toBe("number")
      }
      if (metric.Unit !== undefined) expect(EMF_UNITS.has(metric.Unit)).toBe(true)
    }
  }
}

const only = <A>(items: ReadonlyArray<A>): A => {
  expect(items).toHaveLength(1)
  return items[0] as A
}

describe("metric catalogue", () => {
  it("names the metrics the pipeline promises, with CloudWatch units", () => {
    for (const name of [
      "EventsPublished", "PublishLatency", "PublishBatchSize", "PublishRetries", "ReplicationLagBytes", "ReplicationLagSeconds",
      "HeartbeatAgeSeconds", "SnapshotRows", "EventsApplied", "EndToEndLatency", "BatchDuration", "DeadLetteredEvents",
      "ConsistentThroughAgeSeconds", "WarehouseRetries", "LakeObjectsWritten", "LakeBytesWritten", "EventsReplayed", "ReplayEventsPerSecond"
    ]) {
      expect(METRIC_NAMES).toContain(name)
    }
    for (const name of METRIC_NAMES) expect(EMF_UNITS.has(METRICS[name].unit)).toBe(true)
    expect(METRICS.PublishLatency.unit).toBe("Milliseconds")
    expect(METRICS.EndToEndLatency.unit).toBe("Milliseconds")
    expect(METRICS.BatchDuration.unit).toBe("Milliseconds")
    expect(METRICS.ReplicationLagBytes.unit).toBe("Bytes")
    expect(METRICS.EventsPublished.dimensions).toEqual(["Table", "Operation"])
  })
})

describe("aws-embedded-metrics configuration", () => {
  it("is set in code: Local (stdout, no agent) outside Lambda, Lambda inside, namespace TotesCdc", () => {
    try {
      configureEmf({})
      expect(emfConfiguration()).toMatchObject({ environmentOverride: "Local", namespace: METRIC_NAMESPACE })
      configureEmf({ AWS_LAMBDA_FUNCTION_NAME: "fn" })
      expect(emfConfiguration()).toMatchObject({ environmentOverride: "Lambda", namespace: METRIC_NAMESPACE })
    } finally {
      configureEmf()
    }
  })
})

describe("EMF output", () => {
  it("is one valid EMF JSON line with [Stage, Component] and the metric's extra dimensions", () => {
    const at = Math.floor(Date.now() / 1000) * 1000 - 60_000
    const lines = toEmfLines("reader", { EventsPublished: 120 }, { Table: "sales_order", Operation: "c" }, {}, { stage: "test", timestamp: at })
    const doc = parseEmfLine(only(lines))
    expect(doc).not.toBeNull()
    assertValidEmf(doc!)
    expect(doc!._aws.Timestamp).toBe(at)
    const directive = only(doc!._aws.CloudWatchMetrics)
    expect(directive.Dimensions).toEqual([
      ["Stage", "Component"],
      ["Stage", "Component", "Table", "Operation"]
    ])
    expect(directive.Metrics).toEqual([{ Name: "EventsPublished", Unit: "Count" }])
    expect(doc).toMatchObject({ Stage: "test", Component: "reader", Table: "sales_order", Operation: "c", EventsPublished: 120 })
  })

  it("keeps metrics without extra dimensions on the base set only, in their own line", () => {
    const lines = toEmfLines("reader", { EventsPublished: 2, PublishLatency: 12.5, ReplicationLagBytes: 4096 }, { Table: "staff", Operation: "u" }, {}, { stage: "test" })
    const docs = lines.map((l) => parseEmfLine(l)!)
    expect(docs).toHaveLength(2)
    docs.forEach(assertValidEmf)
    const plain = docs.find((d) => d.PublishLatency !== undefined)!
    expect(only(plain._aws.CloudWatchMetrics).Dimensions).toEqual([["Stage", "Component"]])
    expect(only(plain._aws.CloudWatchMetrics).Metrics).toEqual([
      { Name: "PublishLatency", Unit: "Milliseconds" },
      { Name: "ReplicationLagBytes", Unit: "Bytes" }
    ])
    expect(plain.Table).toBeUndefined()
  })

  it("emits several samples of one metric as an array, and drops non-finite values", () => {
    const doc = parseEmfLine(only(toEmfLines("consumer", { BatchDuration: [10, Number.NaN, 30, Number.POSITIVE_INFINITY] }, {}, {}, { stage: "s" })))!
    assertValidEmf(doc)
    expect(doc.BatchDuration).toEqual([10, 30])
    expect(toEmfLines("consumer", { BatchDuration: Number.NaN })).toEqual([])
  })

  it("splits more than 100 values of one metric over several lines", () => {
    const samples = Array.from({ length: 250 }, (_, i) => i)
    const docs = toEmfLines("consumer", { EndToEndLatency: samples }, {}, {}, { stage: "s" }).map((l) => parseEmfLine(l)!)
    docs.forEach(assertValidEmf)
    expect(docs.flatMap((d) => d.EndToEndLatency as Array<number>).sort((a, b) => a - b)).toEqual(samples)
  })

  it("adds properties as searchable members but never lets them shadow dimensions or metrics", () => {
    const doc = parseEmfLine(only(toEmfLines("consumer", { EventsApplied: 1 }, { Table: "staff" }, { batchId: "b-1", shardId: "shardId-0", Table: "x", EventsApplied: 99 }, { stage: "s" })))!
    assertValidEmf(doc)
    expect(doc).toMatchObject({ batchId: "b-1", shardId: "shardId-0", Table: "staff", EventsApplied: 1 })
  })

  it("ignores empty or non-ASCII dimension values instead of failing", () => {
    const doc = parseEmfLine(only(toEmfLines("consumer", { EventsApplied: 1 }, { Table: "" }, {}, { stage: "s" })))!
    expect(only(doc._aws.CloudWatchMetrics).Dimensions).toEqual([["Stage", "Component"]])
  })

  it("rejects a metric name that is not in the catalogue", () => {
    expect(() => toEmfLines("reader", { NotAMetric: 1 } as any)).toThrow(/unknown metric/)
  })

  it("validates timestamps the way CloudWatch does (not older than 14 days)", () => {
    expect(() => toEmfLines("reader", { EventsPublished: 1 }, {}, {}, { timestamp: Date.now() - 15 * 86_400_000 })).toThrow(/older/)
  })

  it("adds Lambda context properties inside a Lambda function", () => {
    const env = { AWS_LAMBDA_FUNCTION_NAME: "fn" }
    const doc = parseEmfLine(only(toEmfLines("consumer", { EventsApplied: 1 }, {}, {}, { stage: "s", env })))!
    assertValidEmf(doc)
    expect(only(doc._aws.CloudWatchMetrics).Dimensions).toEqual([["Stage", "Component"]])
  })
})

describe("sinks", () => {
  const restores: Array<() => void> = []
  afterEach(() => {
    while (restores.length) restores.pop()!()
  })

  it("captures emitted lines in memory and reads values back", () => {
    const { sink, restore } = metrics.capture()
    restores.push(restore)
    metrics.emit("consumer", { EventsApplied: 3 }, { Table: "staff" })
    metrics.emit("consumer", { EventsApplied: 4 }, { Table: "sales_order" })
    metrics.emit("consumer", { ConsistentThroughAgeSeconds: 7 })
    expect(sink.lines).toHaveLength(3)
    sink.documents().forEach(assertValidEmf)
    expect(sink.values("EventsApplied")).toEqual([3, 4])
    expect(sink.sum("EventsApplied", { Table: "staff" })).toBe(3)
    expect(sink.values("ConsistentThroughAgeSeconds", { Component: "consumer" })).toEqual([7])
    expect(sink.documents().every((d) => d[DIMENSIONS.stage] === metrics.stage)).toBe(true)
  })

  it("restores the previous sink and can tee to two sinks", () => {
    const outer = new MemoryMetricsSink()
    restores.push(metrics.setSink(outer))
    const inner = metrics.capture({ passThrough: true })
    metrics.emit("replay", { EventsReplayed: 10 })
    inner.restore()
    metrics.emit("replay", { EventsReplayed: 5 })
    expect(inner.sink.sum("EventsReplayed")).toBe(10)
    expect(outer.sum("EventsReplayed")).toBe(15)
    const a = new MemoryMetricsSink()
    const b = new MemoryMetricsSink()
    teeSink(a, b).write("x")
    expect([a.lines, b.lines]).toEqual([["x"], ["x"]])
  })

  it("times an operation in milliseconds", async () => {
    const { sink, restore } = metrics.capture()
    restores.push(restore)
    const value = await metrics.time("consumer", "BatchDuration", async () => 42)
    expect(value).toBe(42)
    const [duration] = sink.values("BatchDuration")
    expect(duration).toBeGreaterThanOrEqual(0)
  })

  it("never throws from emit: a rejected line is reported on stderr instead", () => {
    const { sink, restore } = metrics.capture()
    restores.push(restore)
    const errors: Array<string> = []
    const write = process.stderr.write
    process.stderr.write = ((chunk: string) => (errors.push(String(chunk)), true)) as typeof process.stderr.write
    try {
      expect(() => metrics.emit("reader", { NotAMetric: 1 } as any)).not.toThrow()
    } finally {
      process.stderr.write = write
    }
    expect(sink.lines).toEqual([])
    expect(errors.join("")).toContain("unknown metric")
  })

  it("finds EMF lines among other output", () => {
    expect(parseEmfLine("plain text")).toBeNull()
    expect(parseEmfLine("{\"level\":\"info\"}")).toBeNull()
    expect(parseEmfLine("{\"_aws\": 1")).toBeNull()
  })
})
