/** The lake store's retries: a transient S3 failure is retried with backoff, an answer another attempt cannot change is not. */
import type { S3Client } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { makeLakeStore } from "../../services/shared/lake-store.ts"

const failingClient = (error: () => Error) => {
  const calls = { count: 0 }
  const client = {
    send: async () => {
      calls.count++
      throw error()
    }
  } as unknown as S3Client
  return { client, calls }
}
const s3Error = (name: string, message: string) => Object.assign(new Error(message), { name })

describe("makeLakeStore", () => {
  it.effect("answers a missing object at once, with one request (a claim check or chunk is then reported missing, not waited for)", () =>
    Effect.gen(function* () {
      const { client, calls } = failingClient(() => s3Error("NoSuchKey", "The specified key does not exist."))
      const error = yield* Effect.flip(makeLakeStore("lake", client).get("claims/0000000000003000/0_3000_0.json"))
      assert.deepStrictEqual([error._tag, error.key, error.message], ["LakeError", "claims/0000000000003000/0_3000_0.json", "NoSuchKey: The specified key does not exist."])
      assert.strictEqual(calls.count, 1)
    })
  )

  it.effect("retries a transient failure six times with backoff, then reports it", () =>
    Effect.gen(function* () {
      const { client, calls } = failingClient(() => s3Error("InternalError", "We encountered an internal error. Please try again."))
      const get = yield* Effect.forkChild(Effect.flip(makeLakeStore("lake", client).get("raw/2026/11/26/10/x.ndjson.gz")))
      yield* TestClock.adjust("1 minute")
      const error = yield* Fiber.join(get)
      assert.strictEqual(error.message, "InternalError: We encountered an internal error. Please try again.")
      assert.strictEqual(calls.count, 7)
    })
  )

  it.effect("does not retry a refused write either (access denied), but throttling is retried", () =>
    Effect.gen(function* () {
      const denied = failingClient(() => s3Error("AccessDenied", "Access Denied"))
      yield* Effect.flip(makeLakeStore("lake", denied.client).putNew("raw/x", "body", "text/plain"))
      assert.strictEqual(denied.calls.count, 1)
      const slow = failingClient(() => s3Error("SlowDown", "Please reduce your request rate."))
      const read = yield* Effect.forkChild(Effect.flip(makeLakeStore("lake", slow.client).get("raw/x")))
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(read)
      assert.strictEqual(slow.calls.count, 7)
    })
  )
})
