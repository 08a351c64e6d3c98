import { describe, expect, it } from "vitest"
import type { ChangeEvent, Row } from "../../contracts/change-event.ts"
import {
  completePlan,
  FACT_COLUMNS,
  imagesNeeded,
  mirrorKey,
  projectBatch,
  splitTimestamp,
  UnresolvedClaimCheckError
} from "../../services/warehouse/projection.ts"
import { changeEvent, heartbeatEvent, snapshotEvent, truncateEvent } from "../fixtures/events.ts"

const at = (commitLsn: string, index = 0, committedAt = "2024-03-01T10:00:00.000Z") => ({ commitLsn, index, committedAt })

const salesOrder = (id: number, overrides: Row = {}): Row => ({
  sales_order_id: id,
  created_at: "2024-02-23T11:11:10.072",
  last_updated: "2024-02-23T11:11:10.072",
  design_id: 8,
  staff_id: 3,
  counterparty_id: 2,
  units_sold: 100,
  unit_price: "2.50",
  currency_id: 1,
  agreed_delivery_date: "2024-02-28",
  agreed_payment_date: "2024-02-26",
  agreed_delivery_location_id: 5,
  ...overrides
})

const address = (id: number, overrides: Row = {}): Row => ({
  address_id: id,
  address_line_1: "1 Main Street",
  address_line_2: null,
  district: null,
  city: "Leeds",
  postal_code: "LS1",
  country: "UK",
  phone: "0113",
  created_at: "2022-11-03T14:20:49.962",
  last_updated: "2022-11-03T14:20:49.962",
  ...overrides
})

describe("projectBatch", () => {
  it("maps a sales order to one fact row with dates, millisecond times and metadata", () => {
    const plan = projectBatch([changeEvent("c", "sales_order", at("0/5000000", 2), { after: salesOrder(7) })])
    const done = completePlan(plan, new Map())
    expect(done.facts.fact_sales_order).toEqual([
      {
        sales_order_id: 7,
        created_date: "2024-02-23",
        created_time: "11:11:10.072",
        last_updated_date: "2024-02-23",
        last_updated_time: "11:11:10.072",
        sales_staff_id: 3,
        counterparty_id: 2,
        units_sold: 100,
        unit_price: "2.50",
        currency_id: 1,
        design_id: 8,
        agreed_payment_date: "2024-02-26",
        agreed_delivery_date: "2024-02-28",
        agreed_delivery_location_id: 5,
        source_seq: 2,
        change_op: "c",
        event_id: "0/5000000:2",
        source_lsn: "0/5000000",
        source_committed_at: "2024-03-01T10:00:00.000Z"
      }
    ])
    expect(done.dateRange).toEqual({ first: "2024-02-23", last: "2024-02-28" })
    expect(done.references.dim_staff).toEqual([3])
    expect(done.references.dim_location).toEqual([5])
    expect(done.references.dim_design).toEqual([8])
    expect(done.mirror).toEqual([
      { table_name: "sales_order", key_id: 7, image: salesOrder(7), source_lsn: "0/5000000", source_seq: 2, deleted: false, event_id: "0/5000000:2" }
    ])
    // the diagram's column order
    expect(FACT_COLUMNS.fact_sales_order).toEqual([
      "sales_order_id", "created_date", "created_time", "last_updated_date", "last_updated_time", "sales_staff_id", "counterparty_id",
      "units_sold", "unit_price", "currency_id", "design_id", "agreed_payment_date", "agreed_delivery_date", "agreed_delivery_location_id"
    ])
  })

  it("keeps one fact per change but only the latest version per key for the mirror, in source order", () => {
    const events = [
      changeEvent("u", "sales_order", at("0/5000200", 1), { after: salesOrder(7, { units_sold: 3 }) }),
      changeEvent("u", "sales_order", at("0/5000200", 0), { after: salesOrder(7, { units_sold: 2 }) }),
      changeEvent("c", "sales_order", at("0/5000100"), { after: salesOrder(7, { units_sold: 1 }) })
    ]
    const plan = projectBatch(events)
    expect(plan.facts.map((f) => [f.eventId, f.op, f.image.units_sold])).toEqual([
      ["0/5000100:0", "c", 1],
      ["0/5000200:0", "u", 2],
      ["0/5000200:1", "u", 3]
    ])
    expect(plan.mirror).toHaveLength(1)
    expect(plan.mirror[0]!.image.units_sold).toBe(3)
  })

  it("compares LSNs as numbers, not text, and normalises padded ones", () => {
    const plan = projectBatch([
      changeEvent("u", "sales_order", at("0/A0000000"), { after: salesOrder(1, { units_sold: 2 }) }),
      changeEvent("c", "sales_order", at("00000000/9FFFFFFF"), { after: salesOrder(1, { units_sold: 1 }) })
    ])
    expect(plan.facts.map((f) => f.position.lsn)).toEqual(["0/9FFFFFFF", "0/A0000000"])
    expect(plan.mirror[0]!.image.units_sold).toBe(2)
  })

  it("drops duplicate records of one batch", () => {
    const event = changeEvent("c", "sales_order", at("0/5000000"), { after: salesOrder(1) })
    const plan = projectBatch([event, event, structuredClone(event)])
    expect(plan.facts).toHaveLength(1)
    expect(plan.counts).toMatchObject({ records: 3, changes: 1, duplicates: 2 })
  })

  it("takes unsent TOAST columns from the previous change in the batch, never nulls them", () => {
    const plan = projectBatch([
      changeEvent("c", "address", at("0/5000100"), { after: address(4, { address_line_1: "long text" }) }),
      changeEvent("u", "address", at("0/5000200"), { after: address(4, { address_line_1: "long text", city: "York" }), unchanged: ["address_line_1"] })
    ])
    expect(plan.mirror[0]!.image).toEqual(address(4, { address_line_1: "long text", city: "York" }))
    expect(plan.mirror[0]!.fill).toEqual([])
    expect(plan.mirror[0]!.inherited).toEqual(["address_line_1"])
    // The mirror's row is read all the same: only its position says whether the earlier change is newer.
    expect(imagesNeeded(plan)).toEqual([{ table: "address", key: 4 }])
    const older = new Map([[mirrorKey("address", 4), { lsn: "0/5000000", seq: 0 }]])
    const done = completePlan(plan, new Map([[mirrorKey("address", 4), address(4, { address_line_1: "older text" })]]), older)
    expect(done.mirror[0]!.image).toEqual(address(4, { address_line_1: "long text", city: "York" }))
    expect(completePlan(plan, new Map()).mirror[0]!.image).toEqual(address(4, { address_line_1: "long text", city: "York" }))
  })

  it("asks the mirror for unsent TOAST columns the batch does not know, and fills them", () => {
    const update = changeEvent("u", "sales_order", at("0/5000200"), { after: salesOrder(9, { units_sold: 5 }), unchanged: ["agreed_payment_date"] })
    expect(update.after).not.toHaveProperty("agreed_payment_date")
    const plan = projectBatch([update])
    expect(plan.facts[0]!.fill).toEqual(["agreed_payment_date"])
    expect(imagesNeeded(plan)).toEqual([{ table: "sales_order", key: 9 }])
    const previous = new Map([[mirrorKey("sales_order", 9), salesOrder(9, { agreed_payment_date: "2024-01-31" })]])
    const done = completePlan(plan, previous)
    expect(done.facts.fact_sales_order[0]!.agreed_payment_date).toBe("2024-01-31")
    expect(done.facts.fact_sales_order[0]!.units_sold).toBe(5)
    expect(done.mirror[0]!.image.agreed_payment_date).toBe("2024-01-31")
  })

  it("repeats the last known values on a delete: from a complete before image, else from the mirror", () => {
    const full = projectBatch([changeEvent("d", "sales_order", at("0/5000300"), { before: salesOrder(3, { units_sold: 42 }) })])
    expect(imagesNeeded(full)).toEqual([])
    const fullDone = completePlan(full, new Map())
    expect(fullDone.facts.fact_sales_order[0]).toMatchObject({ change_op: "d", sales_order_id: 3, units_sold: 42 })
    expect(fullDone.mirror[0]).toMatchObject({ deleted: true, key_id: 3 })

    const keyOnly = projectBatch([changeEvent("d", "sales_order", at("0/5000300"), { before: { sales_order_id: 3 } })])
    expect(imagesNeeded(keyOnly)).toEqual([{ table: "sales_order", key: 3 }])
    const keyOnlyDone = completePlan(keyOnly, new Map([[mirrorKey("sales_order", 3), salesOrder(3, { units_sold: 41 })]]))
    expect(keyOnlyDone.facts.fact_sales_order[0]).toMatchObject({ change_op: "d", sales_order_id: 3, units_sold: 41, created_time: "11:11:10.072" })
    expect(keyOnlyDone.mirror[0]!.image).toEqual(salesOrder(3, { units_sold: 41 }))

    // never seen before: the natural key is still known
    const unknown = completePlan(keyOnly, new Map())
    expect(unknown.facts.fact_sales_order[0]).toMatchObject({ change_op: "d", sales_order_id: 3, units_sold: null })
  })

  it("fills a key-only delete from an earlier change of the same batch", () => {
    const plan = projectBatch([
      changeEvent("u", "sales_order", at("0/5000100"), { after: salesOrder(3, { units_sold: 40 }) }),
      changeEvent("d", "sales_order", at("0/5000200"), { before: { sales_order_id: 3 } })
    ])
    expect(imagesNeeded(plan)).toEqual([{ table: "sales_order", key: 3 }])
    expect(completePlan(plan, new Map()).facts.fact_sales_order[1]).toMatchObject({ change_op: "d", units_sold: 40 })
    // A mirror older than the earlier change does not supply.
    const mirror = new Map([[mirrorKey("sales_order", 3), salesOrder(3, { units_sold: 39 })]])
    const done = completePlan(plan, mirror, new Map([[mirrorKey("sales_order", 3), { lsn: "0/5000000", seq: 7 }]]))
    expect(done.facts.fact_sales_order[1]).toMatchObject({ change_op: "d", units_sold: 40 })
    expect(done.mirror[0]!.image).toEqual(salesOrder(3, { units_sold: 40 }))
  })

  describe("a stale change in the batch (a duplicate or late delivery older than the mirror's row)", () => {
    const mirrorAt = (lsn: string, seq: number, image: Row) => ({
      images: new Map([[mirrorKey("sales_order", 3), image]]),
      positions: new Map([[mirrorKey("sales_order", 3), { lsn, seq }]])
    })

    it("does not supply a key-only delete's image: the mirror's newer image does", () => {
      const plan = projectBatch([
        changeEvent("u", "sales_order", at("0/5000100"), { after: salesOrder(3, { units_sold: 40 }) }),
        changeEvent("d", "sales_order", at("0/5000300"), { before: { sales_order_id: 3 } })
      ])
      expect(imagesNeeded(plan)).toEqual([{ table: "sales_order", key: 3 }])
      const { images, positions } = mirrorAt("0/5000200", 0, salesOrder(3, { units_sold: 45, unit_price: "9.99" }))
      const done = completePlan(plan, images, positions)
      expect(done.facts.fact_sales_order.map((row) => [row.change_op, row.units_sold, row.unit_price])).toEqual([
        ["u", 40, "2.50"],
        ["d", 45, "9.99"]
      ])
      expect(done.mirror).toEqual([expect.objectContaining({ key_id: 3, deleted: true, image: salesOrder(3, { units_sold: 45, unit_price: "9.99" }) })])
    })

    it("at the mirror's own position (the change the mirror holds, again): the mirror's image", () => {
      const plan = projectBatch([
        changeEvent("u", "sales_order", at("0/5000200", 1), { after: salesOrder(3, { units_sold: 40 }), unchanged: ["agreed_payment_date"] }),
        changeEvent("d", "sales_order", at("0/5000300"), { before: { sales_order_id: 3 } })
      ])
      // The mirror completed that change's unsent column when it first applied it.
      const { images, positions } = mirrorAt("0/5000200", 1, salesOrder(3, { units_sold: 40, agreed_payment_date: "2024-01-31" }))
      const done = completePlan(plan, images, positions)
      expect(done.facts.fact_sales_order[1]).toMatchObject({ change_op: "d", units_sold: 40, agreed_payment_date: "2024-01-31" })
    })

    it("along a chain: a newer change that took columns from the stale one takes them from the mirror, and passes them on", () => {
      const plan = projectBatch([
        changeEvent("u", "sales_order", at("0/5000100"), { after: salesOrder(3, { units_sold: 40, agreed_payment_date: "2024-01-01" }) }),
        changeEvent("u", "sales_order", at("0/5000300"), { after: salesOrder(3, { units_sold: 50 }), unchanged: ["agreed_payment_date"] }),
        changeEvent("d", "sales_order", at("0/5000400"), { before: { sales_order_id: 3 } })
      ])
      const { images, positions } = mirrorAt("0/5000200", 0, salesOrder(3, { units_sold: 45, agreed_payment_date: "2024-02-02" }))
      const done = completePlan(plan, images, positions)
      expect(done.facts.fact_sales_order.map((row) => [row.change_op, row.units_sold, row.agreed_payment_date])).toEqual([
        ["u", 40, "2024-01-01"],
        ["u", 50, "2024-02-02"],
        ["d", 50, "2024-02-02"]
      ])
      expect(done.mirror[0]!.image).toEqual(salesOrder(3, { units_sold: 50, agreed_payment_date: "2024-02-02" }))
    })

    it("after a key change: the old key's row in the mirror decides for the new key's unsent columns", () => {
      // The key change 3 → 30 was applied already (the mirror's row of 3 is its delete); a duplicate of it and a later update of 30.
      const keyChange = { ...changeEvent("u", "sales_order", at("0/5000100"), { after: salesOrder(30), unchanged: ["agreed_payment_date"] }), key: { sales_order_id: 3 } }
      const plan = projectBatch([
        keyChange,
        changeEvent("u", "sales_order", at("0/5000300"), { after: salesOrder(30, { units_sold: 7 }), unchanged: ["agreed_payment_date"] })
      ])
      const images = new Map([
        [mirrorKey("sales_order", 3), salesOrder(3, { agreed_payment_date: "2024-01-01" })],
        [mirrorKey("sales_order", 30), salesOrder(30, { agreed_payment_date: "2024-03-03" })]
      ])
      const positions = new Map([
        [mirrorKey("sales_order", 3), { lsn: "0/5000100", seq: 0 }],
        [mirrorKey("sales_order", 30), { lsn: "0/5000200", seq: 0 }]
      ])
      expect(imagesNeeded(plan)).toEqual(expect.arrayContaining([{ table: "sales_order", key: 3 }, { table: "sales_order", key: 30 }]))
      const done = completePlan(plan, images, positions)
      expect(done.facts.fact_sales_order.map((row) => [row.sales_order_id, row.change_op, row.agreed_payment_date])).toEqual([
        [3, "d", "2024-01-01"],
        [30, "u", "2024-01-01"],
        [30, "u", "2024-03-03"]
      ])
    })
  })

  it("turns an update of the primary key into a delete of the old key and an update of the new one", () => {
    const plan = projectBatch([
      changeEvent("u", "address", at("0/5000100"), { before: { address_id: 4 }, after: address(40, { city: "York" }) })
    ])
    expect(plan.mirror.map((m) => [m.key, m.op])).toEqual([
      [4, "d"],
      [40, "u"]
    ])
    expect(plan.dims.dim_location.keys).toEqual([4, 40])
    expect(plan.dims.dim_counterparty.parentKeys).toEqual([4, 40])
  })

  it("names the dimension keys to recompute, including children of addresses and departments", () => {
    const plan = projectBatch([
      changeEvent("u", "address", at("0/5000100"), { after: address(4) }),
      changeEvent("u", "department", at("0/5000100", 1), {
        after: { department_id: 2, department_name: "Sales", location: "Leeds", manager: null, created_at: "2022-11-03T14:20:49.962", last_updated: "2022-11-03T14:20:49.962" }
      }),
      changeEvent("u", "staff", at("0/5000100", 2), {
        after: { staff_id: 5, first_name: "A", last_name: "B", department_id: 2, email_address: "a@b", created_at: "2022-11-03T14:20:49.962", last_updated: "2022-11-03T14:20:49.962" }
      }),
      changeEvent("c", "currency", at("0/5000100", 3), { after: { currency_id: 4, currency_code: "JPY", created_at: "2024-01-01T00:00:00", last_updated: "2024-01-01T00:00:00" } })
    ])
    expect(plan.dims.dim_location).toEqual({ all: false, keys: [4], parentKeys: [] })
    expect(plan.dims.dim_counterparty).toEqual({ all: false, keys: [], parentKeys: [4] })
    expect(plan.dims.dim_staff).toEqual({ all: false, keys: [5], parentKeys: [2] })
    expect(plan.dims.dim_currency).toEqual({ all: false, keys: [4], parentKeys: [] })
    expect(plan.dims.dim_design).toEqual({ all: false, keys: [], parentKeys: [] })
    expect(plan.facts).toEqual([])
  })

  it("records truncations and recomputes every row of the dimensions they touch", () => {
    const plan = projectBatch([truncateEvent("address", at("0/5000100")), truncateEvent("payment", at("0/5000100", 1))])
    expect(plan.truncations.map((t) => [t.table, t.eventId])).toEqual([
      ["address", "0/5000100:0"],
      ["payment", "0/5000100:1"]
    ])
    expect(plan.dims.dim_location.all).toBe(true)
    expect(plan.dims.dim_counterparty.all).toBe(true)
    expect(plan.dims.dim_staff.all).toBe(false)
  })

  it("skips and reports unknown tables and unreadable events, keeps the newest heartbeat", () => {
    const broken: ChangeEvent = { ...changeEvent("c", "sales_order", at("0/5000100", 1), { after: salesOrder(1) }), after: { units_sold: 1 } }
    const plan = projectBatch([
      heartbeatEvent("0/6000000", "2024-03-01T10:05:00.000Z"),
      changeEvent("c", "audit_log", at("0/5000100"), { after: { id: 1, note: "x" } }),
      broken,
      heartbeatEvent("0/7000000", "2024-03-01T10:06:00.000Z"),
      heartbeatEvent("0/5000000", "2024-03-01T10:04:00.000Z")
    ])
    expect(plan.skipped.map((s) => [s.table, s.reason])).toEqual([
      ["audit_log", "unknown_table"],
      ["sales_order", "invalid"]
    ])
    expect(plan.skipped[0]!.event).toBeNull()
    expect(plan.skipped[1]!.event).toBe(broken)
    expect(plan.heartbeat).toMatchObject({ lsn: "0/7000000", committedAt: "2024-03-01T10:06:00.000Z" })
    expect(plan.counts).toMatchObject({ heartbeats: 3, skipped: 2, changes: 1 })
    expect(plan.facts).toEqual([])
  })

  it("refuses an event whose images are still behind a claim check", () => {
    const event: ChangeEvent = {
      ...changeEvent("c", "sales_order", at("0/5000100"), { after: salesOrder(1) }),
      after: null,
      claimCheck: { bucket: "lake", key: "claims/x.json", bytes: 2_000_000 }
    }
    expect(() => projectBatch([event])).toThrow(UnresolvedClaimCheckError)
  })

  it("treats snapshot rows as position (snapshot LSN, -1), before any change at a later LSN", () => {
    const plan = projectBatch([
      changeEvent("u", "sales_order", at("0/3000100"), { after: salesOrder(1, { units_sold: 9 }) }),
      snapshotEvent("sales_order", salesOrder(1), { snapshotLsn: "0/3000000" })
    ])
    expect(plan.facts.map((f) => [f.op, f.position.seq])).toEqual([
      ["r", -1],
      ["u", 0]
    ])
    expect(plan.mirror[0]!.image.units_sold).toBe(9)
  })
})

describe("splitTimestamp", () => {
  it("splits a timestamp without zone into date and time, keeping milliseconds", () => {
    expect(splitTimestamp("2024-02-23T11:11:10.072", "x")).toEqual({ date: "2024-02-23", time: "11:11:10.072" })
    expect(splitTimestamp("2024-02-23 11:11:10", "x")).toEqual({ date: "2024-02-23", time: "11:11:10" })
    expect(splitTimestamp(null, "x")).toEqual({ date: null, time: null })
    expect(() => splitTimestamp("2024-02-23T11:11:10Z", "created_at")).toThrow(/created_at/)
  })
})
