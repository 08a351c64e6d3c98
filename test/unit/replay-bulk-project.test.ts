/**
 * The replay's projection of sorted batches (projection.ts projectSortedBatch) is the consumer's: on batches in
 * source order it returns exactly projectBatch's plan, for random histories with every kind of
 * change, duplicates, invalid events and unknown tables.
 */
import { describe, expect, it } from "vitest"
import type { ChangeEvent, StreamRecord } from "../../contracts/change-event.ts"
import { lsnToBigInt } from "../../contracts/lsn.ts"
import { projectBatch, projectSortedBatch, UnresolvedClaimCheckError } from "../../services/warehouse/projection.ts"
import { changeEvent, heartbeatEvent, seededRandom } from "../fixtures/events.ts"
import { randomHistory, shuffleForDelivery } from "../support/random-history.ts"

const inSourceOrder = (records: ReadonlyArray<StreamRecord>): Array<StreamRecord> =>
  [...records].sort((a, b) => {
    const x = lsnToBigInt(a.kind === "heartbeat" ? a.commitLsn : a.source.commitLsn)
    const y = lsnToBigInt(b.kind === "heartbeat" ? b.commitLsn : b.source.commitLsn)
    return x < y ? -1 : x > y ? 1 : (a.kind === "change" ? a.source.index : 0) - (b.kind === "change" ? b.source.index : 0)
  })

describe("bulk projection", () => {
  it("plans every batch of random histories exactly as projectBatch", () => {
    let compared = 0
    for (let seed = 1; seed <= 12; seed++) {
      const random = seededRandom(seed)
      const events = shuffleForDelivery(randomHistory({ seed, transactions: 300, truncateRate: 0.02 }), random, { duplicate: 0.1, late: 0.1 })
      const size = 20 + Math.floor(random() * 200)
      for (let i = 0; i < events.length; i += size) {
        const batch = inSourceOrder(events.slice(i, i + size))
        expect(projectSortedBatch(batch)).toEqual(projectBatch(batch))
        compared++
      }
    }
    expect(compared).toBeGreaterThan(50)
  })

  it("covers what the comparison must cover", () => {
    const events = randomHistory({ seed: 3, transactions: 2_000, truncateRate: 0.02 })
    const plan = projectSortedBatch(inSourceOrder([...events, ...events.slice(0, 100)]))
    expect(plan.counts.duplicates).toBe(100)
    expect(plan.truncations.length).toBeGreaterThan(5)
    expect(plan.skipped.filter((s) => s.reason === "invalid").length).toBeGreaterThan(3)
    expect(plan.skipped.filter((s) => s.reason === "unknown_table").length).toBeGreaterThan(3)
    // in small batches, key-only deletes and unsent columns are left to fill from the mirror
    const small = Array.from({ length: Math.ceil(events.length / 20) }, (_, i) => projectSortedBatch(inSourceOrder(events.slice(i * 20, i * 20 + 20))))
    expect(small.flatMap((p) => p.facts).filter((c) => c.op === "d" && c.fill.length > 0).length).toBeGreaterThan(5)
    expect(small.flatMap((p) => p.mirror).filter((c) => c.op === "u" && c.fill.length > 0).length).toBeGreaterThan(5)
    expect(plan.facts.filter((c) => c.eventId.endsWith(":old-key")).length).toBeGreaterThan(0)
    expect(events.filter((e) => e.unchanged.length > 0).length).toBeGreaterThan(20)
  })

  it("heartbeats and unresolved claim checks as projectBatch", () => {
    const position = { commitLsn: "0/16B3748", index: 0, committedAt: "2024-02-23T11:11:10.072123Z" }
    const beats = [heartbeatEvent("0/16B3700", "2024-02-23T11:11:09Z"), heartbeatEvent("0/16B3900", "2024-02-23T11:11:11Z")]
    expect(projectSortedBatch(beats)).toEqual(projectBatch(beats))
    const claimed: ChangeEvent = { ...changeEvent("c", "payment", position, { after: { payment_id: 1 } }), after: null, claimCheck: { bucket: "b", key: "k", bytes: 1 } }
    expect(() => projectSortedBatch([claimed])).toThrow(UnresolvedClaimCheckError)
    expect(() => projectBatch([claimed])).toThrow(UnresolvedClaimCheckError)
  })
})
