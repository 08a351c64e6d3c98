/**
 * What one batch writes, as rows ready for COPY. Pure.
 *
 *   completedBatchRows(plan, completed)   the consumer's plan and completion (projection.ts), as rows
 *   simpleBatchRows(records)              the same rows straight from the events, for a batch of
 *                                         plain changes (undefined: use the plan)
 *
 * A plain batch is the common case of a replay: inserts, updates that carry every column and keep
 * their key, and deletes with the whole row. For those the plan is one row change per event with
 * the event's own image, so the mirror rows and the fact rows (projection.ts's toFactRow through
 * the COPY text of copy-text.ts) follow from the events without building the plan's objects, which
 * is most of the time a replay spends. Anything else (unsent TOAST columns, key-only deletes, key
 * changes, truncations, unknown tables, values the fact columns do not take as they are) goes
 * through the plan. test/unit/replay-bulk-rows.test.ts proves both give the same rows.
 */
import type { ChangeEvent, Row, StreamRecord } from "../../../contracts/change-event.ts"
import { normalizeLsn, type Lsn } from "../../../contracts/lsn.ts"
import { isTotesysTable, PRIMARY_KEYS, SOURCE_COLUMNS, type TotesysTable } from "../../../contracts/totesys.ts"
import {
  DIM_TABLES,
  FACT_COLUMNS,
  FACT_SOURCES,
  mirrorKey,
  type CompletedPlan,
  type DimTable,
  type FactRow,
  type FactTable,
  type MirrorRow,
  type Plan,
  type SkippedEvent,
  type Truncation
} from "../../warehouse/projection.ts"
import { copyField, isCopyScalar } from "./copy-text.ts"

type Json = Row[string]

/** A fact row as COPY text (with its newline), or, when a value is no COPY field, the row itself. */
export type FactOutput = { readonly eventId: string; readonly line: string } | { readonly eventId: string; readonly row: FactRow }

export interface BatchRows {
  /** The newest change of every row the batch touches. */
  readonly mirror: ReadonlyArray<MirrorRow>
  readonly facts: Readonly<Record<FactTable, ReadonlyArray<FactOutput>>>
  readonly dateRange: { readonly first: string; readonly last: string } | null
  readonly references: Readonly<Record<DimTable, ReadonlyArray<number>>>
  readonly truncations: ReadonlyArray<Truncation>
  readonly skipped: ReadonlyArray<SkippedEvent>
}

export const FACT_TABLES = Object.keys(FACT_SOURCES) as Array<FactTable>
export const FACT_METADATA = ["source_seq", "change_op", "event_id", "source_lsn", "source_committed_at"] as const
/** The columns a fact row is copied with: the diagram's, then the change metadata. */
export const FACT_COPY_COLUMNS: Record<FactTable, ReadonlyArray<string>> = {
  fact_sales_order: [...FACT_COLUMNS.fact_sales_order, ...FACT_METADATA],
  fact_purchase_order: [...FACT_COLUMNS.fact_purchase_order, ...FACT_METADATA],
  fact_payment: [...FACT_COLUMNS.fact_payment, ...FACT_METADATA]
}

const factLineOf = (fact: FactTable, row: FactRow): FactOutput => {
  const columns = FACT_COPY_COLUMNS[fact]
  let line = ""
  for (let i = 0; i < columns.length; i++) {
    const value = row[columns[i]!]
    if (!isCopyScalar(value)) return { eventId: row.event_id, row }
    line += (i === 0 ? "" : "\t") + copyField(value)
  }
  return { eventId: row.event_id, line: `${line}\n` }
}

/** The rows of a completed plan (the general way). */
export const completedBatchRows = (plan: Plan, completed: CompletedPlan): BatchRows => ({
  mirror: completed.mirror,
  facts: {
    fact_sales_order: completed.facts.fact_sales_order.map((row) => factLineOf("fact_sales_order", row)),
    fact_purchase_order: completed.facts.fact_purchase_order.map((row) => factLineOf("fact_purchase_order", row)),
    fact_payment: completed.facts.fact_payment.map((row) => factLineOf("fact_payment", row))
  },
  dateRange: completed.dateRange,
  references: completed.references,
  truncations: plan.truncations,
  skipped: plan.skipped
})

// ---------------------------------------------------------------------------------------------
// Plain batches: the fact mapping of projection.ts, written as COPY text directly.

/** How each fact column is read from the source row (projection.ts's FACT_MAPPINGS and toFactRow). */
type Field =
  | { readonly kind: "key" }
  | { readonly kind: "value"; readonly column: string }
  | { readonly kind: "date" | "time"; readonly column: "created_at" | "last_updated" }
  | { readonly kind: "textDate"; readonly column: string }

const value = (column: string): Field => ({ kind: "value", column })
const timestampFields: ReadonlyArray<Field> = [
  { kind: "date", column: "created_at" },
  { kind: "time", column: "created_at" },
  { kind: "date", column: "last_updated" },
  { kind: "time", column: "last_updated" }
]

export const FACT_FIELDS: Record<FactTable, ReadonlyArray<Field>> = {
  fact_sales_order: [
    { kind: "key" }, ...timestampFields, value("staff_id"), value("counterparty_id"), value("units_sold"), value("unit_price"), value("currency_id"),
    value("design_id"), { kind: "textDate", column: "agreed_payment_date" }, { kind: "textDate", column: "agreed_delivery_date" }, value("agreed_delivery_location_id")
  ],
  fact_purchase_order: [
    { kind: "key" }, ...timestampFields, value("staff_id"), value("counterparty_id"), value("item_code"), value("item_quantity"), value("item_unit_price"),
    value("currency_id"), { kind: "textDate", column: "agreed_delivery_date" }, { kind: "textDate", column: "agreed_payment_date" }, value("agreed_delivery_location_id")
  ],
  fact_payment: [
    { kind: "key" }, ...timestampFields, value("transaction_id"), value("counterparty_id"), value("payment_amount"), value("currency_id"),
    value("payment_type_id"), value("paid"), { kind: "textDate", column: "payment_date" }
  ]
}

/** Fact columns holding a date, and those referencing a dimension (as completePlan reads them), by position in FACT_COLUMNS. */
const positions = <A>(fact: FactTable, names: ReadonlyArray<readonly [string, A]>): ReadonlyArray<readonly [number, A]> =>
  names.map(([name, tag]) => {
    const at = FACT_COLUMNS[fact].indexOf(name)
    if (at < 0) throw new Error(`${fact} has no column ${name}`)
    return [at, tag] as const
  })
const DATE_POSITIONS: Record<FactTable, ReadonlyArray<number>> = {
  fact_sales_order: positions("fact_sales_order", [["created_date", 0], ["last_updated_date", 0], ["agreed_payment_date", 0], ["agreed_delivery_date", 0]]).map(([at]) => at),
  fact_purchase_order: positions("fact_purchase_order", [["created_date", 0], ["last_updated_date", 0], ["agreed_delivery_date", 0], ["agreed_payment_date", 0]]).map(([at]) => at),
  fact_payment: positions("fact_payment", [["created_date", 0], ["last_updated_date", 0], ["payment_date", 0]]).map(([at]) => at)
}
const REFERENCE_POSITIONS: Record<FactTable, ReadonlyArray<readonly [number, DimTable]>> = {
  fact_sales_order: positions<DimTable>("fact_sales_order", [
    ["sales_staff_id", "dim_staff"], ["counterparty_id", "dim_counterparty"], ["currency_id", "dim_currency"], ["design_id", "dim_design"], ["agreed_delivery_location_id", "dim_location"]
  ]),
  fact_purchase_order: positions<DimTable>("fact_purchase_order", [
    ["staff_id", "dim_staff"], ["counterparty_id", "dim_counterparty"], ["currency_id", "dim_currency"], ["agreed_delivery_location_id", "dim_location"]
  ]),
  fact_payment: positions<DimTable>("fact_payment", [
    ["transaction_id", "dim_transaction"], ["counterparty_id", "dim_counterparty"], ["currency_id", "dim_currency"], ["payment_type_id", "dim_payment_type"]
  ])
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(?:\.\d+)?)$/
const DATE = /^\d{4}-\d{2}-\d{2}$/

/** The fact columns' values from a source row, or undefined when toFactRow would refuse the row or a value is no COPY field. */
const factValues = (fact: FactTable, image: Row, key: number): Array<Json> | undefined => {
  const fields = FACT_FIELDS[fact]
  const out: Array<Json> = new Array(fields.length)
  let stamp: RegExpExecArray | null = null
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!
    switch (field.kind) {
      case "key":
        out[i] = key
        break
      case "value": {
        const v = field.column in image ? image[field.column]! : null
        if (!isCopyScalar(v)) return undefined
        out[i] = v
        break
      }
      case "date":
      case "time": {
        const raw = image[field.column]
        if (raw === null || raw === undefined) {
          out[i] = null
          break
        }
        if (field.kind === "date") stamp = typeof raw === "string" ? TIMESTAMP.exec(raw) : null
        if (!stamp) return undefined
        out[i] = field.kind === "date" ? stamp[1]! : stamp[2]!
        break
      }
      case "textDate": {
        const raw = image[field.column]
        if (raw === null || raw === undefined) out[i] = null
        else if (typeof raw === "string" && DATE.test(raw)) out[i] = raw
        else return undefined
        break
      }
    }
  }
  return out
}

const FACT_OF: Partial<Record<string, FactTable>> = Object.fromEntries(Object.entries(FACT_SOURCES).map(([fact, table]) => [table, fact as FactTable]))

/** The key an event changes, when it is a plain change: an integer key the update keeps, a delete with the whole row. */
const plainChange = (event: ChangeEvent, table: TotesysTable): { readonly key: number; readonly image: Row } | undefined => {
  if (event.unchanged.length > 0 || event.claimCheck) return undefined
  const pk = PRIMARY_KEYS[table]
  if (event.op === "d") {
    const before = event.before
    if (!before) return undefined
    for (const column of SOURCE_COLUMNS[table]) if (!(column in before)) return undefined
    const key = before[pk]
    return typeof key === "number" && Number.isSafeInteger(key) ? { key, image: before } : undefined
  }
  if (event.op !== "c" && event.op !== "r" && event.op !== "u") return undefined
  const after = event.after
  if (!after) return undefined
  const key = after[pk]
  if (typeof key !== "number" || !Number.isSafeInteger(key)) return undefined
  if (event.op === "u") {
    const old = event.before && pk in event.before ? event.before[pk] : event.key && pk in event.key ? event.key[pk] : key
    if (old !== key) return undefined
  }
  return { key, image: after }
}

/** The rows of a batch of plain changes in source order, without the plan; undefined when the batch is not plain. */
export const simpleBatchRows = (records: ReadonlyArray<StreamRecord>): BatchRows | undefined => {
  const seen = new Set<string>()
  const latest = new Map<string, MirrorRow>()
  const facts: Record<FactTable, Array<FactOutput>> = { fact_sales_order: [], fact_purchase_order: [], fact_payment: [] }
  const references = Object.fromEntries(DIM_TABLES.map((dim) => [dim, new Set<number>()])) as Record<DimTable, Set<number>>
  let first: string | null = null
  let last: string | null = null
  let rawLsn = ""
  let lsn: Lsn = ""
  for (const record of records) {
    if (record.kind !== "change") return undefined
    if (seen.has(record.id)) continue
    seen.add(record.id)
    const table = record.source.table
    if (!isTotesysTable(table)) return undefined
    const change = plainChange(record, table)
    if (!change) return undefined
    if (record.source.commitLsn !== rawLsn) {
      rawLsn = record.source.commitLsn
      lsn = normalizeLsn(rawLsn)
    }
    const seq = record.source.index
    latest.set(mirrorKey(table, change.key), { table_name: table, key_id: change.key, image: change.image, source_lsn: lsn, source_seq: seq, deleted: record.op === "d", event_id: record.id })
    const fact = FACT_OF[table]
    if (!fact) continue
    const values = factValues(fact, change.image, change.key)
    if (!values) return undefined
    let line = ""
    for (const v of values) line += `${copyField(v as string | number | boolean | null)}\t`
    facts[fact].push({ eventId: record.id, line: `${line}${seq}\t${record.op}\t${copyField(record.id)}\t${lsn}\t${copyField(record.source.committedAt)}\n` })
    for (const position of DATE_POSITIONS[fact]) {
      const date = values[position]
      if (typeof date !== "string") continue
      if (first === null || date < first) first = date
      if (last === null || date > last) last = date
    }
    for (const [position, dim] of REFERENCE_POSITIONS[fact]) {
      const key = values[position]
      if (key !== null && key !== undefined) references[dim].add(Number(key))
    }
  }
  return {
    mirror: [...latest.values()],
    facts,
    dateRange: first !== null && last !== null ? { first, last } : null,
    references: Object.fromEntries(DIM_TABLES.map((dim) => [dim, [...references[dim]].sort((a, b) => a - b)])) as Record<DimTable, Array<number>>,
    truncations: [],
    skipped: []
  }
}
