/** The shard readers' Kinesis calls: a dropped connection is retried at once, a persisting failure is reported once, tagged, with its cause. */
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { KinesisReadError, kinesisRead, pauseUnless } from "../../services/shared/kinesis/shard-reading.ts"

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
