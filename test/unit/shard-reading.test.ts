/** The shard readers' Kinesis calls: a dropped connection is retried at once, a persisting failure is reported once, tagged, with its cause. */
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { KinesisReadError, kinesisRead, pauseUnless, readShardUntil } from "../../services/shared/kinesis/shard-reading.ts"

const hangUp = () => Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })

describe("kinesisRead", () => {
  it("retries a call that fails once and gives its answer", async () => {
    let calls = 0
    const answer = await Effect.runPromise(
      kinesisRead(async () => {
        calls++
        if (calls === 1) throw hangUp()
        return "records"
      })
    )
    expect(answer).toBe("records")
    expect(calls).toBe(2)
  })

  it("gives up after three attempts with a KinesisReadError that keeps the SDK's error", async () => {
    let calls = 0
    const exit = await Effect.runPromiseExit(
      kinesisRead(async () => {
        calls++
        throw hangUp()
      })
    )
    expect(calls).toBe(3)
    expect(Exit.isFailure(exit)).toBe(true)
    const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
    expect(error).toBeInstanceOf(KinesisReadError)
    expect(error?.message).toBe("socket hang up")
    expect((error?.cause as { code?: string }).code).toBe("ECONNRESET")
  })
})

describe("pauseUnless", () => {
  it("waits the time given, or ends at once when the signal aborts", async () => {
    const stop = new AbortController()
    let started = performance.now()
    await Effect.runPromise(pauseUnless(stop.signal, 50))
    expect(performance.now() - started).toBeGreaterThanOrEqual(45)
    started = performance.now()
    setTimeout(() => stop.abort(), 20)
    await Effect.runPromise(pauseUnless(stop.signal, 10_000))
    expect(performance.now() - started).toBeLessThan(5_000)
  })
})

describe("readShardUntil", () => {
  it("reports a failed page (a defect too) and goes on until the shard has ended", async () => {
    const answers: Array<() => "ended" | "more"> = [
      () => "more",
      () => {
        throw new Error("a bug in a page")
      },
      () => "more",
      () => "ended"
    ]
    const failures: Array<string> = []
    let pages = 0
    await Effect.runPromise(
      readShardUntil(
        new AbortController().signal,
        Effect.sync(() => answers[pages++]!()),
        (error) => failures.push((error as Error).message)
      )
    )
    expect(pages).toBe(4)
    expect(failures).toEqual(["a bug in a page"])
  })

  it("stops before the next page once the signal aborts", async () => {
    const stop = new AbortController()
    let pages = 0
    await Effect.runPromise(readShardUntil(stop.signal, Effect.sync(() => (++pages === 3 && stop.abort(), "more" as const)), () => {}))
    expect(pages).toBe(3)
  })
})
