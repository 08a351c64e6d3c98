/**
 * Workload simulator: replays the real totesys behaviour against a live source database at any
 * speed, plus what the real database has not done yet but may (deletes, multi-row and
 * multi-table transactions, updates of dimension rows).
 *
 * Time: every row it writes carries a *simulated* instant. By default the simulated clock starts
 * just after the newest timestamp in the database and advances by a seeded, exponentially
 * distributed step per transaction (mean `msPerTransaction`, by default `speedup` simulated
 * seconds per real second at `rate`), skipping nights and weekends: inserts and edits happen
 * only Monday–Friday 08:00–18:59 UTC, and each weekday 07:55 the clock passes runs the payment
 * job (paid = true, last_updated = 07:55:11.xxx on the payments due that day). Wall-clock pacing
 * (`rate`) decides only *when* transactions are sent, never *what* they write, so a seeded run
 * on the same starting database writes the same rows at any rate.
 *
 * Every write is an ordinary parameterised SQL statement inside BEGIN … COMMIT. The report says
 * exactly what was committed: counts per table and operation and per kind, and (with `log`)
 * every changed row as {seq, txid, kind, table, op, key, at, columns} — including the updates the
 * database makes by itself (`transaction.sales_order_id` SET NULL when an order alone is deleted).
 */
import type pg from "pg"
import { PRIMARY_KEYS, TOTESYS_TABLES, type TotesysTable } from "../../contracts/totesys.ts"
import {
  contactName,
  drawDesign,
  drawPurchaseOrder,
  drawSalesOrder,
  emailAddress,
  firstName,
  itemCode,
  lastName,
  paymentFor,
  paymentJobInstant,
  phoneNumber,
  secondLine,
  sqlValues,
  streetLine,
  type References
} from "./model.ts"
import { otherDate } from "./generate.ts"
import { Random, type Seed } from "./random.ts"
import { insertStatement } from "./sql.ts"
import { classifyConnectionError } from "../../services/shared/database-connection.ts"
import { formatDate, formatTimestamp, inBusinessHours, nextBusinessOpen, paymentJobDays, toInstant } from "./sim-time.ts"
import { DEPARTMENT_LOCATIONS, EMAIL_DOMAIN, FILE_LOCATIONS } from "./vocab.ts"

/** What one simulated transaction does. */
export const MIX_KINDS = [
  /** sales_order + transaction + payment (the real application's sale) */
  "sale",
  /** purchase_order + transaction + payment */
  "purchase",
  /** a new design */
  "design",
  /** 2–5 orders, sales and purchases mixed, as multi-row INSERTs into 4 tables in one transaction */
  "order_batch",
  /** a new design and a sale of it in one transaction */
  "design_and_sale",
  /** in place, last_updated untouched: staff_id | design_id | agreed_delivery_date | agreed_delivery_location_id */
  "edit_sales_order",
  /** in place, last_updated untouched: item_code | staff_id | agreed_delivery_date | agreed_delivery_location_id */
  "edit_purchase_order",
  /** in place, last_updated untouched: file_location */
  "edit_design",
  /** delete an order's payment, its transaction and the order, in that order, in one transaction */
  "delete_order",
  /** delete an order alone: its transaction stays and the FK sets its order id NULL */
  "delete_order_only",
  /** address_line_1 | address_line_2 | phone, with last_updated */
  "update_address",
  /** location | manager, with last_updated */
  "update_department",
  /** commercial_contact | delivery_contact, with last_updated */
  "update_counterparty",
  /** email_address, with last_updated */
  "update_staff"
] as const

export type MixKind = (typeof MIX_KINDS)[number]
/** Every kind of committed transaction, the scheduled payment job included. */
export type SimKind = MixKind | "payment_job"
export type Mix = Partial<Record<MixKind, number>>

/** Only what the real database does: per weekday ~23 sales, ~9 purchases, ~0.85 designs, ~0.3 in-place edits per table. */
export const REAL_MIX: Mix = { sale: 23, purchase: 9, design: 0.85, edit_sales_order: 0.32, edit_purchase_order: 0.32, edit_design: 0.32 }

/** The real behaviour plus a little of everything it may do. */
export const DEFAULT_MIX: Mix = {
  ...REAL_MIX,
  order_batch: 1,
  design_and_sale: 0.3,
  delete_order: 0.6,
  delete_order_only: 0.2,
  update_address: 0.3,
  update_department: 0.2,
  update_counterparty: 0.3,
  update_staff: 0.2
}

export type Operation = "insert" | "update" | "delete"

export interface ChangeLogEntry {
  /** Commit order of the transaction within this run (1, 2, …). */
  readonly seq: number
  /** The transaction's id, `pg_current_xact_id()` (xid8, as text). */
  readonly txid: string
  /** The 32-bit xid (txid mod 2^32): what logical decoding (pgoutput's BEGIN) reports. */
  readonly xid: number
  readonly kind: SimKind
  readonly table: TotesysTable
  readonly op: Operation
  /** Primary-key value of the row. */
  readonly key: number
  /** Simulated instant of the transaction ('YYYY-MM-DD HH:MM:SS.mmm', the rows' created_at/last_updated). */
  readonly at: string
  /** For updates: the columns set. */
  readonly columns?: ReadonlyArray<string>
}

export interface CommittedTransaction {
  readonly seq: number
  readonly txid: string
  readonly xid: number
  readonly kind: SimKind
  readonly at: string
  readonly changes: ReadonlyArray<ChangeLogEntry>
}

export interface SimulatedClock {
  /** Simulated instant of the first transaction (default: 1 minute after the newest timestamp in the database). */
  readonly start?: Date | string | number
  /** Mean simulated milliseconds between transactions (default: 1000 × speedup / rate, or 6 minutes when unpaced). */
  readonly msPerTransaction?: number
  /** Simulated time per real time at `rate` (default 3,600: a simulated hour per second). */
  readonly speedup?: number
  /** Keep the real calendar: writes only Mon–Fri 08:00–18:59 UTC (default true). */
  readonly businessHours?: boolean
}

export interface SimulateOptions {
  readonly seed: Seed
  /** Transactions per real second (default 10; Infinity or 0: as fast as possible). */
  readonly rate?: number
  /** Stop after this much real time. */
  readonly durationMs?: number
  /** Stop after this many committed transactions (payment jobs included). */
  readonly maxTransactions?: number
  /** Stop once this many rows have changed (the last transaction may go past it). */
  readonly maxChanges?: number
  /** Weights per kind; kinds not named have weight 0 (default DEFAULT_MIX). */
  readonly mix?: Mix
  /** Simulated clock (default) or "wall": rows carry the real current time, no calendar. */
  readonly clock?: SimulatedClock | "wall"
  /** Run the 07:55 payment job on every weekday the clock passes (default true). */
  readonly paymentJob?: boolean
  readonly signal?: AbortSignal
  /** Keep every committed change in `report.log`. */
  readonly log?: boolean
  readonly onCommit?: (transaction: CommittedTransaction) => void
}

export type OperationCounts = { insert: number; update: number; delete: number }

export interface SimulationReport {
  readonly seed: string
  readonly transactions: number
  readonly rowChanges: number
  readonly tables: Record<TotesysTable, OperationCounts>
  /** Committed transactions per kind. */
  readonly kinds: Partial<Record<SimKind, number>>
  /** Draws that found nothing to act on (e.g. a delete with no orders left); nothing was written. */
  readonly skipped: Partial<Record<MixKind, number>>
  /** Simulated time span written: first and last transaction instants. */
  readonly clock: { readonly start: string | null; readonly end: string | null }
  readonly wallMs: number
  readonly stoppedBy: "maxTransactions" | "maxChanges" | "duration" | "signal" | "exhausted" | "connection-lost"
  /** With stoppedBy "connection-lost": why (the driver's message). */
  readonly error?: string
  /** The connection was lost while a COMMIT was under way: that transaction (not counted) may have been committed. */
  readonly lastCommitInDoubt?: boolean
  readonly log?: ReadonlyArray<ChangeLogEntry>
}

interface Change {
  readonly table: TotesysTable
  readonly op: Operation
  readonly key: number
  readonly columns?: ReadonlyArray<string>
}

interface Refs extends References {
  readonly addressIds: Array<number>
  readonly counterpartyIds: Array<number>
  readonly currencyIds: Array<number>
  readonly staffIds: Array<number>
  readonly designIds: Array<number>
  readonly departmentIds: Array<number>
}

interface Context {
  readonly client: pg.ClientBase
  readonly rng: Random
  readonly refs: Refs
  readonly at: number
  /** Design ids inserted by this transaction, added to refs on commit. */
  readonly newDesigns: Array<number>
}

const ids = async (client: pg.ClientBase, table: TotesysTable): Promise<Array<number>> => {
  const { rows } = await client.query(`SELECT "${PRIMARY_KEYS[table]}" AS id FROM "${table}" ORDER BY 1`)
  return rows.map((r) => Number(r.id))
}

/** Newest created_at/last_updated anywhere in totesys, epoch ms (null when empty). */
export const newestTimestamp = async (client: pg.ClientBase): Promise<number | null> => {
  const parts = TOTESYS_TABLES.map((t) => `SELECT max(greatest(created_at, last_updated)) AS x FROM "${t}"`).join(" UNION ALL ")
  const { rows } = await client.query(`SELECT (extract(epoch FROM max(x)) * 1000)::float8 AS ms FROM (${parts}) s`)
  return rows[0].ms === null ? null : Math.round(Number(rows[0].ms))
}

const nextIds = async (client: pg.ClientBase, table: TotesysTable, count: number): Promise<Array<number>> => {
  if (count === 0) return []
  const { rows } = await client.query("SELECT nextval(pg_get_serial_sequence($1, $2)) AS id FROM generate_series(1, $3::int)", [
    `public."${table}"`,
    PRIMARY_KEYS[table],
    count
  ])
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b)
}

const insert = async (client: pg.ClientBase, table: TotesysTable, rows: ReadonlyArray<object>): Promise<Array<Change>> => {
  if (rows.length === 0) return []
  await client.query(insertStatement(table, rows.length), rows.flatMap((row) => sqlValues(table, row)))
  const key = PRIMARY_KEYS[table]
  return rows.map((row) => ({ table, op: "insert" as const, key: (row as Record<string, number>)[key]! }))
}

/** A uniformly drawn existing row (by key range, then the next existing key), locked. */
const pickRow = async (ctx: Context, table: TotesysTable, columns: ReadonlyArray<string>): Promise<Record<string, unknown> | null> => {
  const key = PRIMARY_KEYS[table]
  const { rows: range } = await ctx.client.query(`SELECT min("${key}") AS lo, max("${key}") AS hi FROM "${table}"`)
  if (range[0].lo === null) return null
  const target = ctx.rng.int(Number(range[0].lo), Number(range[0].hi))
  const list = [key, ...columns].map((c) => `"${c}"`).join(", ")
  const { rows } = await ctx.client.query(`SELECT ${list} FROM "${table}" WHERE "${key}" >= $1 ORDER BY "${key}" LIMIT 1 FOR UPDATE`, [target])
  return rows[0] ?? null
}

const updateColumns = async (ctx: Context, table: TotesysTable, key: number, set: Record<string, unknown>): Promise<Change> => {
  const columns = Object.keys(set)
  const assignments = columns.map((c, i) => `"${c}" = $${i + 2}`).join(", ")
  await ctx.client.query(`UPDATE "${table}" SET ${assignments} WHERE "${PRIMARY_KEYS[table]}" = $1`, [key, ...columns.map((c) => set[c])])
  return { table, op: "update", key, columns }
}

// ---------------------------------------------------------------------------------------------
// The kinds

/** Inserts orders (true = sale) with their transactions and payments, parents first, as multi-row INSERTs. */
const insertOrders = async (ctx: Context, kinds: ReadonlyArray<boolean>, designId?: number): Promise<Array<Change>> => {
  const refs: References = designId === undefined ? ctx.refs : { ...ctx.refs, designIds: [designId] }
  const drawn = kinds.map((sale) => (sale ? { sale: true as const, order: drawSalesOrder(ctx.rng, refs, ctx.at) } : { sale: false as const, order: drawPurchaseOrder(ctx.rng, refs, ctx.at) }))
  const salesIds = await nextIds(ctx.client, "sales_order", kinds.filter((k) => k).length)
  const purchaseIds = await nextIds(ctx.client, "purchase_order", kinds.filter((k) => !k).length)
  const transactionIds = await nextIds(ctx.client, "transaction", kinds.length)
  const paymentIds = await nextIds(ctx.client, "payment", kinds.length)
  const salesRows: Array<object> = []
  const purchaseRows: Array<object> = []
  const transactionRows: Array<object> = []
  const paymentRows: Array<object> = []
  let s = 0
  let p = 0
  drawn.forEach((d, i) => {
    const transaction_id = transactionIds[i]!
    if (d.sale) {
      const sales_order_id = salesIds[s++]!
      salesRows.push({ sales_order_id, ...d.order })
      transactionRows.push({ transaction_id, transaction_type: "SALE", sales_order_id, purchase_order_id: null, created_at: ctx.at, last_updated: ctx.at })
    } else {
      const purchase_order_id = purchaseIds[p++]!
      purchaseRows.push({ purchase_order_id, ...d.order })
      transactionRows.push({ transaction_id, transaction_type: "PURCHASE", sales_order_id: null, purchase_order_id, created_at: ctx.at, last_updated: ctx.at })
    }
    paymentRows.push({ payment_id: paymentIds[i]!, transaction_id, ...paymentFor(ctx.rng, d.order) })
  })
  return [
    ...(await insert(ctx.client, "sales_order", salesRows)),
    ...(await insert(ctx.client, "purchase_order", purchaseRows)),
    ...(await insert(ctx.client, "transaction", transactionRows)),
    ...(await insert(ctx.client, "payment", paymentRows))
  ]
}

const insertDesign = async (ctx: Context): Promise<{ id: number; changes: Array<Change> }> => {
  const [id] = await nextIds(ctx.client, "design", 1)
  const changes = await insert(ctx.client, "design", [{ design_id: id!, ...drawDesign(ctx.rng, ctx.at) }])
  ctx.newDesigns.push(id!)
  return { id: id!, changes }
}

const isSale = (rng: Random) => rng.chance(23 / 32)

const KINDS: Record<MixKind, (ctx: Context) => Promise<Array<Change> | null>> = {
  sale: async (ctx) => (ctx.refs.designIds.length === 0 ? null : insertOrders(ctx, [true])),
  purchase: (ctx) => insertOrders(ctx, [false]),
  design: async (ctx) => (await insertDesign(ctx)).changes,
  order_batch: async (ctx) => {
    const count = ctx.rng.int(2, 5)
    const kinds = Array.from({ length: count }, () => ctx.refs.designIds.length > 0 && isSale(ctx.rng))
    return insertOrders(ctx, kinds)
  },
  design_and_sale: async (ctx) => {
    const design = await insertDesign(ctx)
    return [...design.changes, ...(await insertOrders(ctx, [true], design.id))]
  },
  edit_sales_order: async (ctx) => {
    const row = await pickRow(ctx, "sales_order", ["staff_id", "design_id", "agreed_delivery_date", "agreed_delivery_location_id"])
    if (!row) return null
    const key = Number(row.sales_order_id)
    // Weights measured between the real snapshots: staff 13, design 15, delivery date 20, location 21.
    switch (ctx.rng.weightedIndex([13, 15, 20, 21])) {
      case 0:
        return [await updateColumns(ctx, "sales_order", key, { staff_id: ctx.rng.pickOther(ctx.refs.staffIds, Number(row.staff_id)) })]
      case 1:
        return [await updateColumns(ctx, "sales_order", key, { design_id: ctx.rng.pickOther(ctx.refs.designIds, Number(row.design_id)) })]
      case 2:
        return [await updateColumns(ctx, "sales_order", key, { agreed_delivery_date: otherDate(ctx.rng, ctx.at, String(row.agreed_delivery_date)) })]
      default:
        return [
          await updateColumns(ctx, "sales_order", key, {
            agreed_delivery_location_id: ctx.rng.pickOther(ctx.refs.addressIds, Number(row.agreed_delivery_location_id))
          })
        ]
    }
  },
  edit_purchase_order: async (ctx) => {
    const row = await pickRow(ctx, "purchase_order", ["item_code", "staff_id", "agreed_delivery_date", "agreed_delivery_location_id"])
    if (!row) return null
    const key = Number(row.purchase_order_id)
    // item_code 22, staff 12, delivery date 13, location 16.
    switch (ctx.rng.weightedIndex([22, 12, 13, 16])) {
      case 0: {
        let code = itemCode(ctx.rng)
        while (code === row.item_code) code = itemCode(ctx.rng)
        return [await updateColumns(ctx, "purchase_order", key, { item_code: code })]
      }
      case 1:
        return [await updateColumns(ctx, "purchase_order", key, { staff_id: ctx.rng.pickOther(ctx.refs.staffIds, Number(row.staff_id)) })]
      case 2:
        return [await updateColumns(ctx, "purchase_order", key, { agreed_delivery_date: otherDate(ctx.rng, ctx.at, String(row.agreed_delivery_date)) })]
      default:
        return [
          await updateColumns(ctx, "purchase_order", key, {
            agreed_delivery_location_id: ctx.rng.pickOther(ctx.refs.addressIds, Number(row.agreed_delivery_location_id))
          })
        ]
    }
  },
  edit_design: async (ctx) => {
    const row = await pickRow(ctx, "design", ["file_location"])
    if (!row) return null
    return [await updateColumns(ctx, "design", Number(row.design_id), { file_location: ctx.rng.pickOther(FILE_LOCATIONS, String(row.file_location)) })]
  },
  delete_order: async (ctx) => {
    const sale = isSale(ctx.rng)
    for (const table of sale ? (["sales_order", "purchase_order"] as const) : (["purchase_order", "sales_order"] as const)) {
      const row = await pickRow(ctx, table, [])
      if (!row) continue
      const key = Number(row[PRIMARY_KEYS[table]])
      const column = PRIMARY_KEYS[table]
      const payments = await ctx.client.query(
        `DELETE FROM payment WHERE transaction_id IN (SELECT transaction_id FROM "transaction" WHERE "${column}" = $1) RETURNING payment_id`,
        [key]
      )
      const transactions = await ctx.client.query(`DELETE FROM "transaction" WHERE "${column}" = $1 RETURNING transaction_id`, [key])
      await ctx.client.query(`DELETE FROM "${table}" WHERE "${column}" = $1`, [key])
      return [
        ...payments.rows.map((r) => Number(r.payment_id)).sort((a, b) => a - b).map((id): Change => ({ table: "payment", op: "delete", key: id })),
        ...transactions.rows.map((r) => Number(r.transaction_id)).sort((a, b) => a - b).map((id): Change => ({ table: "transaction", op: "delete", key: id })),
        { table, op: "delete", key }
      ]
    }
    return null
  },
  delete_order_only: async (ctx) => {
    const sale = isSale(ctx.rng)
    for (const table of sale ? (["sales_order", "purchase_order"] as const) : (["purchase_order", "sales_order"] as const)) {
      const row = await pickRow(ctx, table, [])
      if (!row) continue
      const column = PRIMARY_KEYS[table]
      const key = Number(row[column])
      const { rows } = await ctx.client.query(`SELECT transaction_id FROM "transaction" WHERE "${column}" = $1 ORDER BY 1 FOR UPDATE`, [key])
      await ctx.client.query(`DELETE FROM "${table}" WHERE "${column}" = $1`, [key])
      // ON DELETE SET NULL: the database itself updates the referencing transactions.
      return [{ table, op: "delete", key }, ...rows.map((r): Change => ({ table: "transaction", op: "update", key: Number(r.transaction_id), columns: [column] }))]
    }
    return null
  },
  update_address: async (ctx) => {
    const id = ctx.rng.pick(ctx.refs.addressIds)
    const row = await currentRow(ctx, "address", id, ["address_line_1", "address_line_2", "phone"])
    if (!row) return null
    const column = (["phone", "address_line_1", "address_line_2"] as const)[ctx.rng.weightedIndex([4, 3, 3])]!
    const draw =
      column === "phone"
        ? () => phoneNumber(ctx.rng)
        : column === "address_line_1"
          ? () => streetLine(ctx.rng)
          : () => (row.address_line_2 !== null && ctx.rng.chance(0.5) ? null : secondLine(ctx.rng))
    return [await updateColumns(ctx, "address", id, { [column]: differentValue(row[column], draw), last_updated: formatTimestamp(ctx.at) })]
  },
  update_department: async (ctx) => {
    const id = ctx.rng.pick(ctx.refs.departmentIds)
    const row = await currentRow(ctx, "department", id, ["location", "manager"])
    if (!row) return null
    const set = ctx.rng.chance(0.5)
      ? { location: ctx.rng.pickOther(DEPARTMENT_LOCATIONS, row.location as string) }
      : { manager: differentValue(row.manager, () => `${firstName(ctx.rng)} ${lastName(ctx.rng)}`) }
    return [await updateColumns(ctx, "department", id, { ...set, last_updated: formatTimestamp(ctx.at) })]
  },
  update_counterparty: async (ctx) => {
    const id = ctx.rng.pick(ctx.refs.counterpartyIds)
    const row = await currentRow(ctx, "counterparty", id, ["commercial_contact", "delivery_contact"])
    if (!row) return null
    const column = ctx.rng.chance(0.5) ? "commercial_contact" : "delivery_contact"
    return [await updateColumns(ctx, "counterparty", id, { [column]: differentValue(row[column], () => contactName(ctx.rng)), last_updated: formatTimestamp(ctx.at) })]
  },
  update_staff: async (ctx) => {
    const id = ctx.rng.pick(ctx.refs.staffIds)
    const row = await currentRow(ctx, "staff", id, ["first_name", "last_name", "email_address"])
    if (!row) return null
    const first = row.first_name as string
    const last = row.last_name as string
    const draw = () =>
      ctx.rng.chance(0.5) ? emailAddress(first, `${last}${ctx.rng.int(1, 99)}`) : emailAddress(first, last, ctx.rng.pick(["terrifictotes.co.uk", EMAIL_DOMAIN]))
    return [await updateColumns(ctx, "staff", id, { email_address: differentValue(row.email_address, draw), last_updated: formatTimestamp(ctx.at) })]
  }
}

/** The row's current values, locked (null when it is gone). */
const currentRow = async (ctx: Context, table: TotesysTable, key: number, columns: ReadonlyArray<string>): Promise<Record<string, unknown> | null> => {
  const { rows } = await ctx.client.query(`SELECT ${columns.map((c) => `"${c}"`).join(", ")} FROM "${table}" WHERE "${PRIMARY_KEYS[table]}" = $1 FOR UPDATE`, [key])
  return rows[0] ?? null
}

/** A drawn value that differs from `current` (an update always changes the column). */
const differentValue = <A>(current: unknown, draw: () => A): A => {
  for (let attempt = 0; attempt < 100; attempt++) {
    const value = draw()
    if (value !== current) return value
  }
  throw new Error(`could not draw a value different from ${String(current)}`)
}

/** The 07:55 job of `day`: payments due that day, created before the job, become paid. */
const paymentJob = async (ctx: Context, day: number): Promise<Array<Change>> => {
  const { rows } = await ctx.client.query(
    "UPDATE payment SET paid = true, last_updated = $1 WHERE payment_date = $2 AND NOT paid AND created_at < $1 RETURNING payment_id",
    [formatTimestamp(ctx.at), formatDate(day)]
  )
  return rows
    .map((r) => Number(r.payment_id))
    .sort((a, b) => a - b)
    .map((key) => ({ table: "payment", op: "update", key, columns: ["paid", "last_updated"] }))
}

// ---------------------------------------------------------------------------------------------

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener("abort", done)
      resolve()
    }
    signal?.addEventListener("abort", done, { once: true })
  })

/** The connection is gone (the server stopped, the network failed): no statement on this client can succeed. */
const isConnectionLost = (error: unknown) =>
  classifyConnectionError(error) !== undefined || /Connection terminated|not queryable|terminating connection/i.test(String((error as Error)?.message ?? ""))

const emptyCounts = (): Record<TotesysTable, OperationCounts> =>
  Object.fromEntries(TOTESYS_TABLES.map((t) => [t, { insert: 0, update: 0, delete: 0 }])) as Record<TotesysTable, OperationCounts>

/**
 * Runs the workload on the database `client` is connected to (which must hold totesys data:
 * generated or loaded) until a stop condition (duration, transactions, changes, abort signal;
 * none given: until aborted) and reports what it committed. One transaction at a time, on this
 * client. A failing statement rolls its transaction back and rejects; a lost connection stops the
 * run and the report says so (`stoppedBy: "connection-lost"`), with everything committed before.
 */
export const simulate = async (client: pg.ClientBase, options: SimulateOptions): Promise<SimulationReport> => {
  const began = Date.now()
  const root = new Random(options.seed)
  const kindRng = root.fork("kinds")
  const clockRng = root.fork("clock")
  const valueRng = root.fork("values")
  const mixEntries = MIX_KINDS.map((kind) => [kind, (options.mix ?? DEFAULT_MIX)[kind] ?? 0] as const).filter(([, w]) => w > 0)
  if (mixEntries.length === 0) throw new RangeError("the mix gives every kind weight 0")
  const weights = mixEntries.map(([, w]) => w)
  const rate = options.rate ?? 10
  const paced = Number.isFinite(rate) && rate > 0
  const runJobs = options.paymentJob ?? true

  const refs: Refs = {
    addressIds: await ids(client, "address"),
    counterpartyIds: await ids(client, "counterparty"),
    currencyIds: await ids(client, "currency"),
    staffIds: await ids(client, "staff"),
    designIds: await ids(client, "design"),
    departmentIds: await ids(client, "department")
  }
  for (const [name, list] of Object.entries(refs)) {
    if (name !== "designIds" && list.length === 0) throw new Error(`the source database has no ${name.replace(/Ids$/, "")} rows: generate or load totesys first`)
  }

  // The clock.
  const wall = options.clock === "wall"
  const sim = options.clock === "wall" ? {} : (options.clock ?? {})
  const businessHours = !wall && (sim.businessHours ?? true)
  const meanStep = sim.msPerTransaction ?? (paced ? (1000 * (sim.speedup ?? 3600)) / rate : 360_000)
  let previous: number
  if (wall) previous = Date.now() - 1
  else if (sim.start !== undefined) previous = toInstant(sim.start) - 1
  else previous = ((await newestTimestamp(client)) ?? Date.now()) + 60_000 - 1
  let firstAdvance = !wall
  const advance = (): number => {
    if (wall) return Math.max(Date.now(), previous + 1)
    let next = firstAdvance ? previous + 1 : previous + Math.max(1, Math.round(clockRng.exponential(meanStep)))
    firstAdvance = false
    if (businessHours) while (!inBusinessHours(next)) next = nextBusinessOpen(next) + Math.round(clockRng.exponential(Math.min(meanStep, 600_000)))
    return next
  }

  // The report.
  const tables = emptyCounts()
  const kinds: Partial<Record<SimKind, number>> = {}
  const skipped: Partial<Record<MixKind, number>> = {}
  const log: Array<ChangeLogEntry> = []
  let transactions = 0
  let rowChanges = 0
  let firstAt: number | null = null
  let lastAt: number | null = null
  let stoppedBy: SimulationReport["stoppedBy"] | null
  // A connection lost while idle arrives as the client's 'error' event: stop, never crash.
  let lost: Error | undefined
  let commitInFlight = false
  let lastCommitInDoubt = false
  const lostController = new AbortController()
  const onClientError = (error: Error) => {
    lost ??= error
    lostController.abort()
  }
  client.on("error", onClientError)
  const wake = options.signal ? AbortSignal.any([options.signal, lostController.signal]) : lostController.signal

  const stopReason = (): SimulationReport["stoppedBy"] | null => {
    if (lost) return "connection-lost"
    if (options.signal?.aborted) return "signal"
    if (options.maxTransactions !== undefined && transactions >= options.maxTransactions) return "maxTransactions"
    if (options.maxChanges !== undefined && rowChanges >= options.maxChanges) return "maxChanges"
    if (options.durationMs !== undefined && Date.now() - began >= options.durationMs) return "duration"
    return null
  }

  /** One transaction; false when the kind found nothing to do (rolled back, nothing written). */
  const commit = async (kind: SimKind, at: number, body: (ctx: Context) => Promise<Array<Change> | null>): Promise<boolean> => {
    const ctx: Context = { client, rng: valueRng, refs, at, newDesigns: [] }
    let txid = ""
    let changes: Array<Change> | null
    await client.query("BEGIN")
    try {
      const { rows } = await client.query("SELECT pg_current_xact_id()::text AS txid")
      txid = rows[0].txid as string
      changes = await body(ctx)
      commitInFlight = changes !== null
      await client.query(changes === null ? "ROLLBACK" : "COMMIT")
      commitInFlight = false
    } catch (error) {
      if (isConnectionLost(error)) {
        lastCommitInDoubt = commitInFlight
        throw error
      }
      await client.query("ROLLBACK").catch(() => {})
      throw error
    }
    if (changes === null) return false
    refs.designIds.push(...ctx.newDesigns)
    transactions++
    rowChanges += changes.length
    kinds[kind] = (kinds[kind] ?? 0) + 1
    firstAt ??= at
    lastAt = at
    const stamp = formatTimestamp(at)
    const xid = Number(BigInt(txid) & 0xffffffffn)
    const entries = changes.map(
      (c): ChangeLogEntry => ({ seq: transactions, txid, xid, kind, table: c.table, op: c.op, key: c.key, at: stamp, ...(c.columns ? { columns: c.columns } : {}) })
    )
    for (const c of changes) tables[c.table][c.op]++
    if (options.log) log.push(...entries)
    options.onCommit?.({ seq: transactions, txid, xid, kind, at: stamp, changes: entries })
    return true
  }

  let consecutiveSkips = 0
  let iteration = 0
  try {
    run: while (true) {
      if ((stoppedBy = stopReason())) break
      if (paced) {
        let wait = began + (iteration * 1000) / rate - Date.now()
        if (options.durationMs !== undefined) wait = Math.min(wait, began + options.durationMs - Date.now())
        await sleep(wait, wake)
        if ((stoppedBy = stopReason())) break
      }
      iteration++
      const at = advance()
      if (runJobs) {
        for (const day of paymentJobDays(previous, at)) {
          if ((stoppedBy = stopReason())) break run
          const jobAt = wall ? previous + 1 : Math.max(previous + 1, Math.min(paymentJobInstant(clockRng, day), at - 1))
          await commit("payment_job", jobAt, (ctx) => paymentJob(ctx, day))
          previous = jobAt
        }
        if ((stoppedBy = stopReason())) break
      }
      const txAt = Math.max(at, previous + 1)
      previous = txAt
      const kind = mixEntries[kindRng.weightedIndex(weights)]![0]
      if (await commit(kind, txAt, KINDS[kind])) consecutiveSkips = 0
      else {
        skipped[kind] = (skipped[kind] ?? 0) + 1
        if (++consecutiveSkips >= 1_000) {
          stoppedBy = "exhausted"
          break
        }
      }
    }
  } catch (error) {
    if (!isConnectionLost(error)) throw error
    lost ??= error as Error
    stoppedBy = "connection-lost"
  } finally {
    client.off("error", onClientError)
  }

  return {
    seed: String(options.seed),
    transactions,
    rowChanges,
    tables,
    kinds,
    skipped,
    clock: { start: firstAt === null ? null : formatTimestamp(firstAt), end: lastAt === null ? null : formatTimestamp(lastAt) },
    wallMs: Date.now() - began,
    stoppedBy: stoppedBy ?? "signal",
    ...(lost ? { error: lost.message, lastCommitInDoubt } : {}),
    ...(options.log ? { log } : {})
  }
}
