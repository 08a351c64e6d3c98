/**
 * Turns one totesys state into another with ordinary SQL transactions, in the order the real
 * application would have committed them (the real-history end-to-end test: February → November).
 *
 *   const feb = await readTotesysState(source)          every row of the 11 tables, as Postgres prints it
 *   const nov = await readTotesysState(scratch)          the target state (e.g. the November CSVs loaded)
 *   const plan = planHistory(feb, nov)                   the difference as timed transactions + counts
 *   await applyHistory(source, plan, { transactionsPerSecond: 400 })
 *
 * How the difference becomes history (totesys-schema.md §1, "How the real database behaves"):
 * - a new `design` row: one INSERT, at its created_at;
 * - a new order: one transaction inserting the order, its `transaction` and its `payment`, at the
 *   order's created_at (sales and purchases interleaved by time, ids kept: explicit ids, sequences
 *   set at the end);
 * - a new row referencing a row created after it (real: sales orders whose design is months
 *   younger) was inserted with the newest parent that existed then and edited in place (an
 *   "inferred" edit, last_updated untouched) right after the parent's insert;
 * - a new row whose last_updated differs from its created_at was inserted in its first version
 *   (last_updated = created_at; a payment unpaid) and updated later, at its last_updated;
 * - payments going paid=false → true with last_updated bumped: the 07:55 job, one transaction per
 *   day (`UPDATE payment SET paid = true, last_updated = <that day's value> WHERE payment_id IN …`);
 * - a changed row whose last_updated did not change: an in-place edit, one transaction updating only
 *   the changed columns with last_updated untouched, at a time spread evenly over the period (the
 *   real time is unknowable), never before a row it references exists;
 * - any other changed row: one UPDATE of the changed columns, at its new last_updated;
 * - a row that disappeared: one DELETE after everything else, children first.
 * Every step is one source transaction; `counts` says how many row changes of each kind each
 * table receives, i.e. how many change events the pipeline must deliver.
 */
import { setTimeout as sleep } from "node:timers/promises"
import type pg from "pg"
import { PRIMARY_KEYS, TOTESYS_TABLES, type TotesysTable } from "../../contracts/totesys.ts"
import { resetSequences } from "../../tools/source/totesys-db.ts"

export type TextRow = Record<string, string | null>

export interface TableState {
  readonly columns: ReadonlyArray<string>
  /** Rows by primary-key text, in key order. */
  readonly rows: ReadonlyMap<string, TextRow>
}

export type TotesysState = Record<TotesysTable, TableState>

/** Every row of the 11 tables, each value as Postgres prints it (NULL as null), columns in physical order. */
export const readTotesysState = async (client: pg.ClientBase): Promise<TotesysState> => {
  const state = {} as TotesysState
  for (const table of TOTESYS_TABLES) {
    const key = PRIMARY_KEYS[table]
    const result = await client.query({
      text: `SELECT * FROM "${table}" ORDER BY "${key}"`,
      rowMode: "array",
      types: { getTypeParser: () => (v: string) => v }
    } as pg.QueryConfig)
    const columns = result.fields.map((f) => f.name)
    const keyIndex = columns.indexOf(key)
    const rows = new Map<string, TextRow>()
    for (const values of result.rows as unknown as Array<Array<string | null>>) {
      rows.set(values[keyIndex]!, Object.fromEntries(columns.map((c, i) => [c, values[i] ?? null])))
    }
    state[table] = { columns, rows }
  }
  return state
}

/** Each table's rows as sorted `row::text` lines: what "equal, row by row" compares. */
export const readTableTexts = async (client: pg.ClientBase): Promise<Record<TotesysTable, Array<string>>> => {
  const texts = {} as Record<TotesysTable, Array<string>>
  for (const table of TOTESYS_TABLES) {
    const { rows } = await client.query(`SELECT t::text AS row FROM "${table}" t ORDER BY t."${PRIMARY_KEYS[table]}"`)
    texts[table] = rows.map((r) => r.row as string)
  }
  return texts
}

/** Foreign keys (column → parent table): a step never runs before the rows it references exist. */
const FOREIGN_KEYS: Partial<Record<TotesysTable, Record<string, TotesysTable>>> = {
  counterparty: { legal_address_id: "address" },
  staff: { department_id: "department" },
  purchase_order: { staff_id: "staff", counterparty_id: "counterparty", currency_id: "currency", agreed_delivery_location_id: "address" },
  sales_order: {
    design_id: "design", staff_id: "staff", counterparty_id: "counterparty", currency_id: "currency", agreed_delivery_location_id: "address"
  },
  transaction: { sales_order_id: "sales_order", purchase_order_id: "purchase_order" },
  payment: { transaction_id: "transaction", counterparty_id: "counterparty", currency_id: "currency", payment_type_id: "payment_type" }
}

export type StepKind = "design" | "order" | "insert" | "paid_batch" | "edit" | "update" | "delete"

/** Same-instant steps run in this order. */
const KIND_ORDER: Record<StepKind, number> = { design: 0, insert: 1, order: 2, update: 3, paid_batch: 4, edit: 5, delete: 6 }

export type ChangeKind = "insert" | "update" | "delete"

export interface Step {
  /** When the real database committed it (ms since epoch, UTC); edits: a plausible time. */
  readonly at: number
  readonly kind: StepKind
  readonly label: string
  /** The transaction's statements (no BEGIN/COMMIT). */
  readonly statements: ReadonlyArray<string>
  /** Row changes the transaction makes, per table. */
  readonly changes: ReadonlyArray<{ readonly table: TotesysTable; readonly op: ChangeKind; readonly rows: number }>
}

export interface InPlaceEdit {
  readonly table: TotesysTable
  readonly key: string
  /**
   * false: a row of both states that differs with the same last_updated; true: a new row whose
   * reference to a later row shows it was edited after its insert (the first value is a guess).
   */
  readonly inferred: boolean
  /** Changed columns with their values before and after. */
  readonly columns: Record<string, { readonly before: string | null; readonly after: string | null }>
}

export interface HistoryPlan {
  /** In commit order. */
  readonly steps: ReadonlyArray<Step>
  /** Row changes per table and kind over the whole plan. */
  readonly counts: Record<TotesysTable, Record<ChangeKind, number>>
  /** Transactions per step kind. */
  readonly transactions: Record<StepKind, number>
  /** Changes that leave last_updated alone (applied as in-place edits). */
  readonly edits: ReadonlyArray<InPlaceEdit>
  /** Changes placed later than their own moment because a row they need is inserted later. */
  readonly shifted: ReadonlyArray<string>
  /** The span of the history: the newest moment of the first state and of the second. */
  readonly from: number
  readonly to: number
}

const sqlLiteral = (value: string | null): string => (value === null ? "NULL" : `'${value.replace(/'/g, "''")}'`)
const ident = (name: string) => `"${name.replace(/"/g, '""')}"`

/** Source timestamps are naive UTC with millisecond precision. */
export const timestampMs = (text: string): number => {
  const ms = Date.parse(`${text.replace(" ", "T")}Z`)
  if (Number.isNaN(ms)) throw new Error(`not a timestamp: ${text}`)
  return ms
}

const insertSql = (table: TotesysTable, columns: ReadonlyArray<string>, row: TextRow) =>
  `INSERT INTO ${ident(table)} (${columns.map(ident).join(", ")}) VALUES (${columns.map((c) => sqlLiteral(row[c] ?? null)).join(", ")})`

const setSql = (row: TextRow, columns: ReadonlyArray<string>) => columns.map((c) => `${ident(c)} = ${sqlLiteral(row[c] ?? null)}`).join(", ")

const changedColumns = (columns: ReadonlyArray<string>, before: TextRow, after: TextRow) => columns.filter((c) => before[c] !== after[c])

/** The newest created_at / last_updated of a state. */
const newestMoment = (state: TotesysState): number => {
  let newest = 0
  for (const table of TOTESYS_TABLES) {
    for (const row of state[table].rows.values()) {
      for (const c of ["created_at", "last_updated"]) if (row[c]) newest = Math.max(newest, timestampMs(row[c]!))
    }
  }
  return newest
}

/**
 * The first version of a row the target state shows already changed since its insert
 * (last_updated ≠ created_at): last_updated = created_at and, for a payment, not yet paid
 * (booleans as Postgres prints them: t/f).
 */
const firstVersion = (table: TotesysTable, row: TextRow): TextRow => {
  if (!("last_updated" in row) || row.last_updated === row.created_at) return row
  return { ...row, last_updated: row.created_at ?? null, ...(table === "payment" ? { paid: "f" } : {}) }
}

export const planHistory = (from: TotesysState, to: TotesysState): HistoryPlan => {
  const steps: Array<Step> = []
  const edits: Array<InPlaceEdit> = []
  const start = newestMoment(from)
  const end = newestMoment(to)
  const inserted = new Map<string, number>() // "table:key" → when its insert commits
  const refKey = (table: TotesysTable, key: string) => `${table}:${key}`
  // A step's own moment, unless a row it needs commits later (then just after it).
  const shifted: Array<string> = []
  const place = (natural: number, earliest: number, what: string) => {
    if (earliest > natural) shifted.push(`${what} by ${earliest - natural} ms`)
    return Math.max(natural, earliest)
  }

  // 1. Inserts: designs and other lone rows, orders grouped with their transaction and payment.
  const newRows = new Map<TotesysTable, Array<string>>()
  for (const table of TOTESYS_TABLES) {
    newRows.set(table, [...to[table].rows.keys()].filter((key) => !from[table].rows.has(key)))
  }
  const laterUpdates: Array<{ table: TotesysTable; key: string; before: TextRow }> = []
  const createdAt = (table: TotesysTable, key: string) => {
    const text = to[table].rows.get(key)!.created_at
    return text ? timestampMs(text) : start + 1
  }
  /** When a row can first be referenced: a row of the first state always, a new row once inserted. */
  const availableAt = (table: TotesysTable, key: string) =>
    inserted.get(refKey(table, key)) ?? (from[table].rows.has(key) ? -Infinity : Infinity)
  // Not before the rows it references exist (after the change, for an update).
  const parentsReady = (table: TotesysTable, key: string) => {
    let at = 0
    const row = to[table].rows.get(key)!
    for (const [column, parent] of Object.entries(FOREIGN_KEYS[table] ?? {})) {
      const ref = row[column]
      if (ref) at = Math.max(at, (inserted.get(refKey(parent, ref)) ?? -1) + 1)
    }
    return at
  }
  /**
   * The INSERT of a new row at `natural`. A row that references a row inserted only later (the
   * real data has sales orders whose design was created months after the order: their design_id
   * was edited in place) is inserted with the newest parent row that existed then, and an
   * in-place edit (last_updated untouched) sets the final value once the parent exists.
   */
  const prepareInsert = (table: TotesysTable, key: string, natural: number, group: ReadonlySet<string>) => {
    const row = to[table].rows.get(key)!
    const first = firstVersion(table, row)
    if (first !== row) laterUpdates.push({ table, key, before: first })
    const standIns: Record<string, { before: string | null; after: string | null; ready: number }> = {}
    let earliest = 0
    for (const [column, parent] of Object.entries(FOREIGN_KEYS[table] ?? {})) {
      const ref = row[column]
      if (!ref || group.has(refKey(parent, ref))) continue
      const ready = availableAt(parent, ref)
      if (ready <= natural) continue
      let standIn: string | undefined
      let standInAt = -Infinity
      for (const candidate of to[parent].rows.keys()) {
        const at = availableAt(parent, candidate)
        if (at <= natural && (at > standInAt || (at === standInAt && Number(candidate) > Number(standIn)))) {
          standIn = candidate
          standInAt = at
        }
      }
      if (standIn === undefined || !Number.isFinite(ready)) earliest = Math.max(earliest, ready + 1)
      else standIns[column] = { before: standIn, after: ref, ready }
    }
    const columns = Object.keys(standIns)
    if (columns.length > 0) {
      const edit: InPlaceEdit = {
        table, key, inferred: true, columns: Object.fromEntries(columns.map((c) => [c, { before: standIns[c]!.before, after: standIns[c]!.after }]))
      }
      edits.push(edit)
      steps.push({
        at: Math.max(...columns.map((c) => standIns[c]!.ready)) + 1,
        kind: "edit",
        label: `${table} ${key} (${columns.join(", ")}: inferred)`,
        statements: [`UPDATE ${ident(table)} SET ${setSql(row, columns)} WHERE ${ident(PRIMARY_KEYS[table])} = ${sqlLiteral(key)}`],
        changes: [{ table, op: "update", rows: 1 }]
      })
    }
    const version = { ...first, ...Object.fromEntries(columns.map((c) => [c, standIns[c]!.before])) }
    return { statement: insertSql(table, to[table].columns, version), earliest }
  }

  const paymentsByTransaction = new Map<string, Array<string>>()
  for (const key of newRows.get("payment")!) {
    const tx = to.payment.rows.get(key)!.transaction_id!
    paymentsByTransaction.set(tx, [...(paymentsByTransaction.get(tx) ?? []), key])
  }
  const newSales = new Set(newRows.get("sales_order"))
  const newPurchases = new Set(newRows.get("purchase_order"))
  const orders: Array<Array<[TotesysTable, string]>> = []
  const grouped = new Set<string>()
  for (const txKey of newRows.get("transaction")!) {
    const tx = to.transaction.rows.get(txKey)!
    const members: Array<[TotesysTable, string]> = []
    if (tx.sales_order_id && newSales.has(tx.sales_order_id)) members.push(["sales_order", tx.sales_order_id])
    if (tx.purchase_order_id && newPurchases.has(tx.purchase_order_id)) members.push(["purchase_order", tx.purchase_order_id])
    members.push(["transaction", txKey])
    for (const payment of paymentsByTransaction.get(txKey) ?? []) members.push(["payment", payment])
    for (const [t, k] of members) grouped.add(refKey(t, k))
    orders.push(members)
  }
  const insertOrders = () => {
    for (const members of orders) {
      const orderTable = members[0]![0]
      const natural = Math.min(...members.map(([t, k]) => createdAt(t, k)))
      const group = new Set(members.map(([t, k]) => refKey(t, k)))
      const inserts = members.map(([t, k]) => prepareInsert(t, k, natural, group))
      const at = place(natural, Math.max(...inserts.map((i) => i.earliest)), `order ${orderTable} ${members[0]![1]}`)
      for (const [t, k] of members) inserted.set(refKey(t, k), at)
      steps.push({
        at,
        kind: orderTable === "transaction" ? "insert" : "order",
        label: `${orderTable} ${members[0]![1]}`,
        statements: inserts.map((i) => i.statement),
        changes: members.map(([table]) => ({ table, op: "insert" as const, rows: 1 }))
      })
    }
  }
  // Parents first: lone rows of the tables orders reference, then the orders, then the rest.
  for (const table of TOTESYS_TABLES) {
    if (table === "purchase_order") insertOrders()
    for (const key of newRows.get(table)!) {
      if (grouped.has(refKey(table, key))) continue
      const natural = createdAt(table, key)
      const insert = prepareInsert(table, key, natural, new Set())
      const at = place(natural, insert.earliest, `insert ${table} ${key}`)
      inserted.set(refKey(table, key), at)
      steps.push({
        at,
        kind: table === "design" ? "design" : "insert",
        label: `${table} ${key}`,
        statements: [insert.statement],
        changes: [{ table, op: "insert", rows: 1 }]
      })
    }
  }

  // 2. Updates: rows of both states that differ, and new rows inserted in a first version.
  const updates: Array<{ table: TotesysTable; key: string; before: TextRow }> = [...laterUpdates]
  for (const table of TOTESYS_TABLES) {
    for (const [key, before] of from[table].rows) {
      const after = to[table].rows.get(key)
      if (after && changedColumns(to[table].columns, before, after).length > 0) updates.push({ table, key, before })
    }
  }
  // Not before the row's own insert nor before the rows it references after the change.
  const notBefore = (table: TotesysTable, key: string) => Math.max(inserted.get(refKey(table, key)) ?? 0, parentsReady(table, key) - 1)
  const paidBatches = new Map<string, { at: number; byValue: Map<string, Array<string>> }>()
  const editsByTable = new Map<TotesysTable, Array<InPlaceEdit>>()
  for (const { table, key, before } of updates) {
    const after = to[table].rows.get(key)!
    const changed = changedColumns(to[table].columns, before, after)
    const isPaidFlip = table === "payment" && before.paid === "f" && after.paid === "t" &&
      changed.length === 2 && changed.includes("paid") && changed.includes("last_updated")
    if (isPaidFlip) {
      const at = place(timestampMs(after.last_updated!), notBefore(table, key) + 1, `payment ${key} paid`)
      const day = after.last_updated!.slice(0, 10)
      const batch = paidBatches.get(day) ?? { at, byValue: new Map<string, Array<string>>() }
      batch.at = Math.max(batch.at, at)
      batch.byValue.set(after.last_updated!, [...(batch.byValue.get(after.last_updated!) ?? []), key])
      paidBatches.set(day, batch)
    } else if ("last_updated" in after && before.last_updated === after.last_updated) {
      const edit: InPlaceEdit = { table, key, inferred: false, columns: Object.fromEntries(changed.map((c) => [c, { before: before[c] ?? null, after: after[c] ?? null }])) }
      edits.push(edit)
      editsByTable.set(table, [...(editsByTable.get(table) ?? []), edit])
    } else {
      const at = place(after.last_updated ? timestampMs(after.last_updated) : end, notBefore(table, key) + 1, `update ${table} ${key}`)
      steps.push({
        at,
        kind: "update",
        label: `${table} ${key}`,
        statements: [`UPDATE ${ident(table)} SET ${setSql(after, changed)} WHERE ${ident(PRIMARY_KEYS[table])} = ${sqlLiteral(key)}`],
        changes: [{ table, op: "update", rows: 1 }]
      })
    }
  }
  for (const [day, batch] of paidBatches) {
    const groups = [...batch.byValue].sort(([a], [b]) => a.localeCompare(b))
    steps.push({
      at: batch.at,
      kind: "paid_batch",
      label: `payments paid on ${day}`,
      statements: groups.map(([value, keys]) =>
        `UPDATE payment SET paid = true, last_updated = ${sqlLiteral(value)} WHERE payment_id IN (${keys.sort((a, b) => Number(a) - Number(b)).join(", ")})`),
      changes: [{ table: "payment", op: "update", rows: groups.reduce((n, [, keys]) => n + keys.length, 0) }]
    })
  }
  // In-place edits: their real moment is unknown; spread each table's edits evenly over the period.
  let tableIndex = 0
  for (const [table, tableEdits] of editsByTable) {
    const span = Math.max(end - start, 1)
    const phase = ++tableIndex / (editsByTable.size + 1)
    tableEdits.forEach((edit, i) => {
      const spread = Math.round(start + ((i + phase) * span) / tableEdits.length)
      steps.push({
        at: Math.max(Math.min(spread, end), notBefore(table, edit.key) + 1),
        kind: "edit",
        label: `${table} ${edit.key} (${Object.keys(edit.columns).join(", ")})`,
        statements: [
          `UPDATE ${ident(table)} SET ${setSql(to[table].rows.get(edit.key)!, Object.keys(edit.columns))} WHERE ${ident(PRIMARY_KEYS[table])} = ${sqlLiteral(edit.key)}`
        ],
        changes: [{ table, op: "update", rows: 1 }]
      })
    })
  }

  // 3. Deletes: rows gone from the target state, after everything else, children first.
  for (const table of [...TOTESYS_TABLES].reverse()) {
    for (const key of from[table].rows.keys()) {
      if (to[table].rows.has(key)) continue
      steps.push({
        at: end + 1,
        kind: "delete",
        label: `${table} ${key}`,
        statements: [`DELETE FROM ${ident(table)} WHERE ${ident(PRIMARY_KEYS[table])} = ${sqlLiteral(key)}`],
        changes: [{ table, op: "delete", rows: 1 }]
      })
    }
  }

  const ordered = steps
    .map((step, index) => ({ step, index }))
    .sort((a, b) => a.step.at - b.step.at || KIND_ORDER[a.step.kind] - KIND_ORDER[b.step.kind] || a.index - b.index)
    .map(({ step }) => step)
  const counts = Object.fromEntries(TOTESYS_TABLES.map((t) => [t, { insert: 0, update: 0, delete: 0 }])) as HistoryPlan["counts"]
  const transactions: Record<StepKind, number> = { design: 0, order: 0, insert: 0, paid_batch: 0, edit: 0, update: 0, delete: 0 }
  for (const step of ordered) {
    transactions[step.kind] += 1
    for (const change of step.changes) counts[change.table][change.op] += change.rows
  }
  return { steps: ordered, counts, transactions, edits, shifted, from: start, to: end }
}

export interface ApplyOptions {
  /** Pace: source transactions committed per second (default 400; Infinity = as fast as possible). */
  readonly transactionsPerSecond?: number
  /** Transactions sent in one round trip (one multi-statement query, each still its own BEGIN … COMMIT). */
  readonly perRoundTrip?: number
  readonly onProgress?: (done: number, total: number) => void
}

export interface ApplyReport {
  readonly transactions: number
  readonly statements: number
  readonly elapsedMs: number
}

/**
 * Commits the plan's steps in order, each step one transaction, then sets every sequence to its
 * table's max id (ids were inserted explicitly).
 */
export const applyHistory = async (client: pg.ClientBase, plan: HistoryPlan, options: ApplyOptions = {}): Promise<ApplyReport> => {
  const rate = options.transactionsPerSecond ?? 400
  const perRoundTrip = Math.max(1, options.perRoundTrip ?? 20)
  const started = Date.now()
  let statements = 0
  for (let i = 0; i < plan.steps.length; i += perRoundTrip) {
    const chunk = plan.steps.slice(i, i + perRoundTrip)
    const sql = chunk.map((step) => `BEGIN;\n${step.statements.join(";\n")};\nCOMMIT;`).join("\n")
    statements += chunk.reduce((n, step) => n + step.statements.length, 0)
    try {
      await client.query(sql)
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {})
      throw new Error(`history step failed in ${chunk.map((s) => s.label).join(" | ")}: ${(error as Error).message}`, { cause: error })
    }
    const done = i + chunk.length
    options.onProgress?.(done, plan.steps.length)
    if (Number.isFinite(rate)) {
      const due = started + (done / rate) * 1000
      const wait = due - Date.now()
      if (wait > 0) await sleep(wait) // paced at `rate`, like a live source, not as fast as possible
    }
  }
  await resetSequences(client)
  return { transactions: plan.steps.length, statements, elapsedMs: Date.now() - started }
}
