/** The consumer's reading of a repaired range (services/consumer/repair.ts): which rows it deletes. */
import { describe, expect, it } from "vitest"
import type { RepairedRange } from "../../contracts/change-event.ts"
import { projectBatch } from "../../services/warehouse/projection.ts"
import { derivedDelete, keysToDelete } from "../../services/warehouse/repair.ts"
import { changeEvent, heartbeatEvent } from "../fixtures/events.ts"

const AT = "2026-11-27T10:00:00.000Z"
const range = (over: Partial<RepairedRange> = {}): RepairedRange => ({
  kind: "repair",
  schemaVersion: 1,
  id: "0/5000200:repair-range:sales_order:10..20",
  repair: "req-1",
  source: { db: "totesys", schema: "public", table: "sales_order", commitLsn: "0/5000200", lsn: null, xid: null, committedAt: AT, index: -1, snapshot: true },
  keyColumn: "sales_order_id",
  afterKey: 10,
  throughKey: 20,
  presentKeys: [11, 12, 15],
  ...over
})
const order = (id: number) => ({ sales_order_id: id, units_sold: 3 })
const at = (commitLsn: string) => ({ commitLsn, index: 0, committedAt: AT })

describe("a repaired range in the consumer", () => {
  it("deletes the live rows in its range that it does not list and that are older than it", () => {
    const live = new Map([
      [10, { lsn: "0/100", seq: 0 }], // before the range (after 10 is exclusive)
      [11, { lsn: "0/100", seq: 0 }], // listed: present
      [13, { lsn: "0/100", seq: 0 }], // gone from the source
      [20, { lsn: "0/5000100", seq: 3 }], // gone (the range's upper bound is inclusive)
      [21, { lsn: "0/100", seq: 0 }] // after the range
    ])
    expect(keysToDelete(range(), live, [])).toEqual([13, 20])
  })

  it("takes the batch's own older changes into account, and leaves newer ones to win by position", () => {
    const batch = [
      changeEvent("c", "sales_order", at("0/5000000"), { after: order(14) }), // older insert, not present: deleted
      changeEvent("d", "sales_order", at("0/5000010"), { before: order(13) }), // already deleted: no second delete
      changeEvent("c", "sales_order", at("0/5000300"), { after: order(16) }), // newer than the range: untouched
      changeEvent("c", "purchase_order", at("0/5000000"), { after: { purchase_order_id: 17 } }), // another table
      heartbeatEvent("0/5000000", AT)
    ]
    expect(keysToDelete(range(), new Map([[13, { lsn: "0/100", seq: 0 }]]), batch)).toEqual([14])
  })

  it("an unbounded range covers every key on that side", () => {
    const live = new Map([[1, { lsn: "0/1", seq: 0 }], [999_999, { lsn: "0/1", seq: 0 }]])
    expect(keysToDelete(range({ afterKey: null, throughKey: null, presentKeys: [] }), live, [])).toEqual([1, 999_999])
  })

  it("a derived delete is an ordinary key-only delete at the range's position, with a stable id; the projection takes it as one", () => {
    const event = derivedDelete(range(), 13)
    expect(event).toMatchObject({ id: "0/5000200:repair-range:sales_order:10..20:13", op: "d", key: { sales_order_id: 13 }, before: { sales_order_id: 13 }, after: null })
    const plan = projectBatch([range(), event])
    expect(plan.mirror.map((m) => [m.key, m.op, m.position])).toEqual([[13, "d", { lsn: "0/5000200", seq: -1 }]])
    expect(plan.facts.map((f) => [f.key, f.op, f.eventId])).toEqual([[13, "d", event.id]])
    expect(plan.skipped).toEqual([])
  })
})
