/** The shard readers' Kinesis calls: a dropped connection is retried at once, a persisting failure is reported once, tagged, with its cause. */
import { assert, describe, expect, it } from "@effect/vitest"
import type { Shard } from "@aws-sdk/client-kinesis"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { KinesisReadError, followShards, kinesisRead, pauseUnless, readShardUntil } from "../../services/shared/kinesis/shard-reading.ts"

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

describe("followShards", () => {
  const shard = (id: string, parent?: string): Shard => ({ ShardId: id, ...(parent ? { ParentShardId: parent } : {}), HashKeyRange: { StartingHashKey: "0", EndingHashKey: "1" }, SequenceNumberRange: { StartingSequenceNumber: "1" } })

  // Real time: the refresh pause is node's timer (pauseUnless), not Effect's Clock.
  it.live("reads a child only once its parent's read is over, and lists again to find new shards", () =>
    Effect.gen(function* () {
      const stop = new AbortController()
      let listing: ReadonlyArray<Shard> = [shard("parent"), shard("child", "parent"), shard("other")]
      const events: Array<string> = []
      const parentDrained = yield* Deferred.make<void>()
      const following = yield* Effect.forkChild(
        followShards({
          signal: stop.signal,
          list: Effect.sync(() => listing),
          refreshMs: 20,
          prepare: (ids) => Effect.sync(() => void events.push(`prepare ${ids.join(",")}`)),
          read: (id) =>
            Effect.gen(function* () {
              events.push(`start ${id}`)
              if (id === "parent") yield* Deferred.await(parentDrained)
              events.push(`end ${id}`)
            }),
          onListError: () => {}
        })
      )
      /** Waits until `n` events happened (or 5 s). */
      const happened = (n: number) => Effect.sleep("5 millis").pipe(Effect.repeat({ until: () => events.length >= n }), Effect.timeout("5 seconds"))
      yield* happened(4)
      yield* Effect.sleep("50 millis") // the child could have started by now if it did not wait
      expect(events).toEqual(["prepare parent,child,other", "start parent", "start other", "end other"])
      yield* Deferred.succeed(parentDrained, undefined)
      yield* happened(7)
      expect(events.slice(4)).toEqual(["end parent", "start child", "end child"])
      listing = [...listing, shard("grandchild", "child")]
      yield* happened(10)
      expect(events.slice(7)).toEqual(["prepare grandchild", "start grandchild", "end grandchild"])
      stop.abort()
      yield* Fiber.join(following)
    })
  )

  it.live("a stop ends the wait of a child whose parent is still being read: the child is not read", () =>
    Effect.gen(function* () {
      const stop = new AbortController()
      const started: Array<string> = []
      const following = yield* Effect.forkChild(
        followShards({
          signal: stop.signal,
          list: Effect.succeed([shard("parent"), shard("child", "parent")]),
          refreshMs: 1_000,
          read: (id) =>
            Effect.gen(function* () {
              started.push(id)
              yield* pauseUnless(stop.signal, 60_000) // a shard read until the stop
            }),
          onListError: () => {}
        })
      )
      yield* Effect.sleep("5 millis").pipe(Effect.repeat({ until: () => started.length > 0 }), Effect.timeout("5 seconds"))
      stop.abort()
      const exit = yield* Fiber.await(following)
      assert.isTrue(Exit.isSuccess(exit))
      expect(started).toEqual(["parent"])
    })
  )
})
