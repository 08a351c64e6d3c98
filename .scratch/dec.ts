import { Effect } from "effect"
import { decodeStreamRecord } from "/work/main/contracts/change-event.ts"
import { changeEvent } from "/work/main/test/fixtures/events.ts"
const lines: string[] = []
for (let i = 0; i < 100000; i++) {
  lines.push(JSON.stringify(changeEvent("c", "sales_order", { commitLsn: `0/${(0x3000000 + i * 256).toString(16).toUpperCase()}`, index: 0, committedAt: "2024-02-23T12:00:00.123456Z" }, { after: { sales_order_id: i + 1, created_at: "2024-02-23T11:11:10.072", last_updated: "2024-02-23T11:11:10.072", design_id: 3, staff_id: 4, counterparty_id: 5, units_sold: 100, unit_price: "3.45", currency_id: 1, agreed_delivery_date: "2024-03-01", agreed_payment_date: "2024-03-05", agreed_delivery_location_id: 7 } })))
}
let t = performance.now()
for (const l of lines) JSON.parse(l)
console.log("parse", performance.now() - t)
t = performance.now()
for (const l of lines) Effect.runSync(decodeStreamRecord(l))
console.log("decode", performance.now() - t)
