import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import { MemoryLogSink, makeLogger } from "../../services/shared/logger.ts"
import { metrics } from "../../services/shared/metrics.ts"
import { makeOutageBook, type OutageNotice, type OutageWording } from "../../services/shared/outage-book.ts"
import { makeOutageReporter } from "../../services/shared/outage-reporter.ts"

/** A book on a hand-moved clock, its notices collected. */
const setup = (wording: OutageWording = "structured", component?: "reader" | "archiver") => {
  let clock = Date.parse("2026-11-20T10:00:00.000Z")
  const notices: Array<OutageNotice> = []
  const book = makeOutageBook({ wording, now: () => clock, notify: (n) => notices.push(n), ...(component ? { component } : {}) })
  return {
    book,
    notices,
    advance: (ms: number) => {
      clock += ms
    },
    at: () => clock
  }
}

describe("the outage book", () => {
  it("starts an outage once, however many attempts fail, and counts the rest", () => {
    const { book, notices, advance } = setup()
    book.failed("Kinesis", { reason: "socket hang up", errorCode: "ECONNRESET", operation: "read shardId-0" })
    for (let attempt = 1; attempt < 5; attempt++) {
      advance(1_000)
      book.failed("Kinesis", { reason: `timeout ${attempt}`, operation: `read shardId-${attempt % 2}` })
    }
    expect(notices).toEqual([
      {
        dependency: "Kinesis",
        state: "started",
        level: "warn",
        message: "Kinesis is unavailable; retrying with backoff (one line when it is back)",
        fields: { dependency: "Kinesis", reason: "socket hang up", errorCode: "ECONNRESET", operations: ["read shardId-0"] }
      }
    ])
    // the latest reason; the error code only if the latest failure had one; distinct operations
    expect(book.current()).toEqual([
      {
        dependency: "Kinesis",
        since: Date.parse("2026-11-20T10:00:00.000Z"),
        lastFailureAt: Date.parse("2026-11-20T10:00:04.000Z"),
        failures: 5,
        operations: ["read shardId-0", "read shardId-1"],
        reason: "timeout 4"
      }
    ])
  })

  it("keeps the first 20 distinct operations", () => {
    const { book } = setup()
    for (let i = 0; i < 30; i++) book.failed("S3", { reason: "down", operation: `put ${i % 25}` })
    expect(book.get("S3")!.operations).toEqual(Array.from({ length: 20 }, (_, i) => `put ${i}`))
    expect(book.get("S3")!.failures).toBe(30)
  })

  it("ends an outage shared by several callers only when the last failing caller recovers", () => {
    const { book, notices, advance } = setup("inline")
    book.failed("Kinesis", { reason: "down", caller: "lane-a" })
    advance(500)
    book.failed("Kinesis", { reason: "down", caller: "lane-b" })
    book.failed("Kinesis", { reason: "down", caller: "lane-a" })
    advance(12_345)
    book.recovered("Kinesis", "lane-a")
    book.recovered("Kinesis", "lane-c") // never failed: changes nothing
    expect(notices.map((n) => n.state)).toEqual(["started"])
    advance(1_000)
    book.recovered("Kinesis", "lane-b")
    expect(notices.map((n) => [n.state, n.level, n.message])).toEqual([
      ["started", "warn", "Kinesis unavailable, retrying with backoff: down"],
      ["ended", "info", "Kinesis available again after 13.8 s (3 attempts retried)"]
    ])
    expect(notices[1]!.fields).toEqual({ dependency: "Kinesis", durationMs: 13_845, retries: 3, operations: [], reason: "down" })
    expect(book.current()).toEqual([])
    book.recovered("Kinesis", "lane-b") // no outage any more: nothing
    expect(notices).toHaveLength(2)
  })

  it("starts afresh after an outage has ended", () => {
    const { book, notices, advance } = setup()
    book.failed("S3", { reason: "a" })
    book.failed("S3", { reason: "b" })
    advance(2_000)
    book.recovered("S3")
    book.failed("S3", { reason: "c" })
    advance(1_000)
    book.recovered("S3")
    expect(notices.map((n) => n.message)).toEqual([
      "S3 is unavailable; retrying with backoff (one line when it is back)",
      "S3 is available again after 2.0 s; 2 failed attempts retried",
      "S3 is unavailable; retrying with backoff (one line when it is back)",
      "S3 is available again after 1.0 s; 1 failed attempt retried"
    ])
    expect(notices[2]!.fields).toEqual({ dependency: "S3", reason: "c" })
  })

  it("keeps each dependency's outage apart", () => {
    const { book, notices } = setup()
    book.failed("S3", { reason: "a" })
    book.failed("warehouse", { reason: "b" })
    book.recovered("warehouse")
    expect(notices.map((n) => `${n.state} ${n.dependency}`)).toEqual(["started S3", "started warehouse", "ended warehouse"])
    expect(book.current().map((o) => o.dependency)).toEqual(["S3"])
  })

  it("dates an end given by the caller (an inferred end at the last failure)", () => {
    const { book, notices, advance, at } = setup()
    book.failed("DynamoDB", { reason: "x" })
    advance(3_000)
    book.failed("DynamoDB", { reason: "y" })
    const lastFailureAt = at()
    advance(10_000)
    book.recovered("DynamoDB", undefined, lastFailureAt)
    expect(notices[1]).toMatchObject({ state: "ended", message: "DynamoDB is available again after 3.0 s; 2 failed attempts retried", fields: { durationMs: 3_000, retries: 2 } })
  })
})

describe("the outage book's metrics", () => {
  it("count an outage when it starts, repeat its duration once a minute while it lasts, and give the total when it ends", () => {
    const captured = metrics.capture()
    try {
      const { book, advance } = setup("inline", "reader")
      for (let second = 0; second <= 130; second += 10) {
        book.failed("Kinesis", { reason: "down", caller: `lane-${second % 20}` })
        advance(10_000)
      }
      book.recovered("Kinesis", "lane-0")
      book.recovered("Kinesis", "lane-10")
      const where = { Component: "reader", Dependency: "Kinesis" }
      expect(captured.sink.values("DependencyOutages", where)).toEqual([1])
      expect(captured.sink.values("DependencyOutageSeconds", where)).toEqual([60, 120, 140])
    } finally {
      captured.restore()
    }
  })

  it("are not emitted without a component", () => {
    const captured = metrics.capture()
    try {
      const { book } = setup()
      book.failed("S3", { reason: "down" })
      book.recovered("S3")
      expect(captured.sink.lines).toEqual([])
    } finally {
      captured.restore()
    }
  })
})

describe("the outage reporter on the outage book (inferred end)", () => {
  beforeEach(() => {
    vi.useFakeTimers()
    vi.setSystemTime(new Date("2026-11-20T10:00:00.000Z"))
  })
  afterEach(() => vi.useRealTimers())

  it("ends an outage after a quiet period: one info line and the total metric, both dated to the last failure", () => {
    const captured = metrics.capture()
    try {
      const sink = new MemoryLogSink()
      const outages = makeOutageReporter({ log: makeLogger("archiver", { sink, now: () => new Date() }), component: "archiver", quietMs: 10_000 })
      outages.failure("S3", new Error("connect ECONNREFUSED 127.0.0.1:4569"), "put raw object")
      vi.advanceTimersByTime(4_000)
      outages.failure("S3", new Error("connect ECONNREFUSED 127.0.0.1:4569"), "put raw object")
      vi.advanceTimersByTime(9_999)
      expect(sink.records().map((r) => r.level)).toEqual(["warn"])
      vi.advanceTimersByTime(1)
      expect(sink.records().map(({ time: _time, ...r }) => r)).toEqual([
        {
          level: "warn",
          component: "archiver",
          message: "S3 is unavailable; retrying with backoff (one line when it is back)",
          dependency: "S3",
          reason: "connect ECONNREFUSED 127.0.0.1:4569",
          operations: ["put raw object"]
        },
        {
          level: "info",
          component: "archiver",
          message: "S3 is available again after 4.0 s; 2 failed attempts retried",
          dependency: "S3",
          durationMs: 4_000,
          retries: 2,
          operations: ["put raw object"],
          reason: "connect ECONNREFUSED 127.0.0.1:4569"
        }
      ])
      const where = { Component: "archiver", Dependency: "S3" }
      expect(captured.sink.values("DependencyOutages", where)).toEqual([1])
      expect(captured.sink.values("DependencyOutageSeconds", where)).toEqual([4])
      expect(outages.current()).toEqual([])
      outages.close()
    } finally {
      captured.restore()
    }
  })
})
