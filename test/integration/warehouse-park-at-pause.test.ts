/**
 * A paused table parks its changes from the position that paused it on, on real PostgreSQL
 * through applyRecords and resumeTable: a change older than that position (a redelivery, a late
 * delivery) was written under the old schema and is applied, in the pausing batch and in later
 * ones; resuming then applies exactly the parked changes, once, in order.
 */
import type pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Row } from "../../contracts/change-event.ts"
import { applyRecords, resumeTable } from "../../services/warehouse/apply.ts"
import { migrateWarehouse } from "../../services/warehouse/migrate.ts"
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
})
