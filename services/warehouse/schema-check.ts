/**
 * Pure: does a change event still give the warehouse what it builds on? Checked against the
 * warehouse catalogue (contracts/warehouse-catalogue.ts) and the operator's decisions for the
 * table (a renamed column mapped, a dropped column accepted as NULL, a type change accepted).
 *
 *   checkEvent(event, decisions) → { _tag: "Fits", event }        maybe normalised ("84755.00" → 84755)
 *                               → { _tag: "Breaks", violation }   the table must pause
 *
 * A change the warehouse can absorb — a new column, a dropped or renamed column it does not use,
 * a widening type whose values still fit — fits.
 */
import type { ChangeEvent, Row } from "../../contracts/change-event.ts"
import { usedColumns, type ColumnKind } from "../../contracts/warehouse-catalogue.ts"

type Json = Row[string]

/** What the operator decided for one table when resuming it. */
export interface TableDecisions {
  /** Catalogue column → the source column that now holds it (a rename). */
  readonly renamed: Readonly<Record<string, string>>
  /** Columns accepted as gone: NULL from now on. */
  readonly missingAccepted: ReadonlyArray<string>
  /** Columns whose values are passed on as they come (the operator adapted the warehouse column). */
  readonly typeAccepted: ReadonlyArray<string>
}

export const NO_DECISIONS: TableDecisions = { renamed: {}, missingAccepted: [], typeAccepted: [] }

export interface Violation {
  readonly table: string
  readonly column: string
  readonly problem: "missing" | "type"
  /** What was found, for the operator: never a row value. */
  readonly detail: string
}

export type CheckResult = { readonly _tag: "Fits"; readonly event: ChangeEvent } | { readonly _tag: "Breaks"; readonly violation: Violation }

const INT_MAX = 2_147_483_647
const INTEGRAL = /^-?\d+(?:\.0+)?$/
const MONEY = /^-?(\d+)(?:\.(\d+))?$/
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?$/
const DATE = /^\d{4}-\d{2}-\d{2}$/

const kindOf = (value: Json): string => (value === null ? "null" : Array.isArray(value) ? "array" : typeof value)

/** The value in the form the warehouse column takes, or undefined when it does not fit. */
export const fitValue = (kind: ColumnKind, value: Json): Json | undefined => {
  if (value === null) return null
  switch (kind) {
    case "int": {
      const n = typeof value === "number" ? value : typeof value === "string" && INTEGRAL.test(value) ? Number(value) : Number.NaN
      return Number.isInteger(n) && Math.abs(n) <= INT_MAX ? n : undefined
    }
    case "money": {
      const text = typeof value === "number" ? String(value) : typeof value === "string" ? value : undefined
      const match = text === undefined ? null : MONEY.exec(text)
      if (!match) return undefined
      const decimals = (match[2] ?? "").replace(/0+$/, "")
      if (match[1]!.replace(/^0+(?=\d)/, "").length > 8 || decimals.length > 2) return undefined
      return text!
    }
    case "text":
      return typeof value === "string" ? value : typeof value === "number" || typeof value === "boolean" ? String(value) : undefined
    case "timestamp":
      return typeof value === "string" && TIMESTAMP.test(value) ? value : undefined
    case "date":
      return typeof value === "string" && DATE.test(value) ? value : undefined
    case "bool":
      return typeof value === "boolean" ? value : undefined
  }
}

const describeValue = (kind: ColumnKind, value: Json): string => {
  if (typeof value === "string" && kind === "int") return /^-?\d+\.\d+$/.test(value) ? "a number with decimals" : "text that is not an integer"
  if (typeof value === "string" && kind === "money") return /^-?\d+(\.\d+)?$/.test(value) ? "a number beyond numeric(10,2)" : "text that is not a number"
  return `a ${kindOf(value)}`
}

/** Applies renames to an image: the catalogue's name gets the value of the column that now holds it. */
const renameColumns = (row: Row | null, renamed: Readonly<Record<string, string>>): Row | null => {
  if (!row) return row
  let out: Record<string, Json> | undefined
  for (const [catalogue, source] of Object.entries(renamed)) {
    if (source in row && !(catalogue in row)) (out ??= { ...row })[catalogue] = row[source]!
  }
  return out ?? row
}

export const checkEvent = (event: ChangeEvent, decisions: TableDecisions = NO_DECISIONS): CheckResult => {
  const table = event.source.table
  const columns = usedColumns(table)
  if (event.op === "t" || Object.keys(columns).length === 0) return { _tag: "Fits", event }
  const renamed = decisions.renamed
  const after = renameColumns(event.after, renamed)
  const before = renameColumns(event.before, renamed)
  const unchanged = event.unchanged.map((c) => Object.entries(renamed).find(([, source]) => source === c)?.[0] ?? c)
  // A delete may carry only the key (REPLICA IDENTITY DEFAULT): the rest comes from the mirror.
  const image = event.op === "d" ? before : after
  const complete = event.op !== "d" || (before !== null && Object.keys(before).length > Object.keys(event.key ?? {}).length)
  let fixed: Record<string, Json> | undefined
  for (const [column, kind] of Object.entries(columns)) {
    if (!image || !(column in image)) {
      if (decisions.missingAccepted.includes(column)) {
        if (image && event.op !== "d") (fixed ??= { ...image })[column] = null
        continue
      }
      if (!complete || unchanged.includes(column)) continue
      return { _tag: "Breaks", violation: { table, column, problem: "missing", detail: `the change has no column ${column} (renamed or dropped in the source)` } }
    }
    const value = image[column]!
    const fit = fitValue(kind, value)
    if (fit === undefined) {
      if (decisions.typeAccepted.includes(column)) continue
      return { _tag: "Breaks", violation: { table, column, problem: "type", detail: `${column} holds ${describeValue(kind, value)}, which does not fit the warehouse's ${kind} column` } }
    }
    if (fit !== value) (fixed ??= { ...image })[column] = fit
  }
  if (!fixed && after === event.after && before === event.before) return { _tag: "Fits", event }
  const nextAfter = event.op === "d" ? after : (fixed ?? after)
  const nextBefore = event.op === "d" ? (fixed ?? before) : before
  return { _tag: "Fits", event: { ...event, after: nextAfter, before: nextBefore, unchanged } }
}
