/**
 * A paused table parks its changes from the position that paused it on, on real PostgreSQL
 * through applyRecords and resumeTable: a change older than that position (a redelivery, a late
 * delivery) was written under the old schema and is applied, in the pausing batch and in later
 * ones; resuming then applies exactly the parked changes, once, in order. Bulk replay's loader,
 * given the same batches, parks and pauses the same.
 */
import type pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ChangeEvent, Row } from "../../contracts/change-event.ts"
import { openBulkLoader } from "../../services/replay/bulk/loader.ts"
import { applyRecords, resumeTable } from "../../services/warehouse/apply.ts"
import { migrateWarehouse } from "../../services/warehouse/migrate.ts"
import { comparePositions } from "../../services/warehouse/projection.ts"
import { dumpWarehouse } from "../fixtures/derive-star-schema.ts"
import { changeEvent } from "../fixtures/events.ts"
import { connect, freshDatabase } from "../support/stack.ts"

const AT = "2024-02-26T09:00:00.000Z"
const at = (commitLsn: string) => ({ commitLsn, index: 0, committedAt: AT })
const order = (id: number, units: number | string): Row => ({
  sales_order_id: id, created_at: "2024-02-26T08:00:00.000", last_updated: "2024-02-26T08:00:00.000", design_id: 1, staff_id: 1, counterparty_id: 1,
  units_sold: units, unit_price: "2.50", currency_id: 1, agreed_delivery_date: "2024-03-01", agreed_payment_date: "2024-03-05", agreed_delivery_location_id: 1
})
const created = (lsn: string, id: number, units: number) => changeEvent("c", "sales_order", at(lsn), { after: order(id, units) })
const updated = (lsn: string, id: number, units: number | string) => changeEvent("u", "sales_order", at(lsn), { after: order(id, units) })

describe("a paused table parks from the pausing position on", () => {
  let client: pg.Client

  const facts = async () =>
    (await client.query("SELECT sales_order_id, units_sold::text AS units, source_lsn::text AS lsn, change_op FROM fact_sales_order ORDER BY source_lsn, sales_order_id")).rows
  const mirror = async () =>
    (await client.query("SELECT key_id::int AS id, image ->> 'units_sold' AS units, source_lsn::text AS lsn FROM totes.mirror WHERE table_name = 'sales_order' ORDER BY key_id")).rows
  const parked = async () => (await client.query("SELECT event_id, source_lsn::text AS lsn FROM totes.parked_event ORDER BY source_lsn, source_seq")).rows
  const pausedTables = async () =>
    (await client.query("SELECT table_name, column_name, consistent_before_lsn::text AS since, parked_events::int FROM pipeline_paused_tables")).rows

  beforeAll(async () => {
    client = await connect(await freshDatabase("park"))
    await migrateWarehouse(client)
  })
  afterAll(async () => {
    await client?.end()
  })

  it("applies older changes in the pausing batch and in later ones, parks the rest, and resume applies exactly what was parked", async () => {
    const first = created("0/1000", 1, 5)
    const second = created("0/1100", 2, 6)
    await applyRecords(client, [first, second])

    // The batch that pauses: a newer change delivered before the break is parked, an older one after it applies.
    const update = updated("0/2000", 1, 7)
    const newerBeforeBreak = updated("0/4000", 1, 8)
    const breaking = updated("0/3000", 2, "10.5")
    const olderAfterBreak = updated("0/2200", 1, 13)
    const pausing = await applyRecords(client, [update, newerBeforeBreak, breaking, olderAfterBreak])
    expect({ parkedIds: pausing.parkedIds, paused: pausing.paused.map((v) => [v.table, v.column]), pausedTables: pausing.pausedTables }).toEqual({
      parkedIds: [newerBeforeBreak.id, breaking.id],
      paused: [["sales_order", "units_sold"]],
      pausedTables: ["sales_order"]
    })

    // While paused: a redelivery of older changes and a late older change apply; a newer one is parked.
    const late = updated("0/2500", 2, 9)
    const newer = updated("0/5000", 1, 11)
    const redelivered = await applyRecords(client, [first, update, late, breaking, newer])
    expect({ parked: redelivered.parked, parkedIds: redelivered.parkedIds, paused: redelivered.paused }).toEqual({
      parked: 2,
      parkedIds: [breaking.id, newer.id],
      paused: []
    })

    expect(await parked()).toEqual([
      { event_id: breaking.id, lsn: "0/3000" },
      { event_id: newerBeforeBreak.id, lsn: "0/4000" },
      { event_id: newer.id, lsn: "0/5000" }
    ])
    expect(await pausedTables()).toEqual([{ table_name: "sales_order", column_name: "units_sold", since: "0/3000", parked_events: 3 }])
    expect(await facts()).toEqual([
      { sales_order_id: 1, units: "5", lsn: "0/1000", change_op: "c" },
      { sales_order_id: 2, units: "6", lsn: "0/1100", change_op: "c" },
      { sales_order_id: 1, units: "7", lsn: "0/2000", change_op: "u" },
      { sales_order_id: 1, units: "13", lsn: "0/2200", change_op: "u" },
      { sales_order_id: 2, units: "9", lsn: "0/2500", change_op: "u" }
    ])
    expect(await mirror()).toEqual([
      { id: 1, units: "13", lsn: "0/2200" },
      { id: 2, units: "9", lsn: "0/2500" }
    ])

    const report = await resumeTable(client, "sales_order", { widen: { units_sold: "numeric(12,2)" } })
    expect(report).toEqual({ table: "sales_order", applied: 3, stillBreaks: undefined, remaining: 0 })
    expect(await parked()).toEqual([])
    expect(await pausedTables()).toEqual([])
    expect(await facts()).toEqual([
      { sales_order_id: 1, units: "5.00", lsn: "0/1000", change_op: "c" },
      { sales_order_id: 2, units: "6.00", lsn: "0/1100", change_op: "c" },
      { sales_order_id: 1, units: "7.00", lsn: "0/2000", change_op: "u" },
      { sales_order_id: 1, units: "13.00", lsn: "0/2200", change_op: "u" },
      { sales_order_id: 2, units: "9.00", lsn: "0/2500", change_op: "u" },
      { sales_order_id: 2, units: "10.50", lsn: "0/3000", change_op: "u" },
      { sales_order_id: 1, units: "8.00", lsn: "0/4000", change_op: "u" },
      { sales_order_id: 1, units: "11.00", lsn: "0/5000", change_op: "u" }
    ])
    expect(await mirror()).toEqual([
      { id: 1, units: "11", lsn: "0/5000" },
      { id: 2, units: "10.5", lsn: "0/3000" }
    ])

    // After the resume a redelivery of anything changes nothing.
    await applyRecords(client, [first, update, late, breaking, newer])
    expect(await parked()).toEqual([])
    expect((await facts()).length).toBe(8)
  })

  it("a resume that stops at a parked change that still breaks pauses from there: a redelivery of what the resume applied then applies, it is not parked again", async () => {
    const db = await connect(await freshDatabase("park"))
    try {
      await migrateWarehouse(db)
      const { unit_price: _dropped, ...withoutPrice } = order(1, 20)
      const typeBreak = updated("0/3000", 1, "10.5")
      const missingBreak = changeEvent("u", "sales_order", at("0/3500"), { after: withoutPrice })
      const after = updated("0/3600", 2, 21)
      await applyRecords(db, [created("0/1000", 1, 5), created("0/1100", 2, 6)])
      await applyRecords(db, [typeBreak, missingBreak, after])
      const report = await resumeTable(db, "sales_order", { widen: { units_sold: "numeric(12,2)" } })
      expect({ ...report, stillBreaks: report.stillBreaks?.column }).toEqual({ table: "sales_order", applied: 1, stillBreaks: "unit_price", remaining: 2 })
      const state = async () => ({
        paused: (await db.query("SELECT first_event_id, first_lsn::text AS since FROM totes.paused_table")).rows,
        parked: (await db.query("SELECT event_id FROM totes.parked_event ORDER BY source_lsn")).rows.map((r) => r.event_id as string)
      })
      expect(await state()).toEqual({ paused: [{ first_event_id: missingBreak.id, since: "0/3500" }], parked: [missingBreak.id, after.id] })
      const late = updated("0/3200", 2, 30)
      const redelivery = await applyRecords(db, [typeBreak, late, missingBreak])
      expect({ parkedIds: redelivery.parkedIds, paused: redelivery.paused }).toEqual({ parkedIds: [missingBreak.id], paused: [] })
      expect(await state()).toEqual({ paused: [{ first_event_id: missingBreak.id, since: "0/3500" }], parked: [missingBreak.id, after.id] })
      const history = await db.query("SELECT sales_order_id, units_sold::text AS units, source_lsn::text AS lsn FROM fact_sales_order ORDER BY source_lsn")
      expect(history.rows).toEqual([
        { sales_order_id: 1, units: "5.00", lsn: "0/1000" },
        { sales_order_id: 2, units: "6.00", lsn: "0/1100" },
        { sales_order_id: 1, units: "10.50", lsn: "0/3000" },
        { sales_order_id: 2, units: "30.00", lsn: "0/3200" }
      ])
    } finally {
      await db.end()
    }
  })

  it("an older break arriving after the pause moves it back without counting as a new pause (one warning per pause)", async () => {
    const db = await connect(await freshDatabase("park-back"))
    try {
      await migrateWarehouse(db)
      await applyRecords(db, [created("0/1000", 1, 5)])
      const pausing = await applyRecords(db, [updated("0/3000", 1, "10.5")])
      expect(pausing.paused.map((v) => v.table)).toEqual(["sales_order"])
      const olderBreak = updated("0/2000", 1, "7.5")
      const moved = await applyRecords(db, [olderBreak])
      expect({ paused: moved.paused, pausedTables: moved.pausedTables, parkedIds: moved.parkedIds }).toEqual({ paused: [], pausedTables: ["sales_order"], parkedIds: [olderBreak.id] })
      expect((await db.query("SELECT first_event_id, first_lsn::text AS since FROM totes.paused_table")).rows).toEqual([{ first_event_id: olderBreak.id, since: "0/2000" }])
    } finally {
      await db.end()
    }
  })

  it("bulk replay's loader given the same batches keeps the same warehouse, parked changes and pause, also when an older break arrives later in the segment", async () => {
    const inOrder = (events: ReadonlyArray<ChangeEvent>) =>
      [...events].sort((a, b) => comparePositions({ lsn: a.source.commitLsn, seq: a.source.index }, { lsn: b.source.commitLsn, seq: b.source.index }))
    const batches = [
      [created("0/1000", 1, 5), created("0/1100", 2, 6), created("0/1200", 3, 4)],
      [updated("0/2000", 1, 7), updated("0/3000", 2, "10.5"), updated("0/4000", 1, 8)],
      // Late and redelivered: older changes, and an older change that breaks too (the table pauses from it).
      [created("0/1000", 1, 5), updated("0/2500", 3, 9), updated("0/2600", 3, "4.5"), updated("0/2700", 1, 12), updated("0/5000", 2, 11)],
      [updated("0/2200", 1, 13), updated("0/2650", 1, 14), updated("0/6000", 3, 15)]
    ].map(inOrder)
    const stateOf = async (db: pg.Client) => ({
      ...(await dumpWarehouse(db)),
      paused: (await db.query("SELECT table_name, column_name, problem, detail, first_event_id, first_lsn::text, first_seq FROM totes.paused_table")).rows,
      parked: (await db.query("SELECT event_id FROM totes.parked_event ORDER BY event_id")).rows.map((r) => r.event_id as string)
    })

    const liveUrl = await freshDatabase("park")
    const live = await connect(liveUrl)
    const bulkUrl = await freshDatabase("park")
    const bulkClient = await connect(bulkUrl)
    try {
      await migrateWarehouse(live)
      await migrateWarehouse(bulkClient)
      for (const batch of batches) await applyRecords(live, batch)
      const expected = await stateOf(live)
      expect(expected.paused).toEqual([
        { table_name: "sales_order", column_name: "units_sold", problem: "type", detail: expect.any(String), first_event_id: "0/2600:0", first_lsn: "0/2600", first_seq: 0 }
      ])
      // From the older break on: what the first pause parked, the older break, and what came after it.
      expect(expected.parked).toEqual(["0/2600:0", "0/2650:0", "0/2700:0", "0/3000:0", "0/4000:0", "0/5000:0", "0/6000:0"])

      const loader = await openBulkLoader({ connect: () => connect(bulkUrl) })
      try {
        for (const batch of batches) await loader.applyBatch(batch)
        await loader.flushSegment()
        await loader.finish()
        expect(loader.counts().parked).toBe(7)
      } finally {
        await loader.close()
      }
      expect(await stateOf(bulkClient)).toEqual(expected)
    } finally {
      await live.end()
      await bulkClient.end()
    }
  })
})
