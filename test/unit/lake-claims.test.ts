/**
 * One claim-check resolver for every reader (services/lake/claims.ts): a missing object, or one
 * holding another event, is "missing" (the consumer isolates that event, replay reports it); a
 * lake that cannot be read is a failure to retry, never a skipped event.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { serializeChangeEvent, type ChangeEvent } from "../../contracts/change-event.ts"
import { fetchClaimedEvent, resolveClaimChecks, storeClaimCheck } from "../../services/lake/claims.ts"
import { LakeError, type LakeStoreShape } from "../../services/shared/lake-store.ts"
import { changeEvent } from "../fixtures/events.ts"
import { memoryLake } from "../support/lake-memory.ts"

const order = (id: number) =>
  changeEvent("c", "design", { commitLsn: "0/5000000", index: id, committedAt: "2024-03-01T10:00:00.000Z" }, {
    after: { design_id: id, design_name: "x".repeat(50), file_location: "/f", file_name: "f.json", created_at: "2024-03-01T09:00:00", last_updated: "2024-03-01T09:00:00" }
  })

const stored = (lake: LakeStoreShape, event: ChangeEvent) => storeClaimCheck(lake, event, Buffer.from(serializeChangeEvent(event)))

const unreachable = (lake: LakeStoreShape): LakeStoreShape => ({ ...lake, get: (key) => Effect.fail(new LakeError({ key, message: "connect ECONNREFUSED 127.0.0.1:4566" })) })

/** The failure an Effect ends with, as [tag, message] (the test fails if it succeeds). */
const failureOf = <A, E extends { readonly _tag: string; readonly message: string }>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.flip(effect), (error) => [error._tag, error.message])

describe("claim checks", () => {
  it.effect("resolve to the stored event; an event without one is itself", () =>
    Effect.gen(function* () {
      const lake = memoryLake()
      const event = order(1)
      const stub = yield* stored(lake, event)
      assert.isNull(stub.after)
      expect(yield* fetchClaimedEvent(lake, stub)).toEqual(event)
      assert.strictEqual(yield* fetchClaimedEvent(lake, event), event)
    })
  )

  it.effect("say missing when the object is not there or holds another event, and unavailable when the lake cannot be read", () =>
    Effect.gen(function* () {
      const lake = memoryLake()
      const stub = yield* stored(lake, order(1))
      const other = yield* stored(lake, order(2))
      const gone = { ...stub, claimCheck: { ...stub.claimCheck!, key: "claims/none.json" } }
      const swapped = { ...stub, claimCheck: other.claimCheck! }
      assert.deepStrictEqual(yield* failureOf(fetchClaimedEvent(lake, gone)), ["ClaimCheckMissing", "claim check claims/none.json is missing from the lake"])
      assert.deepStrictEqual(yield* failureOf(fetchClaimedEvent(lake, swapped)), ["ClaimCheckMissing", `claim check ${other.claimCheck!.key} holds another event than ${stub.id}`])
      assert.deepStrictEqual(yield* failureOf(fetchClaimedEvent(unreachable(lake), stub)), ["LakeError", "connect ECONNREFUSED 127.0.0.1:4566"])
    })
  )

  it.effect("in a lake read, list the missing ones and stop on a lake that cannot be read", () =>
    Effect.gen(function* () {
      const lake = memoryLake()
      const plain = order(3)
      const stub = yield* stored(lake, order(1))
      const gone = { ...(yield* stored(lake, order(2))), claimCheck: { ...stub.claimCheck!, key: "claims/none.json" } }
      const resolved = yield* resolveClaimChecks(lake, [plain, stub, gone])
      assert.deepStrictEqual(
        resolved.records.map((r) => r.id),
        [plain.id, stub.id]
      )
      assert.deepStrictEqual(resolved.unresolved, [gone.id])
      assert.deepStrictEqual(yield* failureOf(resolveClaimChecks(unreachable(lake), [plain, stub])), ["LakeError", "connect ECONNREFUSED 127.0.0.1:4566"])
    })
  )
})
