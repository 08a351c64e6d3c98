/**
 * The consumer's projection of one batch (services/warehouse/projection.ts projectBatch), for a
 * batch that is already in source order: the same Plan, without sorting again and without the
 * per-event LSN arithmetic and image copies that cost most of projectBatch's time on a replay of
 * millions of events. Pure.
 *
 *   projectSortedBatch(records)   ≡ projectBatch(records) when records are in source order
 *
 * test/unit/replay-bulk-project.test.ts compares both on random histories (inserts, updates,
 * key changes, unsent TOAST columns, key-only and full deletes, truncations, duplicates, unknown
 * tables, invalid keys), so any difference in rules shows up there.
 */
import type { ChangeEvent, Row, StreamRecord } from "../../../contracts/change-event.ts"
import { lsnToBigInt, normalizeLsn, type Lsn } from "../../../contracts/lsn.ts"
import { isTotesysTable, PRIMARY_KEYS, SOURCE_COLUMNS, type TotesysTable } from "../../../contracts/totesys.ts"
import {
  DIM_TABLES,
  FACT_SOURCES,
  mirrorKey,
  UnresolvedClaimCheckError,
  type DimKeys,
  type DimTable,
  type HeartbeatMark,
  type Plan,
  type Position,
  type RowChange,
  type SkippedEvent,
  type Truncation
} from "../../warehouse/projection.ts"

type Json = Row[string]

/** Which dimension rows a change of a source row affects (as projection.ts decides them). */
const DIM_DEPENDENCIES: Record<TotesysTable, ReadonlyArray<{ readonly dim: DimTable; readonly via: "key" | "parent" }>> = {
  address: [{ dim: "dim_location", via: "key" }, { dim: "dim_counterparty", via: "parent" }],
  counterparty: [{ dim: "dim_counterparty", via: "key" }],
  currency: [{ dim: "dim_currency", via: "key" }],
  department: [{ dim: "dim_staff", via: "parent" }],
  design: [{ dim: "dim_design", via: "key" }],
  payment_type: [{ dim: "dim_payment_type", via: "key" }],
  staff: [{ dim: "dim_staff", via: "key" }],
  transaction: [{ dim: "dim_transaction", via: "key" }],
  purchase_order: [],
  sales_order: [],
  payment: []
}

const FACT_TABLES = new Set<string>(Object.values(FACT_SOURCES))

class InvalidEvent extends Error {}

/** normalizeLsn of the same commit LSN over and over (a transaction's events share it): remember the last one. */
const lsnNormaliser = () => {
  let lastRaw = ""
  let lastNormal: Lsn = ""
  return (raw: string): Lsn => {
    if (raw !== lastRaw) {
      lastNormal = normalizeLsn(raw)
      lastRaw = raw
    }
    return lastNormal
  }
}

const keyValue = (row: Row | null | undefined, column: string): number | undefined => {
  if (!row || !(column in row)) return undefined
  const value = row[column]
  const key = typeof value === "number" ? value : typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(key)) throw new InvalidEvent(`primary key ${column} is not an integer: ${JSON.stringify(value)}`)
  return key
}

/** projection.ts's inherit, without copying an image that lacks nothing. */
const inherit = (image: Row, missing: ReadonlyArray<string>, prior: RowChange | undefined, ownKey: number): { image: Row; fill: Array<string>; fillKey: number } => {
  const fillKey = prior ? prior.fillKey : ownKey
  let filled: Record<string, Json> | undefined
  const fill: Array<string> = []
  for (const column of missing) {
    if (column in image) continue
    if (prior && column in prior.image) (filled ??= { ...image })[column] = prior.image[column]!
    else if (!prior || prior.fill.includes(column)) fill.push(column)
  }
  return { image: filled ?? image, fill, fillKey }
}

const rowChanges = (event: ChangeEvent, table: TotesysTable, position: Position, priorOf: (key: number) => RowChange | undefined): Array<RowChange> => {
  const pk = PRIMARY_KEYS[table]
  const base = { table, position, committedAt: event.source.committedAt }
  const needImage = (row: Row | null, what: string): Row => {
    if (row) return row
    if (event.claimCheck) throw new UnresolvedClaimCheckError(event.id)
    throw new InvalidEvent(`${event.op} event without ${what}`)
  }
  const deleteOf = (image: Row, key: number, eventId: string): RowChange => {
    const missing = SOURCE_COLUMNS[table].filter((column) => !(column in image))
    return { ...base, op: "d", key, eventId, ...inherit(image, missing, priorOf(key), key) }
  }
  switch (event.op) {
    case "c":
    case "r": {
      const after = needImage(event.after, "after")
      const key = keyValue(after, pk)
      if (key === undefined) throw new InvalidEvent(`after lacks ${pk}`)
      return [{ ...base, op: event.op, key, eventId: event.id, ...inherit(after, event.unchanged, priorOf(key), key) }]
    }
    case "u": {
      const after = needImage(event.after, "after")
      const key = keyValue(after, pk) ?? keyValue(event.before, pk) ?? keyValue(event.key, pk)
      if (key === undefined) throw new InvalidEvent(`update without ${pk}`)
      const oldKey = keyValue(event.before, pk) ?? keyValue(event.key, pk) ?? key
      if (oldKey === key) return [{ ...base, op: "u", key, eventId: event.id, ...inherit(after, event.unchanged, priorOf(key), key) }]
      const removed = deleteOf(event.before ?? event.key ?? { [pk]: oldKey }, oldKey, `${event.id}:old-key`)
      return [removed, { ...base, op: "u", key, eventId: event.id, ...inherit(after, event.unchanged, priorOf(key) ?? removed, key) }]
    }
    case "d": {
      const before = needImage(event.before ?? event.key, "before or key")
      const key = keyValue(before, pk)
      if (key === undefined) throw new InvalidEvent(`delete without ${pk}`)
      return [deleteOf(before, key, event.id)]
    }
    default:
      throw new InvalidEvent(`unexpected op ${JSON.stringify(event.op)}`)
  }
}

const sortedNumbers = (values: Iterable<number>): Array<number> => [...values].sort((a, b) => a - b)

/** projectBatch for records already in source order (commit LSN, then index; a stable order). */
export const projectSortedBatch = (records: ReadonlyArray<StreamRecord>): Plan => {
  const normal = lsnNormaliser()
  const seen = new Set<string>()
  const unknown: Array<SkippedEvent> = []
  const invalid: Array<SkippedEvent> = []
  const latest = new Map<string, RowChange>()
  const facts: Array<RowChange> = []
  const truncations: Array<Truncation> = []
  const dims: Record<DimTable, { all: boolean; keys: Set<number>; parentKeys: Set<number> }> = Object.fromEntries(
    DIM_TABLES.map((dim) => [dim, { all: false, keys: new Set<number>(), parentKeys: new Set<number>() }])
  ) as Record<DimTable, { all: boolean; keys: Set<number>; parentKeys: Set<number> }>
  let heartbeat: HeartbeatMark | null = null
  let heartbeats = 0
  let duplicates = 0
  let changes = 0

  for (const record of records) {
    if (seen.has(record.id)) {
      duplicates++
      continue
    }
    seen.add(record.id)
    if (record.kind === "heartbeat") {
      heartbeats++
      const lsn = normalizeLsn(record.commitLsn)
      if (!heartbeat || lsnToBigInt(lsn) > lsnToBigInt(heartbeat.lsn)) heartbeat = { eventId: record.id, lsn, committedAt: record.committedAt }
      continue
    }
    if (record.kind === "repair") continue // as projectBatch: replay selects change events only (window.ts)
    if (record.kind === "snapshot-chunk") throw new Error(`snapshot chunk ${record.id} reached the projection: replay's sources read its rows first (sources.ts)`)
    const table = record.source.table
    if (!isTotesysTable(table)) {
      unknown.push({ eventId: record.id, table, reason: "unknown_table", detail: `table ${record.source.schema}.${table} is not part of the star schema`, lsn: normal(record.source.commitLsn), event: null })
      continue
    }
    changes++
    const position: Position = { lsn: normal(record.source.commitLsn), seq: record.source.index }
    if (record.op === "t") {
      truncations.push({ table, eventId: record.id, position, committedAt: record.source.committedAt })
      for (const { dim } of DIM_DEPENDENCIES[table]) dims[dim].all = true
      continue
    }
    try {
      for (const change of rowChanges(record, table, position, (key) => latest.get(mirrorKey(table, key)))) {
        latest.set(mirrorKey(change.table, change.key), change)
        if (FACT_TABLES.has(change.table)) facts.push(change)
        for (const { dim, via } of DIM_DEPENDENCIES[change.table]) (via === "key" ? dims[dim].keys : dims[dim].parentKeys).add(change.key)
      }
    } catch (error) {
      if (!(error instanceof InvalidEvent)) throw error
      invalid.push({ eventId: record.id, table, reason: "invalid", detail: error.message, lsn: position.lsn, event: record })
    }
  }

  const skipped = [...unknown, ...invalid]
  return {
    mirror: [...latest.values()],
    facts,
    truncations,
    dims: Object.fromEntries(
      DIM_TABLES.map((dim): [DimTable, DimKeys] => [dim, { all: dims[dim].all, keys: sortedNumbers(dims[dim].keys), parentKeys: sortedNumbers(dims[dim].parentKeys) }])
    ) as Record<DimTable, DimKeys>,
    heartbeat,
    skipped,
    counts: { records: records.length, changes, heartbeats, duplicates, skipped: skipped.length }
  }
}
