/**
 * The synthetic history in memory (no database): determinism, volumes and distributions against
 * what the real snapshots show (../shared/totesys-schema.md §1).
 */
import { describe, expect, it } from "vitest"
import { buildTotesys } from "../../tools/source/generate.ts"
import { emailAddress, money } from "../../tools/source/model.ts"
import { DAY_MS, dayStart, formatDate, formatTimestamp, isWeekday, isoDayOfWeek, timeOfDay, toInstant } from "../../tools/source/sim-time.ts"

const year = buildTotesys({ seed: "unit", days: 365 })
const weekdays = (() => {
  let n = 0
  for (let day = dayStart(year.start) + DAY_MS; day < dayStart(year.until); day += DAY_MS) if (isWeekday(day)) n++
  return n
})()
const NON_ASCII = /[^\u0020-\u007e]/

const diff = <T extends { last_updated: number }>(a: ReadonlyArray<T>, b: ReadonlyArray<T>) => {
  expect(a).toHaveLength(b.length)
  const changed: Array<Array<string>> = []
  a.forEach((row, i) => {
    const other = b[i]!
    const columns = Object.keys(row).filter((k) => (row as Record<string, unknown>)[k] !== (other as Record<string, unknown>)[k])
    if (columns.length > 0) changed.push(columns)
    expect(row.last_updated).toBe(other.last_updated)
  })
  return changed
}

describe("buildTotesys", () => {
  it("is a pure function of its seed and options", () => {
    const a = buildTotesys({ seed: 1, days: 20 })
    expect(buildTotesys({ seed: 1, days: 20 })).toEqual(a)
    const b = buildTotesys({ seed: 2, days: 20 })
    expect(b.sales_order).not.toEqual(a.sales_order)
    expect(b.address).not.toEqual(a.address)
  })

  it("defaults to 60 days ending on the real snapshot's Friday afternoon", () => {
    const data = buildTotesys({ seed: 1 })
    expect(formatTimestamp(data.until)).toBe("2024-11-15 15:00:00.000")
    expect(formatTimestamp(data.start)).toBe("2024-09-16 15:00:00.000")
    expect(data.sales_order.length).toBeGreaterThan(800)
    expect(data.sales_order.length).toBeLessThan(1_200)
  })

  it("has the real static dimensions and their quirks", () => {
    expect(year.address).toHaveLength(30)
    expect(year.counterparty).toHaveLength(20)
    expect(year.currency.map((c) => [c.currency_id, c.currency_code])).toEqual([[1, "GBP"], [2, "USD"], [3, "EUR"]])
    expect(year.department).toHaveLength(8)
    expect(year.department[3]).toMatchObject({ department_id: 4, location: "Leds" })
    expect(year.staff).toHaveLength(20)
    expect(year.payment_type.map((p) => p.payment_type_name)).toEqual(["SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND"])
    expect(year.address.filter((a) => a.address_line_2 === null)).toHaveLength(20)
    expect(year.address.filter((a) => a.district === null)).toHaveLength(14)
    expect(year.staff.filter((s) => s.last_name.includes("'")).length).toBeGreaterThanOrEqual(1)
    expect(year.counterparty.filter((c) => c.counterparty_legal_name.includes(",")).length).toBe(9)
    expect(year.staff.some((s) => NON_ASCII.test(`${s.first_name}${s.last_name}`))).toBe(true)
    expect(year.counterparty.some((c) => NON_ASCII.test(c.counterparty_legal_name))).toBe(true)
    expect(year.counterparty.some((c) => NON_ASCII.test(`${c.commercial_contact}${c.delivery_contact}`))).toBe(true)
    expect(year.address.some((a) => NON_ASCII.test(a.city))).toBe(true)
    for (const s of year.staff) expect(s.email_address).toMatch(/^[a-z.'0-9-]+@terrifictotes\.com$/)
    for (const a of year.address) expect(a.phone).toMatch(/^\d{4} \d{6}$/)
    for (const c of year.counterparty) expect(c.legal_address_id).toBeGreaterThanOrEqual(1)
  })

  it("inserts orders on weekdays 08:00–18:59 at ~23 sales, ~9 purchases and ~0.85 designs a day", () => {
    for (const row of [...year.sales_order, ...year.purchase_order, ...year.design.filter((d) => d.created_at > year.start)]) {
      expect(isWeekday(row.created_at)).toBe(true)
      const hour = Math.floor(timeOfDay(row.created_at) / 3_600_000)
      expect(hour).toBeGreaterThanOrEqual(8)
      expect(hour).toBeLessThanOrEqual(18)
      expect(Number.isInteger(row.created_at)).toBe(true)
    }
    expect(year.sales_order.length / weekdays).toBeGreaterThan(21.5)
    expect(year.sales_order.length / weekdays).toBeLessThan(24.5)
    expect(year.purchase_order.length / weekdays).toBeGreaterThan(8)
    expect(year.purchase_order.length / weekdays).toBeLessThan(10)
    expect((year.design.length - 10) / weekdays).toBeGreaterThan(0.7)
    expect((year.design.length - 10) / weekdays).toBeLessThan(1)
    // Every weekday hour is used, roughly evenly.
    const perHour = new Map<number, number>()
    for (const row of year.sales_order) perHour.set(Math.floor(timeOfDay(row.created_at) / 3_600_000), (perHour.get(Math.floor(timeOfDay(row.created_at) / 3_600_000)) ?? 0) + 1)
    expect([...perHour.keys()].sort((a, b) => a - b)).toEqual([8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18])
    for (const n of perHour.values()) expect(n / year.sales_order.length).toBeGreaterThan(0.07)
    // Every weekday of the week is used.
    expect(new Set(year.sales_order.map((s) => isoDayOfWeek(s.created_at)))).toEqual(new Set([1, 2, 3, 4, 5]))
  })

  it("gives each order one transaction and one payment in the same instant, amount = quantity × price", () => {
    expect(year.transaction).toHaveLength(year.sales_order.length + year.purchase_order.length)
    expect(year.payment).toHaveLength(year.transaction.length)
    const sales = new Map(year.sales_order.map((s) => [s.sales_order_id, s]))
    const purchases = new Map(year.purchase_order.map((p) => [p.purchase_order_id, p]))
    const transactions = new Map(year.transaction.map((t) => [t.transaction_id, t]))
    const seenSales = new Set<number>()
    const seenPurchases = new Set<number>()
    for (const payment of year.payment) {
      const t = transactions.get(payment.transaction_id)!
      expect(t.created_at).toBe(payment.created_at)
      if (t.transaction_type === "SALE") {
        const order = sales.get(t.sales_order_id!)!
        seenSales.add(order.sales_order_id)
        expect(t.purchase_order_id).toBeNull()
        expect(payment.payment_type_id).toBe(1)
        expect(payment.payment_amount).toBe(order.units_sold * order.unit_price)
        expect(payment).toMatchObject({ counterparty_id: order.counterparty_id, currency_id: order.currency_id, payment_date: order.agreed_payment_date, created_at: order.created_at })
      } else {
        const order = purchases.get(t.purchase_order_id!)!
        seenPurchases.add(order.purchase_order_id)
        expect(t.sales_order_id).toBeNull()
        expect(payment.payment_type_id).toBe(3)
        expect(payment.payment_amount).toBe(order.item_quantity * order.item_unit_price)
        expect(payment).toMatchObject({ counterparty_id: order.counterparty_id, currency_id: order.currency_id, payment_date: order.agreed_payment_date, created_at: order.created_at })
      }
      expect(payment.payment_amount).toBeLessThan(99_999_999_99) // numeric(10,2)
    }
    expect(seenSales.size).toBe(year.sales_order.length)
    expect(seenPurchases.size).toBe(year.purchase_order.length)
  })

  it("draws quantities, prices, codes and dates like the real orders", () => {
    for (const s of year.sales_order) {
      expect(s.units_sold).toBeGreaterThanOrEqual(1_000)
      expect(s.units_sold).toBeLessThanOrEqual(100_000)
      expect(s.unit_price).toBeGreaterThanOrEqual(200)
      expect(s.unit_price).toBeLessThanOrEqual(400)
      expect(s.agreed_payment_date).toMatch(/^\d{4}-\d{2}-\d{2}$/)
      const payOffset = (toInstant(s.agreed_payment_date) - dayStart(s.created_at)) / DAY_MS
      expect(payOffset).toBeGreaterThanOrEqual(0)
      expect(payOffset).toBeLessThanOrEqual(6)
    }
    for (const p of year.purchase_order) {
      expect(p.item_code).toMatch(/^[A-Z0-9]{7}$/)
      expect(p.item_quantity).toBeGreaterThanOrEqual(1)
      expect(p.item_quantity).toBeLessThanOrEqual(999)
      expect(p.item_unit_price).toBeGreaterThanOrEqual(100)
      expect(p.item_unit_price).toBeLessThanOrEqual(99_999)
    }
    const offsets = year.sales_order.map((s) => (toInstant(s.agreed_delivery_date) - dayStart(s.created_at)) / DAY_MS)
    const inRange = offsets.filter((o) => o >= 0 && o <= 7)
    expect(inRange.length / offsets.length).toBeGreaterThan(0.99) // the rest are in-place edits
    const ends = inRange.filter((o) => o === 0 || o === 7).length / inRange.length
    expect(ends).toBeGreaterThan(0.1) // half-weight ends: 1/7 of the mass
    expect(ends).toBeLessThan(0.19)
    for (const d of year.design) expect(d.file_name).toMatch(new RegExp(`^${d.design_name.toLowerCase()}-\\d{8}-[a-z0-9]{4}\\.json$`))
    expect(new Set(year.sales_order.map((s) => s.currency_id))).toEqual(new Set([1, 2, 3]))
    expect(new Set(year.sales_order.map((s) => s.staff_id)).size).toBe(20)
  })

  it("has the 07:55 job mark payments due on a weekday paid, and no others", () => {
    let paid = 0
    for (const p of year.payment) {
      const due = toInstant(p.payment_date)
      const job = due + 7 * 3_600_000 + 55 * 60_000
      const shouldBePaid = isWeekday(due) && p.created_at < job && job < year.until
      expect(p.paid).toBe(shouldBePaid)
      if (p.paid) {
        paid++
        expect(formatDate(p.last_updated)).toBe(p.payment_date)
        expect(formatTimestamp(p.last_updated).slice(11)).toMatch(/^07:55:1[12]\.\d{3}$/)
      } else {
        expect(p.last_updated).toBe(p.created_at)
      }
    }
    // About 60% of payments are paid in the real data (weekend due dates and same-day ones never are).
    expect(paid / year.payment.length).toBeGreaterThan(0.5)
    expect(paid / year.payment.length).toBeLessThan(0.7)
    // One job instant per day.
    const jobs = new Map<string, Set<number>>()
    for (const p of year.payment.filter((x) => x.paid)) jobs.set(p.payment_date, (jobs.get(p.payment_date) ?? new Set()).add(p.last_updated))
    for (const instants of jobs.values()) expect(instants.size).toBe(1)
  })

  it("applies in-place edits that leave last_updated alone, ~1.6 a week a table", () => {
    const edited = buildTotesys({ seed: "edits", days: 182 })
    const plain = buildTotesys({ seed: "edits", days: 182, editsPerWeek: 0 })
    const sales = diff(edited.sales_order, plain.sales_order)
    const purchases = diff(edited.purchase_order, plain.purchase_order)
    const designs = diff(edited.design, plain.design)
    expect(diff(edited.payment, plain.payment)).toEqual([])
    for (const columns of sales) for (const c of columns) expect(["staff_id", "design_id", "agreed_delivery_date", "agreed_delivery_location_id"]).toContain(c)
    for (const columns of purchases) for (const c of columns) expect(["item_code", "staff_id", "agreed_delivery_date", "agreed_delivery_location_id"]).toContain(c)
    for (const columns of designs) expect(columns).toEqual(["file_location"])
    for (const changed of [sales, purchases, designs]) {
      expect(changed.length).toBeGreaterThan(20) // 26 weeks × 1.6 ≈ 42 (a row edited twice counts once)
      expect(changed.length).toBeLessThan(65)
    }
  })

  it("formats money exactly and folds accents out of e-mail addresses", () => {
    expect(money(0)).toBe("0.00")
    expect(money(5)).toBe("0.05")
    expect(money(99_999_999_99)).toBe("99999999.99")
    expect(money(-123)).toBe("-1.23")
    expect(emailAddress("Zoë", "Søndergaard")).toBe("zoe.sondergaard@terrifictotes.com")
    expect(emailAddress("Irving", "O'Keefe")).toBe("irving.o'keefe@terrifictotes.com")
    expect(emailAddress("Ana", "Ó Súilleabháin")).toBe("ana.osuilleabhain@terrifictotes.com")
  })
})
