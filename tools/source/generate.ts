/**
 * Deterministic synthetic totesys: a database with the real one's shape, volumes and quirks
 * (../shared/totesys-schema.md §1), from a seed. Same seed and options → identical database
 * (see checksum.ts); another seed → another one.
 *
 * The history runs from `until - days` to `until`: the static dimensions and the first designs
 * are created at the start, then every weekday brings orders (Poisson, ~23 sales and ~9
 * purchases) at random minutes of 08:00–18:59 UTC, each with its transaction and payment in the
 * same instant, new designs (~0.85/weekday), the 07:55 job that marks the payments due that day
 * paid, and now and then an in-place edit of an order or a design that leaves `last_updated`
 * alone. The whole history is computed in memory (`buildTotesys`), then written with every
 * constraint on, in one transaction, by multi-row parameterised INSERTs; sequences are reset after.
 */
import type pg from "pg"
import { TOTESYS_TABLES, type TotesysTable } from "../../contracts/totesys.ts"
import { initSourceSchema, resetSequences, sourceSchemaExists } from "./totesys-db.ts"
import {
  businessInstant,
  dateAfter,
  drawDesign,
  drawPurchaseOrder,
  drawSalesOrder,
  drawStaticDims,
  itemCode,
  paymentFor,
  paymentJobInstant,
  type DesignRow,
  type PaymentRow,
  type PurchaseOrderRow,
  type References,
  type SalesOrderRow,
  type TotesysRows,
  type TransactionRow
} from "./model.ts"
import { Random, type Seed } from "./random.ts"
import { inTransaction, insertRows } from "./sql.ts"
import { DAY_MS, dayStart, formatDate, formatTimestamp, isWeekday, toInstant } from "./sim-time.ts"
import { FILE_LOCATIONS } from "./vocab.ts"

/** Default end of the generated history: the real November snapshot's afternoon (a Friday). */
export const DEFAULT_UNTIL = "2024-11-15 15:00:00.000"
export const DEFAULT_DAYS = 60

export interface GenerateOptions {
  readonly seed: Seed
  /** Calendar days of history before `until` (default 60: ~1,400 orders, ~4,500 rows). */
  readonly days?: number
  /** End of history, exclusive (Date, epoch ms, or naive UTC text; default DEFAULT_UNTIL). */
  readonly until?: Date | string | number
  /** Mean sales orders per weekday (default 23). */
  readonly salesPerDay?: number
  /** Mean purchase orders per weekday (default 9). */
  readonly purchasesPerDay?: number
  /** Mean new designs per weekday (default 0.85). */
  readonly designsPerDay?: number
  /** Designs created with the static dimensions (default 10). */
  readonly initialDesigns?: number
  /** Mean in-place edits (no `last_updated` change) per week for each of sales_order, purchase_order, design (default 1.6). */
  readonly editsPerWeek?: number
}

export interface WriteOptions {
  /** Drop and recreate the totesys schema if it exists (otherwise it must be empty or absent). */
  readonly replace?: boolean
  /** Rows per INSERT statement (default 1,000; capped by the parameter limit). */
  readonly batchSize?: number
  readonly onTable?: (report: { readonly table: TotesysTable; readonly rows: number }) => void
}

export interface GenerateReport {
  readonly seed: string
  readonly start: string
  readonly until: string
  readonly rows: Record<TotesysTable, number>
  readonly ms: number
}

type Event =
  | { readonly at: number; readonly seq: number; readonly kind: "design" | "sale" | "purchase" }
  | { readonly at: number; readonly seq: number; readonly kind: "edit"; readonly table: "sales_order" | "purchase_order" | "design" }

const KIND_ORDER = { design: 0, sale: 1, purchase: 2, edit: 3 } as const

/** The whole synthetic history, in memory (no database needed). */
export const buildTotesys = (options: GenerateOptions): TotesysRows & { readonly start: number; readonly until: number } => {
  const root = new Random(options.seed)
  const until = toInstant(options.until ?? DEFAULT_UNTIL)
  const days = options.days ?? DEFAULT_DAYS
  if (!(days > 0)) throw new RangeError(`days must be positive, got ${days}`)
  const start = until - Math.round(days * DAY_MS)
  const salesPerDay = options.salesPerDay ?? 23
  const purchasesPerDay = options.purchasesPerDay ?? 9
  const designsPerDay = options.designsPerDay ?? 0.85
  const editsPerDay = (options.editsPerWeek ?? 1.6) / 5

  const dims = drawStaticDims(root.fork("dims"), start)
  const flow = root.fork("flow")
  const values = root.fork("values")
  const edits = root.fork("edits")

  const design: Array<DesignRow> = []
  for (let i = 0; i < (options.initialDesigns ?? 10); i++) design.push({ design_id: i + 1, ...drawDesign(values, start) })

  // The calendar: what happens when.
  const events: Array<Event> = []
  const jobs = new Map<string, number>()
  let seq = 0
  for (let day = dayStart(start); day < until; day += DAY_MS) {
    if (!isWeekday(day)) continue
    const job = paymentJobInstant(flow, day)
    if (job > start && job < until) jobs.set(formatDate(day), job)
    const add = (kind: "design" | "sale" | "purchase", count: number) => {
      for (let i = 0; i < count; i++) {
        const at = businessInstant(flow, day)
        if (at > start && at < until) events.push({ at, seq: seq++, kind })
      }
    }
    add("design", flow.poisson(designsPerDay))
    add("sale", flow.poisson(salesPerDay))
    add("purchase", flow.poisson(purchasesPerDay))
    // Edits draw from their own stream: with or without them, the orders are the same.
    for (const table of ["sales_order", "purchase_order", "design"] as const) {
      for (let i = edits.poisson(editsPerDay); i > 0; i--) {
        const at = businessInstant(edits, day)
        if (at > start && at < until) events.push({ at, seq: seq++, kind: "edit", table })
      }
    }
  }
  events.sort((a, b) => a.at - b.at || KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || a.seq - b.seq)

  // Replay it.
  const sales_order: Array<SalesOrderRow> = []
  const purchase_order: Array<PurchaseOrderRow> = []
  const transaction: Array<TransactionRow> = []
  const payment: Array<PaymentRow> = []
  const designIds = design.map((d) => d.design_id)
  const refs: References = {
    addressIds: dims.address.map((r) => r.address_id),
    counterpartyIds: dims.counterparty.map((r) => r.counterparty_id),
    currencyIds: dims.currency.map((r) => r.currency_id),
    staffIds: dims.staff.map((r) => r.staff_id),
    designIds
  }
  for (const event of events) {
    switch (event.kind) {
      case "design": {
        const row = { design_id: design.length + 1, ...drawDesign(values, event.at) }
        design.push(row)
        designIds.push(row.design_id)
        break
      }
      case "sale": {
        const order = { sales_order_id: sales_order.length + 1, ...drawSalesOrder(values, refs, event.at) }
        sales_order.push(order)
        const id = transaction.length + 1
        transaction.push({ transaction_id: id, transaction_type: "SALE", sales_order_id: order.sales_order_id, purchase_order_id: null, created_at: event.at, last_updated: event.at })
        payment.push({ payment_id: id, transaction_id: id, ...paymentFor(values, order) })
        break
      }
      case "purchase": {
        const order = { purchase_order_id: purchase_order.length + 1, ...drawPurchaseOrder(values, refs, event.at) }
        purchase_order.push(order)
        const id = transaction.length + 1
        transaction.push({ transaction_id: id, transaction_type: "PURCHASE", sales_order_id: null, purchase_order_id: order.purchase_order_id, created_at: event.at, last_updated: event.at })
        payment.push({ payment_id: id, transaction_id: id, ...paymentFor(values, order) })
        break
      }
      case "edit":
        applyHistoricEdit(edits, event.table, event.at, { sales_order, purchase_order, design }, refs)
        break
    }
  }

  // The 07:55 job of each weekday marked the payments due that day (created before it) paid.
  for (const row of payment) {
    const job = jobs.get(row.payment_date)
    if (job !== undefined && row.created_at < job) {
      row.paid = true
      row.last_updated = job
    }
  }

  return { ...dims, design, sales_order, purchase_order, transaction, payment, start, until }
}

/** An in-place edit as the real database shows them: one column, `last_updated` untouched. */
const applyHistoricEdit = (
  rng: Random,
  table: "sales_order" | "purchase_order" | "design",
  at: number,
  rows: { sales_order: Array<SalesOrderRow>; purchase_order: Array<PurchaseOrderRow>; design: Array<DesignRow> },
  refs: References
) => {
  switch (table) {
    case "sales_order": {
      if (rows.sales_order.length === 0) return
      const row = rng.pick(rows.sales_order)
      // Weights as measured between the two snapshots: staff 13, design 15, delivery date 20, location 21.
      switch (rng.weightedIndex([13, 15, 20, 21])) {
        case 0:
          row.staff_id = rng.pickOther(refs.staffIds, row.staff_id)
          break
        case 1:
          row.design_id = rng.pickOther(refs.designIds, row.design_id)
          break
        case 2:
          row.agreed_delivery_date = otherDate(rng, at, row.agreed_delivery_date)
          break
        default:
          row.agreed_delivery_location_id = rng.pickOther(refs.addressIds, row.agreed_delivery_location_id)
      }
      return
    }
    case "purchase_order": {
      if (rows.purchase_order.length === 0) return
      const row = rng.pick(rows.purchase_order)
      // item_code 22, staff 12, delivery date 13, location 16.
      switch (rng.weightedIndex([22, 12, 13, 16])) {
        case 0:
          row.item_code = itemCode(rng)
          break
        case 1:
          row.staff_id = rng.pickOther(refs.staffIds, row.staff_id)
          break
        case 2:
          row.agreed_delivery_date = otherDate(rng, at, row.agreed_delivery_date)
          break
        default:
          row.agreed_delivery_location_id = rng.pickOther(refs.addressIds, row.agreed_delivery_location_id)
      }
      return
    }
    case "design": {
      const row = rng.pick(rows.design)
      row.file_location = rng.pickOther(FILE_LOCATIONS, row.file_location)
    }
  }
}

/** A new delivery date near the edit (−3…+10 days), never the current one. */
export const otherDate = (rng: Random, at: number, current: string): string => {
  const next = dateAfter(at, rng.int(-3, 10))
  return next === current ? dateAfter(at, 11) : next
}

/**
 * Generates synthetic totesys into the database `client` is connected to: creates the schema
 * when absent (`replace` drops an existing one first; an existing non-empty one is refused),
 * inserts the history with every constraint on in one transaction and resets the sequences.
 */
export const generateTotesys = async (client: pg.ClientBase, options: GenerateOptions & WriteOptions): Promise<GenerateReport> => {
  const began = Date.now()
  const data = buildTotesys(options)
  const rows = {} as Record<TotesysTable, number>
  await inTransaction(client, async () => {
    if (options.replace || !(await sourceSchemaExists(client))) {
      await initSourceSchema(client, { replace: options.replace ?? false })
    } else {
      const { rows: counts } = await client.query(
        `SELECT ${TOTESYS_TABLES.map((t) => `(SELECT count(*) FROM "${t}")`).join(" + ")} AS n`
      )
      if (Number(counts[0].n) > 0) throw new Error("the totesys schema already holds rows: generate into an empty database or pass replace")
    }
    for (const table of TOTESYS_TABLES) {
      rows[table] = await insertRows(client, table, data[table], options.batchSize)
      options.onTable?.({ table, rows: rows[table] })
    }
    await resetSequences(client)
  })
  return { seed: String(options.seed), start: formatTimestamp(data.start), until: formatTimestamp(data.until), rows, ms: Date.now() - began }
}
