/**
 * Synthetic change events in the reader's encoding, written straight into a lake as raw objects,
 * for benchmarks at a scale the reader would take too long to produce (a million events).
 *
 * The history: a snapshot of the static dimensions (address, counterparty, currency, department,
 * staff, payment_type, design), then transactions of the real application's shape: a sale or a
 * purchase (order + transaction + payment, one commit), and the payment job marking payments paid
 * (updates). Commit times advance 2 s per transaction, so a million events span several days.
 */
import { randomUUID } from "node:crypto"
import { Effect } from "effect"
import type { ChangeEvent, Row } from "../../contracts/change-event.ts"
import { rawObjectKey } from "../../contracts/lake.ts"
import { lsnFromBigInt } from "../../contracts/lsn.ts"
import { encodeRawObject } from "../../services/lake/raw.ts"
import type { LakeStoreShape } from "../../services/shared/lake-store.ts"
import { changeEvent, seededRandom, snapshotEvent } from "../fixtures/events.ts"

const START = Date.parse("2024-02-26T08:00:00Z")
/** timestamp(3) as the reader sends it: PostgreSQL prints no trailing zeros of the fraction. */
const ts = (ms: number) => new Date(ms).toISOString().slice(0, 23).replace(/\.?0+$/, "")
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10)

const snapshotRows = (): Array<[string, Row]> => {
  const at = ts(START - 86_400_000)
  const rows: Array<[string, Row]> = []
  for (let i = 1; i <= 30; i++)
    rows.push(["address", { address_id: i, address_line_1: `${i} Main St`, address_line_2: i % 3 ? null : "Flat 2", district: i % 2 ? "Avon" : null, city: `City ${i}`, postal_code: `PC${i}`, country: "UK", phone: `0113 ${i}`, created_at: at, last_updated: at }])
  for (let i = 1; i <= 8; i++) rows.push(["department", { department_id: i, department_name: `Dept ${i}`, location: i === 4 ? "Leds" : "Leeds", manager: `Manager ${i}`, created_at: at, last_updated: at }])
  rows.push(
    ...(["GBP", "USD", "EUR"].map((code, i) => ["currency", { currency_id: i + 1, currency_code: code, created_at: at, last_updated: at }]) as Array<[string, Row]>)
  )
  rows.push(
    ...(["SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND"].map((name, i) => [
      "payment_type",
      { payment_type_id: i + 1, payment_type_name: name, created_at: at, last_updated: at }
    ]) as Array<[string, Row]>)
  )
  for (let i = 1; i <= 20; i++)
    rows.push(["staff", { staff_id: i, first_name: `First${i}`, last_name: `O'Last${i}`, department_id: 1 + (i % 8), email_address: `s${i}@terrifictotes.com`, created_at: at, last_updated: at }])
  for (let i = 1; i <= 20; i++)
    rows.push(["counterparty", { counterparty_id: i, counterparty_legal_name: `Name, ${i} Ltd`, legal_address_id: 1 + (i % 30), commercial_contact: `C ${i}`, delivery_contact: null, created_at: at, last_updated: at }])
  for (let i = 1; i <= 100; i++) rows.push(["design", { design_id: i, created_at: at, design_name: `Design ${i}`, file_location: "/usr", file_name: `d${i}.json`, last_updated: at }])
  return rows
}

/** Yields `count` events (the snapshot first), deterministic for a seed. */
export function* syntheticEvents(count: number, seed = 1): Generator<ChangeEvent> {
  const random = seededRandom(seed)
  const pick = (n: number) => 1 + Math.floor(random() * n)
  let emitted = 0
  for (const [table, row] of snapshotRows()) {
    if (emitted++ >= count) return
    yield snapshotEvent(table, row, { snapshotLsn: "0/3000000", committedAt: new Date(START - 3_600_000).toISOString() })
  }
  let lsn = 0x3000000n
  let time = START
  const ids = { sales_order: 0, purchase_order: 0, transaction: 0, payment: 0 }
  const unpaid: Array<Row> = []
  while (emitted < count) {
    lsn += 0x400n
    time += 2_000
    const position = (index: number) => ({ commitLsn: lsnFromBigInt(lsn), index, committedAt: `${new Date(time).toISOString().slice(0, 23)}${String(pick(999)).padStart(3, "0")}Z` })
    const at = ts(time)
    const events: Array<ChangeEvent> = []
    if (unpaid.length >= 3 && random() < 0.2) {
      // The payment job: three payments become paid.
      for (const payment of unpaid.splice(0, 3)) events.push(changeEvent("u", "payment", position(events.length), { after: { ...payment, paid: true, last_updated: at } }))
    } else {
      const sale = random() < 0.7
      const quantity = pick(90_000)
      const price = (pick(40_000) / 100 + 2).toFixed(2)
      const common = { created_at: at, last_updated: at, staff_id: pick(20), counterparty_id: pick(20), currency_id: pick(3), agreed_delivery_date: day(time + 5 * 86_400_000), agreed_payment_date: day(time + 9 * 86_400_000), agreed_delivery_location_id: pick(30) }
      const order = sale
        ? { sales_order_id: ++ids.sales_order, design_id: pick(100), units_sold: quantity, unit_price: price, ...common }
        : { purchase_order_id: ++ids.purchase_order, item_code: `ITEM${pick(999)}`, item_quantity: quantity, item_unit_price: price, ...common }
      events.push(changeEvent("c", sale ? "sales_order" : "purchase_order", position(0), { after: order }))
      const transaction = {
        transaction_id: ++ids.transaction,
        transaction_type: sale ? "SALE" : "PURCHASE",
        sales_order_id: sale ? ids.sales_order : null,
        purchase_order_id: sale ? null : ids.purchase_order,
        created_at: at,
        last_updated: at
      }
      events.push(changeEvent("c", "transaction", position(1), { after: transaction }))
      const payment = {
        payment_id: ++ids.payment,
        created_at: at,
        last_updated: at,
        transaction_id: ids.transaction,
        counterparty_id: common.counterparty_id,
        payment_amount: ((quantity * Math.round(Number(price) * 100)) / 100).toFixed(2),
        currency_id: common.currency_id,
        payment_type_id: sale ? 1 : 3,
        paid: false,
        payment_date: common.agreed_payment_date,
        company_ac_number: 12345678,
        counterparty_ac_number: 87654321
      }
      events.push(changeEvent("c", "payment", position(2), { after: payment }))
      unpaid.push(payment)
    }
    for (const event of events) {
      if (emitted++ >= count) return
      yield event
    }
  }
}

export interface SyntheticLake {
  readonly events: number
  readonly objects: number
  readonly bytes: number
  readonly uncompressedBytes: number
}

/** Writes `count` synthetic events as raw objects of about `objectBytes` (uncompressed), like the archiver would. */
export const writeSyntheticLake = async (
  lake: LakeStoreShape,
  options: { readonly count: number; readonly stream?: string; readonly objectBytes?: number; readonly seed?: number }
): Promise<SyntheticLake> => {
  const limit = options.objectBytes ?? 5 * 1024 * 1024
  let lines: Array<string> = []
  let size = 0
  let first: ChangeEvent | undefined
  const totals = { events: 0, objects: 0, bytes: 0, uncompressedBytes: 0 }
  const pending: Array<Promise<void>> = []
  const flush = async () => {
    if (lines.length === 0) return
    const body = encodeRawObject(lines)
    const arrival = new Date(Date.parse(first!.source.committedAt) + 1_000)
    const key = rawObjectKey(arrival, options.stream ?? "bench", String(totals.objects + 1).padStart(20, "0"), randomUUID())
    pending.push(Effect.runPromise(lake.putNew(key, body, "application/x-ndjson")))
    if (pending.length >= 8) await Promise.all(pending.splice(0))
    totals.objects++
    totals.bytes += body.byteLength
    totals.uncompressedBytes += size
    lines = []
    size = 0
    first = undefined
  }
  for (const event of syntheticEvents(options.count, options.seed)) {
    const line = JSON.stringify(event)
    first ??= event
    lines.push(line)
    size += line.length + 1
    totals.events++
    if (size >= limit) await flush()
  }
  await flush()
  await Promise.all(pending)
  return totals
}
