/** The shard readers' Kinesis calls: a dropped connection is retried at once, a persisting failure is reported once, tagged, with its cause. */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { KinesisReadError, kinesisRead, pauseUnless, readShardUntil } from "../../services/shared/kinesis/shard-reading.ts"

const hangUp = () => Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })

describe("kinesisRead", () => {
  it.effect("retries a call that fails once, 100 ms later, and gives its answer", () =>
    Effect.gen(function* () {
      let calls = 0
      const read = yield* Effect.forkChild(
        kinesisRead(async () => {
          calls++
          if (calls === 1) throw hangUp()
          return "records"
        })
      )
      yield* TestClock.adjust("99 millis")
      assert.strictEqual(calls, 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(calls, 2)
      assert.strictEqual(yield* Fiber.join(read), "records")
    })
  )

  it.effect("gives up after three attempts (100 ms, then 200 ms apart) with a KinesisReadError that keeps the SDK's error", () =>
    Effect.gen(function* () {
      let calls = 0
      const read = yield* Effect.forkChild(
        kinesisRead(async () => {
          calls++
          throw hangUp()
        })
      )
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(calls, 2)
      yield* TestClock.adjust("199 millis")
      assert.strictEqual(calls, 2)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(calls, 3)
      // No fourth attempt, however long one waits.
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(calls, 3)
      const exit = yield* Fiber.await(read)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
      expect(error).toBeInstanceOf(KinesisReadError)
      expect(error?.message).toBe("socket hang up")
      expect((error?.cause as { code?: string }).code).toBe("ECONNRESET")
    })
  )
})

describe("pauseUnless", () => {
  // It waits on node's timers, not on Effect's Clock: real time.
  it.live("waits the time given, or ends at once when the signal aborts", () =>
    Effect.gen(function* () {
      const stop = new AbortController()
      let started = performance.now()
      yield* pauseUnless(stop.signal, 50)
      expect(performance.now() - started).toBeGreaterThanOrEqual(45)
      started = performance.now()
      setTimeout(() => stop.abort(), 20)
      yield* pauseUnless(stop.signal, 10_000)
      expect(performance.now() - started).toBeLessThan(5_000)
    })
  )
})

describe("readShardUntil", () => {
  // After the failed page the loop pauses a real second (pauseUnless).
  it.live("reports a failed page (a defect too) and goes on until the shard has ended", () =>
    Effect.gen(function* () {
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
      yield* readShardUntil(
        new AbortController().signal,
        Effect.sync(() => answers[pages++]!()),
        (error) => failures.push((error as Error).message)
      )
      assert.strictEqual(pages, 4)
      assert.deepStrictEqual(failures, ["a bug in a page"])
    })
  )

  it.effect("stops before the next page once the signal aborts", () =>
    Effect.gen(function* () {
      const stop = new AbortController()
      let pages = 0
      yield* readShardUntil(stop.signal, Effect.sync(() => (++pages === 3 && stop.abort(), "more" as const)), () => {})
      assert.strictEqual(pages, 3)
    })
  )
})
