/**
 * The consumer's warehouse side against the real Postgres: the February 2024 snapshot of totesys
 * as snapshot events, then a series of real changes made to the source (and recorded as the events
 * a reader would publish), applied through projection + apply and compared with an independent
 * full-refresh derivation of the final source state.
 */
import type pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ChangeEvent, StreamRecord } from "../../contracts/change-event.ts"
import type { TotesysTable } from "../../contracts/totesys.ts"
import { applyPlan, applyRecords } from "../../services/warehouse/apply.ts"
import { readFreshness } from "../../services/warehouse/freshness.ts"
import { registerShards } from "../../services/warehouse/shard-positions.ts"
import { projectBatch } from "../../services/warehouse/projection.ts"
import { initSourceSchema, loadCsvSnapshot } from "../../tools/source/totesys-db.ts"
import { migrateWarehouse } from "../../services/warehouse/migrate.ts"
import { deriveStarSchema, dumpWarehouse, readStarSchema, STAR_COLUMNS } from "../fixtures/derive-star-schema.ts"
import { changeEvent, heartbeatEvent, interleavedBatches, seededRandom, snapshotEvent, snapshotEvents, SourceRecorder, truncateEvent } from "../fixtures/events.ts"
import { connect, freshDatabase, SNAPSHOT_FEB } from "../support/stack.ts"

const STAMP = "2024-02-26 09:00:00.123"

const newWarehouse = async (): Promise<{ url: string; client: pg.Client }> => {
  const url = await freshDatabase("wh")
  const client = await connect(url)
  await migrateWarehouse(client, {})
  return { url, client }
}

/** Compares two dumps table by table, showing only the rows that differ. */
const expectSameWarehouse = (actual: Record<string, Array<Record<string, unknown>>>, expected: Record<string, Array<Record<string, unknown>>>) => {
  expect(Object.keys(actual)).toEqual(Object.keys(expected))
  for (const table of Object.keys(expected)) {
    const want = new Set(expected[table]!.map((row) => JSON.stringify(row)))
    const got = new Set(actual[table]!.map((row) => JSON.stringify(row)))
    expect({ table, missing: [...want].filter((r) => !got.has(r)), unexpected: [...got].filter((r) => !want.has(r)) }).toEqual({ table, missing: [], unexpected: [] })
    expect(actual[table]!.length, table).toBe(expected[table]!.length)
  }
}

const applyInBatches = async (client: pg.ClientBase, records: ReadonlyArray<StreamRecord>, size: number) => {
  for (let i = 0; i < records.length; i += size) await applyRecords(client, records.slice(i, i + size))
}

/** What the scenario did, for the assertions. */
interface Story {
  deleted: Partial<Record<TotesysTable, Array<number>>>
  liveAtTruncate: { payment: number; transaction: number }
}

/**
 * Changes to the February source: dimension edits (an address that is the legal address of
 * several counterparties, the "Leds" department, staff moving department, a counterparty moving
 * address), new orders with transaction and payment, payments paid (one with an unsent TOAST
 * column), in-place edits, two changes of one row in one transaction, deletes with full and
 * key-only images, a far-future date, an unknown table, then a truncation of payment and
 * transaction followed by new rows.
 */
const runScenario = async (source: pg.ClientBase, recorder: SourceRecorder): Promise<Story> => {
  const one = async (sql: string) => (await source.query(sql)).rows[0]
  const story: Story = { deleted: {}, liveAtTruncate: { payment: 0, transaction: 0 } }

  await recorder.transaction(async (tx) => {
    await tx.update("address", 17, { city: "Leeds", last_updated: STAMP })
    await tx.update("department", 4, { location: "Leeds", last_updated: STAMP })
  })
  await recorder.transaction(async (tx) => {
    await tx.update("staff", 3, { department_id: 4, last_updated: STAMP })
    await tx.update("counterparty", 2, { legal_address_id: 3, last_updated: STAMP })
    await tx.update("design", 8, { file_location: "/srv/designs" }) // in place: last_updated untouched
  })
  const ids = await recorder.transaction(async (tx) => {
    const design = await tx.insert("design", { design_name: "Hemp", file_location: "/usr", file_name: "hemp.json", last_updated: STAMP })
    const address = await tx.insert("address", {
      address_line_1: "1 O'Keefe Way", city: "Leeds", postal_code: "LS1 1AA", country: "United Kingdom", phone: "0113 000000", last_updated: STAMP
    })
    const counterparty = await tx.insert("counterparty", {
      counterparty_legal_name: "Tote, Bags and Sons", legal_address_id: address.address_id, last_updated: STAMP
    })
    const order = await tx.insert("sales_order", {
      last_updated: STAMP, design_id: design.design_id, staff_id: 3, counterparty_id: counterparty.counterparty_id, units_sold: 1000,
      unit_price: "3.10", currency_id: 1, agreed_delivery_date: "2024-03-01", agreed_payment_date: "2024-03-04",
      agreed_delivery_location_id: address.address_id
    })
    const transaction = await tx.insert("transaction", { transaction_type: "SALE", sales_order_id: order.sales_order_id, last_updated: STAMP })
    await tx.insert("payment", {
      last_updated: STAMP, transaction_id: transaction.transaction_id, counterparty_id: counterparty.counterparty_id, payment_amount: "3100.00",
      currency_id: 1, payment_type_id: 1, paid: false, payment_date: "2024-03-04", company_ac_number: 1, counterparty_ac_number: 2
    })
    const purchase = await tx.insert("purchase_order", {
      last_updated: STAMP, staff_id: 5, counterparty_id: 4, item_code: "ABC1234", item_quantity: 10, item_unit_price: "99.90", currency_id: 2,
      agreed_delivery_date: "2024-03-05", agreed_payment_date: "2024-03-06", agreed_delivery_location_id: 9
    })
    const purchaseTransaction = await tx.insert("transaction", {
      transaction_type: "PURCHASE", purchase_order_id: purchase.purchase_order_id, last_updated: STAMP
    })
    await tx.insert("payment", {
      last_updated: STAMP, transaction_id: purchaseTransaction.transaction_id, counterparty_id: 4, payment_amount: "999.00",
      currency_id: 2, payment_type_id: 3, paid: false, payment_date: "2024-03-06", company_ac_number: 1, counterparty_ac_number: 2
    })
  })
  expect(ids).toHaveLength(9)

  const unpaid = (await source.query("SELECT payment_id FROM payment WHERE NOT paid ORDER BY payment_id LIMIT 4")).rows.map((r) => r.payment_id as number)
  await recorder.transaction(async (tx) => {
    for (const [i, id] of unpaid.entries()) {
      await tx.update("payment", id, { paid: true, last_updated: STAMP }, { unchanged: i === 0 ? ["payment_date"] : [] })
    }
  })
  await recorder.transaction(async (tx) => {
    // two changes of one row in one transaction: the later index wins
    await tx.update("sales_order", 10, { staff_id: 7 })
    await tx.update("sales_order", 10, { units_sold: 12345 })
    await tx.update("purchase_order", 10, { item_code: "ZZZZZZZ" })
    await tx.update("sales_order", 11, { agreed_delivery_date: "2031-05-05" })
  })

  // Delete an order chain: payment (full image), transaction and sales order (key only).
  const chain = await one(
    `SELECT t.transaction_id, p.payment_id, t.sales_order_id FROM "transaction" t JOIN payment p USING (transaction_id)
     WHERE t.sales_order_id IS NOT NULL ORDER BY t.transaction_id LIMIT 1`
  )
  const purchaseChain = await one(
    `SELECT t.transaction_id, p.payment_id, t.purchase_order_id FROM "transaction" t JOIN payment p USING (transaction_id)
     WHERE t.purchase_order_id IS NOT NULL ORDER BY t.transaction_id LIMIT 1`
  )
  await recorder.transaction(async (tx) => {
    await tx.delete("payment", chain.payment_id)
    await tx.delete("transaction", chain.transaction_id, { keyOnly: true })
    await tx.delete("sales_order", chain.sales_order_id, { keyOnly: true })
    await tx.delete("payment", purchaseChain.payment_id, { keyOnly: true })
    await tx.delete("transaction", purchaseChain.transaction_id)
    await tx.delete("purchase_order", purchaseChain.purchase_order_id)
  })
  // A currency and a staff member that come and go; an order inserted and deleted in one transaction.
  let currencyId = 0
  let staffId = 0
  await recorder.transaction(async (tx) => {
    currencyId = Number((await tx.insert("currency", { currency_code: "JPY", last_updated: STAMP })).currency_id)
    await tx.insert("currency", { currency_code: "XXQ", last_updated: STAMP })
    staffId = Number((await tx.insert("staff", { first_name: "Temp", last_name: "Worker", department_id: 8, email_address: "t@w", last_updated: STAMP })).staff_id)
    const order = await tx.insert("sales_order", {
      last_updated: STAMP, design_id: 8, staff_id: 1, counterparty_id: 1, units_sold: 1, unit_price: "1.00", currency_id: 3,
      agreed_delivery_date: "2024-03-01", agreed_payment_date: "2024-03-01", agreed_delivery_location_id: 1
    })
    await tx.delete("sales_order", Number(order.sales_order_id))
    tx.foreign("audit_log", { id: 1, note: "not captured by the warehouse" })
  })
  await recorder.transaction(async (tx) => {
    await tx.delete("currency", currencyId, { keyOnly: true })
    await tx.delete("staff", staffId)
    await tx.update("address", 9, { phone: "0800 000000", last_updated: STAMP }, { withBefore: true })
  })
  story.deleted = {
    payment: [chain.payment_id, purchaseChain.payment_id],
    transaction: [chain.transaction_id, purchaseChain.transaction_id],
    sales_order: [chain.sales_order_id],
    purchase_order: [purchaseChain.purchase_order_id],
    currency: [currencyId],
    staff: [staffId]
  }

  // Truncate payment and transaction, then start again with new rows.
  story.liveAtTruncate = {
    payment: Number((await one("SELECT count(*) AS n FROM payment")).n),
    transaction: Number((await one(`SELECT count(*) AS n FROM "transaction"`)).n)
  }
  await recorder.transaction(async (tx) => {
    await tx.truncate("payment", "transaction")
  })
  await recorder.transaction(async (tx) => {
    const transaction = await tx.insert("transaction", { transaction_type: "SALE", sales_order_id: 12, last_updated: STAMP })
    const payment = await tx.insert("payment", {
      last_updated: STAMP, transaction_id: transaction.transaction_id, counterparty_id: 5, payment_amount: "10.50", currency_id: 3,
      payment_type_id: 1, paid: false, payment_date: "2024-03-07", company_ac_number: 1, counterparty_ac_number: 2
    })
    await tx.update("payment", Number(payment.payment_id), { paid: true, last_updated: STAMP })
  })
  return story
}

describe("warehouse apply", () => {
  let sourceUrl: string
  let source: pg.Client
  let history: Array<ChangeEvent>
  let story: Story
  let reference: { url: string; client: pg.Client }
  const clients: Array<pg.Client> = []

  beforeAll(async () => {
    sourceUrl = await freshDatabase("whsrc")
    source = await connect(sourceUrl)
    await initSourceSchema(source)
    await loadCsvSnapshot(source, SNAPSHOT_FEB)
    const snapshot = await snapshotEvents(source)
    const recorder = new SourceRecorder(source)
    story = await runScenario(source, recorder)
    history = [...snapshot, ...recorder.events]

    reference = await newWarehouse()
    clients.push(reference.client)
    await applyInBatches(reference.client, history, 5000)
  })

  afterAll(async () => {
    await source?.end()
    for (const client of clients) await client.end()
  })

  it("builds exactly the star schema that an independent derivation of the final source state gives", async () => {
    const expected = await deriveStarSchema(sourceUrl)
    const actual = await readStarSchema(reference.url)
    for (const table of Object.keys(expected.dims)) {
      expect(actual.dims[table], table).toEqual(expected.dims[table])
    }
    for (const table of Object.keys(expected.facts)) {
      expect(actual.facts[table]!.length, table).toBe(expected.facts[table]!.length)
      expect(actual.facts[table], table).toEqual(expected.facts[table])
    }
    // spot checks of the derivations the scenario exercised
    const db = reference.client
    const counterparties = await db.query(`SELECT counterparty_id, counterparty_legal_city FROM dim_counterparty WHERE counterparty_legal_city = 'Leeds' ORDER BY 1`)
    expect(counterparties.rows.length).toBeGreaterThanOrEqual(3)
    const dispatch = await db.query(`SELECT DISTINCT location FROM dim_staff WHERE department_name = 'Dispatch'`)
    expect(dispatch.rows).toEqual([{ location: "Leeds" }])
    const currencies = await db.query(`SELECT currency_code, currency_name, is_deleted FROM dim_currency ORDER BY currency_id`)
    expect(currencies.rows).toEqual([
      { currency_code: "GBP", currency_name: "Pound Sterling", is_deleted: false },
      { currency_code: "USD", currency_name: "US Dollar", is_deleted: false },
      { currency_code: "EUR", currency_name: "Euro", is_deleted: false },
      { currency_code: "JPY", currency_name: "Yen", is_deleted: true },
      { currency_code: "XXQ", currency_name: "XXQ", is_deleted: false }
    ])
    const twice = await db.query(`SELECT sales_staff_id, units_sold FROM fact_sales_order_current WHERE sales_order_id = 10`)
    expect(twice.rows).toEqual([{ sales_staff_id: 7, units_sold: 12345 }])
  })

  it("keeps deleted source rows as deleted dimensions with their last values, and no placeholder is left", async () => {
    const db = reference.client
    const staff = await db.query(`SELECT first_name, department_name, is_deleted FROM dim_staff WHERE staff_id = $1`, [story.deleted.staff![0]])
    expect(staff.rows).toEqual([{ first_name: "Temp", department_name: "HR", is_deleted: true }])
    // every transaction row was truncated; only the one inserted afterwards is live
    const transactions = await db.query(`SELECT count(*) FILTER (WHERE is_deleted)::int AS deleted, count(*) FILTER (WHERE NOT is_deleted)::int AS live FROM dim_transaction`)
    expect(transactions.rows[0]).toEqual({ deleted: story.liveAtTruncate.transaction + 2, live: 1 })
    for (const dim of Object.keys(STAR_COLUMNS).filter((t) => t.startsWith("dim_"))) {
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${dim} WHERE source_lsn IS NULL`)
      expect(rows[0].n, dim).toBe(0)
    }
  })

  it("holds exactly one fact row per change, plus one delete per live row for a truncation", async () => {
    const db = reference.client
    for (const [fact, table] of [["fact_sales_order", "sales_order"], ["fact_purchase_order", "purchase_order"], ["fact_payment", "payment"]] as const) {
      const expectedIds = history.filter((e) => e.source.table === table && e.op !== "t").map((e) => e.id).sort()
      const { rows } = await db.query(`SELECT event_id FROM ${fact} WHERE event_id NOT LIKE '%:%:%' OR event_id LIKE '%:snapshot:%' ORDER BY event_id`)
      expect(rows.map((r) => r.event_id).sort(), fact).toEqual(expectedIds)
    }
    const truncation = history.find((e) => e.op === "t" && e.source.table === "payment")!
    const generated = await db.query(`SELECT count(*)::int AS n, bool_and(change_op = 'd') AS deletes FROM fact_payment WHERE event_id LIKE $1`, [`${truncation.id}:%`])
    expect(generated.rows[0]).toEqual({ n: story.liveAtTruncate.payment, deletes: true })
    // a deleted order: history c/r ... d, with the last known values repeated
    const deleted = await db.query(
      `SELECT change_op, units_sold, sales_staff_id FROM fact_sales_order WHERE sales_order_id = $1 ORDER BY source_lsn, source_seq`,
      [story.deleted.sales_order![0]]
    )
    expect(deleted.rows.map((r) => r.change_op)).toEqual(["r", "d"])
    expect(deleted.rows[1]).toEqual({ ...deleted.rows[0], change_op: "d" })
    // the TOAST column an update did not send kept its value
    const paid = await db.query(`SELECT count(*)::int AS n FROM fact_payment WHERE change_op = 'u' AND payment_date IS NULL`)
    expect(paid.rows[0].n).toBe(0)
  })

  it("generates a contiguous dim_date covering every referenced date, ISO weekdays and English names", async () => {
    const db = reference.client
    const { rows } = await db.query(
      `SELECT date_id::text AS date_id, year, month, day, day_of_week, day_name, month_name, quarter FROM dim_date ORDER BY date_id`
    )
    const first = Date.parse(`${rows[0].date_id}T00:00:00Z`)
    rows.forEach((row, i) => {
      const date = new Date(first + i * 86_400_000)
      expect(row).toEqual({
        date_id: date.toISOString().slice(0, 10),
        year: date.getUTCFullYear(),
        month: date.getUTCMonth() + 1,
        day: date.getUTCDate(),
        day_of_week: ((date.getUTCDay() + 6) % 7) + 1,
        day_name: date.toLocaleDateString("en-GB", { weekday: "long", timeZone: "UTC" }),
        month_name: date.toLocaleDateString("en-GB", { month: "long", timeZone: "UTC" }),
        quarter: Math.floor(date.getUTCMonth() / 3) + 1
      })
    })
    const referenced = await db.query(
      `SELECT min(d)::text AS lo, max(d)::text AS hi FROM (
         SELECT unnest(ARRAY[created_date, last_updated_date, agreed_payment_date, agreed_delivery_date]) AS d FROM fact_sales_order
         UNION ALL SELECT unnest(ARRAY[created_date, last_updated_date, agreed_payment_date, agreed_delivery_date]) FROM fact_purchase_order
         UNION ALL SELECT unnest(ARRAY[created_date, last_updated_date, payment_date]) FROM fact_payment) x`
    )
    expect(referenced.rows[0].hi).toBe("2031-05-05")
    expect(rows[0].date_id).toBe(referenced.rows[0].lo)
    expect(rows.at(-1)!.date_id).toBe(referenced.rows[0].hi)
  })

  it("skips and records events of unknown tables", async () => {
    const { rows } = await reference.client.query(`SELECT table_name, reason FROM totes.skipped_event`)
    expect(rows).toEqual([{ table_name: "audit_log", reason: "unknown_table" }])
  })

  it("builds the identical warehouse from duplicated, shard-interleaved and replayed deliveries", async () => {
    // A smaller history keeps this fast: every dimension row, the first orders, transactions and
    // payments of the snapshot, and every change of the scenario.
    const FACT_TABLES = ["sales_order", "purchase_order", "transaction", "payment"]
    const sample = history.filter((e) => {
      if (e.op !== "r" || !FACT_TABLES.includes(e.source.table)) return true
      return Number(Object.values(e.key ?? {})[0]) <= 1200
    })
    const inOrder = await newWarehouse()
    clients.push(inOrder.client)
    await applyInBatches(inOrder.client, sample, 5000)
    const expected = await dumpWarehouse(inOrder.client)
    expect(expected.fact_payment!.length).toBeGreaterThan(1200)

    // Three shards (per-key order kept, cross-shard order random), random batch sizes; every batch
    // is delivered twice: once in place and once again at a random later point (a retry or a
    // replay of older events after newer ones).
    const batches = interleavedBatches(sample, { shards: 3, seed: 7, maxBatch: 400 })
    const random = seededRandom(11)
    const deliveries = [...batches]
    for (const batch of batches) {
      const after = deliveries.indexOf(batch)
      deliveries.splice(after + 1 + Math.floor(random() * (deliveries.length - after)), 0, batch)
    }
    expect(deliveries).toHaveLength(batches.length * 2)
    const other = await newWarehouse()
    clients.push(other.client)
    for (const batch of deliveries) {
      await applyRecords(other.client, batch.records, { shard: { stream: "s", shardId: batch.shardId, lastSequenceNumber: batch.lastSequenceNumber } })
    }
    expectSameWarehouse(await dumpWarehouse(other.client), expected)
    // a lake replay afterwards, newest batches first: every old event arrives after newer ones
    for (const batch of [...batches].reverse()) await applyRecords(other.client, batch.records)
    expectSameWarehouse(await dumpWarehouse(other.client), expected)

    // one consumer per shard, running at the same time (as one Lambda per shard does)
    const concurrent = await newWarehouse()
    clients.push(concurrent.client)
    const shardIds = [...new Set(batches.map((b) => b.shardId))]
    await Promise.all(
      shardIds.map(async (shardId) => {
        const client = await connect(concurrent.url)
        try {
          for (const batch of batches.filter((b) => b.shardId === shardId)) {
            await applyRecords(client, batch.records, { shard: { stream: "s", shardId, lastSequenceNumber: batch.lastSequenceNumber } })
          }
        } finally {
          await client.end()
        }
      })
    )
    expectSameWarehouse(await dumpWarehouse(concurrent.client), expected)
  })
})

describe("early-arriving facts, truncations and freshness", () => {
  const clients: Array<pg.Client> = []
  afterAll(async () => {
    for (const client of clients) await client.end()
  })
  const warehouse = async () => {
    const wh = await newWarehouse()
    clients.push(wh.client)
    return wh
  }
  const at = (lsn: string, index = 0) => ({ commitLsn: lsn, index, committedAt: "2024-03-01T10:00:00.000Z" })
  const TS = "2024-03-01T09:59:59.999"
  const order = (id: number, extra: Record<string, unknown> = {}) => ({
    sales_order_id: id, created_at: TS, last_updated: TS, design_id: 903, staff_id: 900, counterparty_id: 901, units_sold: 5,
    unit_price: "1.25", currency_id: 902, agreed_delivery_date: "2024-03-02", agreed_payment_date: "2024-03-03",
    agreed_delivery_location_id: 904, ...extra
  })

  it("gives a fact that arrives before its dimensions placeholder rows, which the real rows then overwrite", async () => {
    const fact = [changeEvent("c", "sales_order", at("0/9000100"), { after: order(1) })]
    const dims = [
      changeEvent("c", "department", at("0/9000000", 0), { after: { department_id: 50, department_name: "Print", location: "York", manager: null, created_at: TS, last_updated: TS } }),
      changeEvent("c", "staff", at("0/9000000", 1), { after: { staff_id: 900, first_name: "Ann", last_name: "Lee", department_id: 50, email_address: "a@l", created_at: TS, last_updated: TS } }),
      changeEvent("c", "address", at("0/9000000", 2), {
        after: { address_id: 904, address_line_1: "2 Road", address_line_2: null, district: null, city: "York", postal_code: "Y1", country: "UK", phone: "1", created_at: TS, last_updated: TS }
      }),
      changeEvent("c", "counterparty", at("0/9000000", 3), {
        after: { counterparty_id: 901, counterparty_legal_name: "Acme", legal_address_id: 904, commercial_contact: null, delivery_contact: null, created_at: TS, last_updated: TS }
      }),
      changeEvent("c", "currency", at("0/9000000", 4), { after: { currency_id: 902, currency_code: "JPY", created_at: TS, last_updated: TS } }),
      changeEvent("c", "design", at("0/9000000", 5), { after: { design_id: 903, design_name: "Cork", file_location: "/x", file_name: "c.json", created_at: TS, last_updated: TS } })
    ]
    const early = await warehouse()
    const result = await applyRecords(early.client, fact)
    expect(result.placeholders).toBe(5)
    const placeholder = await early.client.query(`SELECT * FROM dim_staff WHERE staff_id = 900`)
    expect(placeholder.rows[0]).toMatchObject({ first_name: null, department_name: null, source_lsn: null, is_deleted: false })
    expect((await early.client.query(`SELECT count(*)::int AS n FROM fact_sales_order_current`)).rows[0].n).toBe(1)

    await applyRecords(early.client, dims)
    const staff = await early.client.query(`SELECT staff_id, first_name, department_name, location, source_lsn::text FROM dim_staff`)
    expect(staff.rows).toEqual([{ staff_id: 900, first_name: "Ann", department_name: "Print", location: "York", source_lsn: "0/9000000" }])
    const counterparty = await early.client.query(`SELECT counterparty_legal_name, counterparty_legal_city FROM dim_counterparty`)
    expect(counterparty.rows).toEqual([{ counterparty_legal_name: "Acme", counterparty_legal_city: "York" }])

    const inOrder = await warehouse()
    await applyRecords(inOrder.client, dims)
    expect((await applyRecords(inOrder.client, fact)).placeholders).toBe(0)
    expectSameWarehouse(await dumpWarehouse(early.client), await dumpWarehouse(inOrder.client))
  })

  it("lets an older change replayed after a newer one change nothing", async () => {
    const address = (city: string) => ({
      address_id: 7, address_line_1: "3 Lane", address_line_2: null, district: null, city, postal_code: "P", country: "UK", phone: "2", created_at: TS, last_updated: TS
    })
    const counterparty = { counterparty_id: 70, counterparty_legal_name: "Beta", legal_address_id: 7, commercial_contact: null, delivery_contact: null, created_at: TS, last_updated: TS }
    const old = [snapshotEvent("address", address("Hull"), { snapshotLsn: "0/9000000" }), snapshotEvent("counterparty", counterparty, { snapshotLsn: "0/9000000" })]
    const newer = [changeEvent("u", "address", at("0/9000100"), { after: address("York") })]
    const { client } = await warehouse()
    await applyRecords(client, old)
    await applyRecords(client, newer)
    const expected = await dumpWarehouse(client)
    await applyRecords(client, old)
    expectSameWarehouse(await dumpWarehouse(client), expected)
    const dims = await client.query(`SELECT (SELECT city FROM dim_location) AS location, (SELECT counterparty_legal_city FROM dim_counterparty) AS counterparty`)
    expect(dims.rows[0]).toEqual({ location: "York", counterparty: "York" })
  })

  it("applies truncations whatever order they arrive in relative to older changes of other shards", async () => {
    // key 1: inserted, then deleted before the truncation; key 2: inserted, live at the truncation;
    // key 3: inserted after the truncation.
    const events = [
      changeEvent("c", "sales_order", at("0/9000100"), { after: order(1) }),
      changeEvent("c", "sales_order", at("0/9000200"), { after: order(2) }),
      changeEvent("d", "sales_order", at("0/9000300"), { before: { sales_order_id: 1 } }),
      truncateEvent("sales_order", at("0/9000400")),
      changeEvent("c", "sales_order", at("0/9000500"), { after: order(3) })
    ]
    const [insert1, insert2, delete1, truncate, insert3] = events as [ChangeEvent, ChangeEvent, ChangeEvent, ChangeEvent, ChangeEvent]
    const inOrder = await warehouse()
    for (const event of events) await applyRecords(inOrder.client, [event])
    const history = await inOrder.client.query(`SELECT sales_order_id, change_op, units_sold FROM fact_sales_order ORDER BY source_lsn, sales_order_id`)
    expect(history.rows.map((r) => `${r.sales_order_id}${r.change_op}`)).toEqual(["1c", "2c", "1d", "2d", "3c"])
    expect((await inOrder.client.query(`SELECT sales_order_id FROM fact_sales_order_current`)).rows).toEqual([{ sales_order_id: 3 }])
    const mirror = await inOrder.client.query(`SELECT key_id::int, deleted FROM totes.mirror_current ORDER BY key_id`)
    expect(mirror.rows).toEqual([
      { key_id: 1, deleted: true },
      { key_id: 2, deleted: true },
      { key_id: 3, deleted: false }
    ])
    const expected = await dumpWarehouse(inOrder.client)

    // the truncation first, then key 1's changes in two batches, then the rest; everything twice
    const late = await warehouse()
    for (const batch of [[truncate], [insert3], [insert1], [delete1], [insert2], [truncate, insert1, delete1, insert2, insert3]]) {
      await applyRecords(late.client, batch)
    }
    expectSameWarehouse(await dumpWarehouse(late.client), expected)
  })

  it("reports freshness as the minimum heartbeat over the known shards, NULL until each has one", async () => {
    const { client } = await warehouse()
    await registerShards(client, { stream: "s", shardIds: ["a", "b"] })
    const beat = (lsn: string, minute: number) => heartbeatEvent(lsn, `2024-03-01T10:${String(minute).padStart(2, "0")}:00.000Z`)
    await applyRecords(client, [beat("0/A000000", 1)], { shard: { stream: "s", shardId: "a", lastSequenceNumber: "100" } })
    expect(await readFreshness(client)).toEqual({ consistentThroughLsn: null, consistentThroughAt: null })
    await applyRecords(client, [beat("0/9000000", 0), beat("0/B000000", 2)], { shard: { stream: "s", shardId: "b", lastSequenceNumber: "7" } })
    expect(await readFreshness(client)).toEqual({ consistentThroughLsn: "0/A000000", consistentThroughAt: new Date("2024-03-01T10:01:00.000Z") })
    // an older heartbeat replayed does not move a shard back
    await applyRecords(client, [beat("0/1000000", 0)], { shard: { stream: "s", shardId: "a", lastSequenceNumber: "50" } })
    expect((await readFreshness(client)).consistentThroughLsn).toBe("0/A000000")
    await applyRecords(client, [beat("0/C000000", 3)], { shard: { stream: "s", shardId: "a", lastSequenceNumber: "101" } })
    expect(await readFreshness(client)).toEqual({ consistentThroughLsn: "0/B000000", consistentThroughAt: new Date("2024-03-01T10:02:00.000Z") })
    const positions = await client.query(`SELECT shard_id, sequence_number::text FROM totes.shard_position ORDER BY 1`)
    expect(positions.rows).toEqual([
      { shard_id: "a", sequence_number: "101" },
      { shard_id: "b", sequence_number: "7" }
    ])
  })

  it("applies two shards' batches at once without a deadlock when each writes a dimension row the other references", async () => {
    // Batch A: transaction 5 (its dim_transaction row) and a payment of transaction 9 (a placeholder
    // of 9); batch B the other way round. A third session holds both transactions' mirror rows, so
    // A and B each get past their placeholders and wait there; once it lets go, each would next
    // need the dimension row the other has just inserted as a placeholder: a deadlock, unless the
    // batches took their dimension keys in one order first (dimensionKeyLocks).
    const transaction = (id: number) => ({ transaction_id: id, transaction_type: "SALE", sales_order_id: null, purchase_order_id: null, created_at: TS, last_updated: TS })
    const payment = (id: number, transactionId: number) => ({
      payment_id: id, created_at: TS, last_updated: TS, transaction_id: transactionId, counterparty_id: 901, payment_amount: "10.00", currency_id: 902,
      payment_type_id: 1, paid: false, payment_date: "2024-03-05", company_ac_number: 1, counterparty_ac_number: 2
    })
    const a = [changeEvent("c", "transaction", at("0/9000100", 0), { after: transaction(5) }), changeEvent("c", "payment", at("0/9000100", 1), { after: payment(100, 9) })]
    const b = [changeEvent("c", "transaction", at("0/9000200", 0), { after: transaction(9) }), changeEvent("c", "payment", at("0/9000200", 1), { after: payment(101, 5) })]
    const { url, client } = await warehouse()
    // The dates and the other dimensions both batches reference exist already (as they mostly do):
    // otherwise the second batch would queue behind the first one's new rows there.
    const earlier = [changeEvent("c", "payment", at("0/9000000"), { after: payment(99, 1) })]
    await applyRecords(client, earlier)
    const [first, second, holder] = [await connect(url), await connect(url), await connect(url)]
    clients.push(first, second, holder)
    await holder.query("BEGIN")
    await holder.query(
      `INSERT INTO totes.mirror (table_name, key_id, image, source_lsn, source_seq, deleted, event_id)
       VALUES ('transaction', 5, '{}', '0/1', 0, false, 'hold-5'), ('transaction', 9, '{}', '0/1', 0, false, 'hold-9')`
    )
    const applied = Promise.allSettled([
      applyRecords(first, a, { shard: { stream: "s", shardId: "shardId-a", lastSequenceNumber: "1" } }),
      applyRecords(second, b, { shard: { stream: "s", shardId: "shardId-b", lastSequenceNumber: "1" } })
    ])
    // Both batches are now waiting (for the holder's mirror rows, or one for the other's key lock).
    for (let waited = 0; waited < 100; waited++) {
      const { rows } = await client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`)
      if (rows[0].n >= 2) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    await holder.query("ROLLBACK")
    const outcomes = await applied
    expect(outcomes.map((o) => (o.status === "rejected" ? String(o.reason) : "applied"))).toEqual(["applied", "applied"])

    const oneByOne = await warehouse()
    await applyRecords(oneByOne.client, earlier)
    await applyRecords(oneByOne.client, a, { shard: { stream: "s", shardId: "shardId-a", lastSequenceNumber: "1" } })
    await applyRecords(oneByOne.client, b, { shard: { stream: "s", shardId: "shardId-b", lastSequenceNumber: "1" } })
    expectSameWarehouse(await dumpWarehouse(client), await dumpWarehouse(oneByOne.client))
    const dims = await client.query(`SELECT transaction_id, transaction_type FROM dim_transaction ORDER BY transaction_id`)
    expect(dims.rows).toEqual([{ transaction_id: 1, transaction_type: null }, { transaction_id: 5, transaction_type: "SALE" }, { transaction_id: 9, transaction_type: "SALE" }])
  })

  it("rolls the whole batch back when a statement fails", async () => {
    const { client } = await warehouse()
    const bad = projectBatch([changeEvent("c", "sales_order", at("0/9000100"), { after: order(1, { unit_price: "not a number" }) })])
    await expect(applyPlan(client, bad, { shard: { stream: "s", shardId: "a", lastSequenceNumber: "1" } })).rejects.toThrow()
    const { rows } = await client.query(`SELECT (SELECT count(*) FROM totes.mirror)::int AS mirror, (SELECT count(*) FROM totes.shard_position)::int AS shards, (SELECT count(*) FROM dim_staff)::int AS staff`)
    expect(rows[0]).toEqual({ mirror: 0, shards: 0, staff: 0 })
  })
})
