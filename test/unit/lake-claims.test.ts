/**
 * One claim-check resolver for every reader (services/lake/claims.ts): a missing object, or one
 * holding another event, is "missing" (the consumer isolates that event, replay reports it); a
 * lake that cannot be read is a failure to retry, never a skipped event.
 */
import { Effect, Result } from "effect"
import { describe, expect, it } from "vitest"
import { serializeChangeEvent, type ChangeEvent } from "../../contracts/change-event.ts"
import { fetchClaimedEvent, resolveClaimChecks, storeClaimCheck } from "../../services/lake/claims.ts"
import { LakeError, type LakeStoreShape } from "../../services/shared/lake-store.ts"
import { changeEvent } from "../fixtures/events.ts"
import { memoryLake } from "../support/lake-memory.ts"

const order = (id: number) =>
  changeEvent("c", "design", { commitLsn: "0/5000000", index: id, committedAt: "2024-03-01T10:00:00.000Z" }, {
    after: { design_id: id, design_name: "x".repeat(50), file_location: "/f", file_name: "f.json", created_at: "2024-03-01T09:00:00", last_updated: "2024-03-01T09:00:00" }
  })

const stored = async (lake: LakeStoreShape, event: ChangeEvent) => Effect.runPromise(storeClaimCheck(lake, event, Buffer.from(serializeChangeEvent(event))))

const unreachable = (lake: LakeStoreShape): LakeStoreShape => ({ ...lake, get: (key) => Effect.fail(new LakeError({ key, message: "connect ECONNREFUSED 127.0.0.1:4566" })) })

describe("claim checks", () => {
  it("resolve to the stored event; an event without one is itself", async () => {
    const lake = memoryLake()
    const event = order(1)
    const stub = await stored(lake, event)
    expect(stub.after).toBeNull()
    expect(await Effect.runPromise(fetchClaimedEvent(lake, stub))).toEqual(event)
    expect(await Effect.runPromise(fetchClaimedEvent(lake, event))).toBe(event)
  })

  it("say missing when the object is not there or holds another event, and unavailable when the lake cannot be read", async () => {
    const lake = memoryLake()
    const stub = await stored(lake, order(1))
    const other = await stored(lake, order(2))
    const gone = { ...stub, claimCheck: { ...stub.claimCheck!, key: "claims/none.json" } }
    const swapped = { ...stub, claimCheck: other.claimCheck! }
    const tagOf = async (lakeUsed: LakeStoreShape, event: ChangeEvent) => {
      const result = await Effect.runPromise(Effect.result(fetchClaimedEvent(lakeUsed, event)))
      return Result.isFailure(result) ? result.failure._tag : "resolved"
    }
    expect(await tagOf(lake, gone)).toBe("ClaimCheckMissing")
    expect(await tagOf(lake, swapped)).toBe("ClaimCheckMissing")
    expect(await tagOf(unreachable(lake), stub)).toBe("LakeError")
  })

  it("in a lake read, list the missing ones and stop on a lake that cannot be read", async () => {
    const lake = memoryLake()
    const plain = order(3)
    const stub = await stored(lake, order(1))
    const gone = { ...(await stored(lake, order(2))), claimCheck: { ...stub.claimCheck!, key: "claims/none.json" } }
    const resolved = await Effect.runPromise(resolveClaimChecks(lake, [plain, stub, gone]))
    expect(resolved.records.map((r) => r.id)).toEqual([plain.id, stub.id])
    expect(resolved.unresolved).toEqual([gone.id])
    await expect(Effect.runPromise(resolveClaimChecks(unreachable(lake), [plain, stub]))).rejects.toMatchObject({ _tag: "LakeError" })
  })
})
