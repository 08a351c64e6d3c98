/**
 * The projection: the pure core of the consumer. No I/O.
 *
 *   projectBatch(records)             decoded StreamRecords of one shard batch → Plan
 *   projectSortedBatch(records)       the same for records already in source order (replay)
 *   imagesNeeded(plan)                mirror rows apply must read to complete the plan
 *   completePlan(plan, images, positions)
 *                                     → CompletedPlan: mirror rows, fact rows, dates, placeholders
 *
 * A Plan says what the batch changes: the latest version of every source row it touches (for
 * the position-guarded mirror), one fact change per committed insert/update/delete/snapshot row
 * of sales_order, purchase_order and payment, the truncations, which dimension keys to
 * recompute, the newest heartbeat and what was skipped. Positions are (commit LSN, index within
 * the transaction), snapshot rows having index -1, compared lexicographically.
 *
 * Two things cannot be known from the events alone: a TOAST column an update did not send
 * (`unchanged`) and the values of a delete that carries only the key. Both are taken from the
 * row's previous image: from an earlier change in the same batch (`prior`, `inherited`) when
 * there is one, otherwise from the warehouse's mirror (`fill`). `completePlan` decides: an earlier
 * change in the batch supplies only when it is newer than the mirror's row (a duplicate or late
 * delivery in the batch can be older than what the mirror already holds: then the mirror's image
 * does), so duplicates do not make the image depend on how events fell into batches (late
 * deliveries still can: README, Limitations). A missing value is never turned into NULL while a
 * previous image has it.
 */
import type { ChangeEvent, Row, StreamRecord } from "../../contracts/change-event.ts"
import { lsnToBigInt, normalizeLsn, type Lsn } from "../../contracts/lsn.ts"
import { DIMENSION_NAMES, diagramColumns, FACT_NAMES, STAR_SCHEMA, type DimensionName, type FactName, type StarColumn } from "../../contracts/star-schema.ts"
import { isTotesysTable, PRIMARY_KEYS, SOURCE_COLUMNS, type TotesysTable } from "../../contracts/totesys.ts"

type Json = Row[string]

/** Columns of each source table: tells a complete delete image from a key-only one. */
export { SOURCE_COLUMNS }

/** A record with one entry per fact. */
const perFact = <A>(make: (fact: FactName) => A): Record<FactName, A> => Object.fromEntries(FACT_NAMES.map((fact) => [fact, make(fact)])) as Record<FactName, A>

/** The dimensions derived from source rows, and the facts (contracts/star-schema.ts). */
export type DimTable = DimensionName
export type FactTable = FactName

export const DIM_TABLES: ReadonlyArray<DimTable> = DIMENSION_NAMES

/** The source table of each fact. */
export const FACT_SOURCES = perFact((fact): TotesysTable => STAR_SCHEMA[fact].source)

const factOf = (table: TotesysTable): FactTable | undefined =>
  (Object.keys(FACT_SOURCES) as Array<FactTable>).find((fact) => FACT_SOURCES[fact] === table)

/**
 * Which dimension rows a change of a source row affects: by the row's own key, or as the
 * parent of other rows (an address is the legal address of counterparties, a department has staff).
 */
export const DIM_DEPENDENCIES: Record<TotesysTable, ReadonlyArray<{ readonly dim: DimTable; readonly via: "key" | "parent" }>> = {
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

export interface Position {
  /** Commit LSN, normalised (unpadded upper case). */
  readonly lsn: Lsn
  /** Index within the transaction; -1 for snapshot rows. */
  readonly seq: number
}

export const comparePositions = (a: Position, b: Position): number => {
  const x = lsnToBigInt(a.lsn)
  const y = lsnToBigInt(b.lsn)
  if (x !== y) return x < y ? -1 : 1
  return a.seq - b.seq
}

/** One change of one source row, with the row's image after it (a delete: the last known image). */
export interface RowChange {
  readonly table: TotesysTable
  readonly key: number
  readonly op: "c" | "u" | "d" | "r"
  readonly eventId: string
  readonly position: Position
  readonly committedAt: string
  readonly image: Row
  /** Columns the image still lacks; they come from the mirror's image of `fillKey` (this key unless the key changed). */
  readonly fill: ReadonlyArray<string>
  readonly fillKey: number
  /**
   * The earlier change of the row in this batch that the image's missing columns came from, or
   * passed through (absent: none was missing, or there was no earlier change), and the columns
   * taken from its image. completePlan takes them from the mirror instead when its row is at
   * least as new as `prior`.
   */
  readonly prior?: RowChange
  readonly inherited?: ReadonlyArray<string>
}

export interface Truncation {
  readonly table: TotesysTable
  readonly eventId: string
  readonly position: Position
  readonly committedAt: string
}

export interface DimKeys {
  /** Recompute every row (after a truncation). */
  readonly all: boolean
  /** Rows whose own source row changed. */
  readonly keys: ReadonlyArray<number>
  /** Rows whose parent changed (dim_counterparty: legal address ids; dim_staff: department ids). */
  readonly parentKeys: ReadonlyArray<number>
}

export interface HeartbeatMark {
  readonly eventId: string
  readonly lsn: Lsn
  readonly committedAt: string
}

export interface SkippedEvent {
  readonly eventId: string
  readonly table: string
  readonly reason: "unknown_table" | "invalid"
  readonly detail: string
  readonly lsn: Lsn | null
  /** The event itself when it could not be read (kept for inspection); omitted for unknown tables. */
  readonly event: ChangeEvent | null
}

export interface Plan {
  /** The latest change in this batch of every source row touched: what the mirror should become. */
  readonly mirror: ReadonlyArray<RowChange>
  /** Every change of a fact source row, in source order: one fact row each. */
  readonly facts: ReadonlyArray<RowChange>
  readonly truncations: ReadonlyArray<Truncation>
  readonly dims: Readonly<Record<DimTable, DimKeys>>
  /** The newest heartbeat of the batch. */
  readonly heartbeat: HeartbeatMark | null
  readonly skipped: ReadonlyArray<SkippedEvent>
  readonly counts: {
    readonly records: number
    readonly changes: number
    readonly heartbeats: number
    readonly duplicates: number
    readonly skipped: number
  }
}

/** Thrown for an oversize event whose images were not fetched back before projection. */
export class UnresolvedClaimCheckError extends Error {
  constructor(readonly eventId: string) {
    super(`event ${eventId} carries a claim check: resolve its row images from the lake before projecting it`)
  }
}

/** An event projection cannot use (a missing image, a non-integer key): skipped and recorded, never applied. */
export class InvalidEvent extends Error {}

const keyValue = (row: Row | null | undefined, column: string): number | undefined => {
  if (!row || !(column in row)) return undefined
  const value = row[column]
  const key = typeof value === "number" ? value : typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(key)) throw new InvalidEvent(`primary key ${column} is not an integer: ${JSON.stringify(value)}`)
  return key
}

const NOTHING: ReadonlyArray<string> = Object.freeze([])

/**
 * The image with `missing` columns taken from the previous change of the row in this batch;
 * what that change did not know either is left to fill from the mirror. An image that lacks
 * nothing is returned as it is (no copy: replay projects millions of them). The prior is kept
 * with the columns taken from it: completion may take them from the mirror instead.
 */
const inherit = (
  image: Row,
  missing: ReadonlyArray<string>,
  prior: RowChange | undefined,
  ownKey: number
): { image: Row; fill: ReadonlyArray<string>; fillKey: number; prior?: RowChange; inherited?: ReadonlyArray<string> } => {
  let filled: Record<string, Json> | undefined
  let fill: Array<string> | undefined
  let inherited: Array<string> | undefined
  for (const column of missing) {
    if (column in image) continue
    if (prior && column in prior.image) {
      filled ??= { ...image }
      filled[column] = prior.image[column]!
      inherited ??= []
      inherited.push(column)
    } else if (!prior || prior.fill.includes(column)) {
      fill ??= []
      fill.push(column)
    }
  }
  if (!prior) return { image, fill: fill ?? NOTHING, fillKey: ownKey }
  if (!fill && !inherited) return { image, fill: NOTHING, fillKey: prior.fillKey }
  return { image: filled ?? image, fill: fill ?? NOTHING, fillKey: prior.fillKey, prior, inherited: inherited ?? NOTHING }
}

/** A record with one entry per dimension. */
const perDim = <A>(make: (dim: DimTable) => A): Record<DimTable, A> => {
  const out: Partial<Record<DimTable, A>> = {}
  for (const dim of DIM_TABLES) out[dim] = make(dim)
  return out as Record<DimTable, A>
}

const sortedNumbers = (values: Iterable<number>): Array<number> => [...values].sort((a, b) => a - b)

/** normalizeLsn of the same commit LSN over and over (a transaction's events share it): the last one is remembered. */
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

/** A batch's records taken in: duplicates dropped, heartbeats and unknown tables noted, change events with their positions. */
interface Intake {
  readonly events: Array<{ readonly event: ChangeEvent; readonly table: TotesysTable; readonly position: Position }>
  readonly skipped: Array<SkippedEvent>
  readonly heartbeat: HeartbeatMark | null
  readonly heartbeats: number
  readonly duplicates: number
  readonly records: number
}

const intake = (records: ReadonlyArray<StreamRecord>): Intake => {
  const normal = lsnNormaliser()
  const seen = new Set<string>()
  const events: Intake["events"] = []
  const skipped: Array<SkippedEvent> = []
  let heartbeat: HeartbeatMark | null = null
  let heartbeats = 0
  let duplicates = 0

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
    if (record.kind === "repair") continue // [repair] apply.ts turns a repaired range into deletes first (repair.ts)
    // A snapshot chunk is merged by snapshot-merge.ts, or its rows are read back, before projection.
    if (record.kind === "snapshot-chunk") throw new Error(`snapshot chunk ${record.id} reached the projection: merge it (snapshot-merge.ts) or read its rows first`)
    const table = record.source.table
    if (!isTotesysTable(table)) {
      skipped.push({ eventId: record.id, table, reason: "unknown_table", detail: `table ${record.source.schema}.${table} is not part of the star schema`, lsn: normal(record.source.commitLsn), event: null })
      continue
    }
    events.push({ event: record, table, position: { lsn: normal(record.source.commitLsn), seq: record.source.index } })
  }
  return { events, skipped, heartbeat, heartbeats, duplicates, records: records.length }
}

/** The plan of a batch taken in, its events in source order. */
const plan = ({ events, skipped, heartbeat, heartbeats, duplicates, records }: Intake): Plan => {
  const latest = new Map<string, RowChange>()
  const facts: Array<RowChange> = []
  const truncations: Array<Truncation> = []
  const dims = perDim(() => ({ all: false, keys: new Set<number>(), parentKeys: new Set<number>() }))

  const record = (change: RowChange) => {
    latest.set(mirrorKey(change.table, change.key), change)
    if (factOf(change.table)) facts.push(change)
    for (const { dim, via } of DIM_DEPENDENCIES[change.table]) (via === "key" ? dims[dim].keys : dims[dim].parentKeys).add(change.key)
  }

  for (const { event, table, position } of events) {
    if (event.op === "t") {
      truncations.push({ table, eventId: event.id, position, committedAt: event.source.committedAt })
      for (const { dim } of DIM_DEPENDENCIES[table]) dims[dim].all = true
      continue
    }
    try {
      for (const change of rowChanges(event, table, position, (key) => latest.get(mirrorKey(table, key)))) record(change)
    } catch (error) {
      if (!(error instanceof InvalidEvent)) throw error
      skipped.push({ eventId: event.id, table, reason: "invalid", detail: error.message, lsn: position.lsn, event })
    }
  }

  return {
    mirror: [...latest.values()],
    facts,
    truncations,
    dims: perDim((dim): DimKeys => ({ all: dims[dim].all, keys: sortedNumbers(dims[dim].keys), parentKeys: sortedNumbers(dims[dim].parentKeys) })),
    heartbeat,
    skipped,
    counts: { records, changes: events.length, heartbeats, duplicates, skipped: skipped.length }
  }
}

export const projectBatch = (records: ReadonlyArray<StreamRecord>): Plan => {
  const taken = intake(records)
  // Source order (the sort is stable, so snapshot rows sharing a position keep their order).
  taken.events.sort((a, b) => comparePositions(a.position, b.position))
  return plan(taken)
}

/**
 * projectBatch of records already in source order (commit LSN, then index), without sorting them
 * again: replay's batches (it sorts what it reads) project millions of events this way.
 */
export const projectSortedBatch = (records: ReadonlyArray<StreamRecord>): Plan => plan(intake(records))

/** The row changes one event makes: usually one; an update that changes the primary key also deletes the old key. */
export const rowChanges = (
  event: ChangeEvent,
  table: TotesysTable,
  position: Position,
  priorOf: (key: number) => RowChange | undefined
): Array<RowChange> => {
  const pk = PRIMARY_KEYS[table]
  const base = { table, position, committedAt: event.source.committedAt }
  const needImage = (row: Row | null, what: string): Row => {
    if (row) return row
    if (event.claimCheck) throw new UnresolvedClaimCheckError(event.id)
    throw new InvalidEvent(`${event.op} event without ${what}`)
  }
  const deleteOf = (image: Row, key: number, eventId: string): RowChange => {
    // The before image may be the key only (REPLICA IDENTITY DEFAULT): the rest is the last known image.
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
      // The old key: from the before image (old row or old key tuple), else the event key.
      const oldKey = keyValue(event.before, pk) ?? keyValue(event.key, pk) ?? key
      if (oldKey === key) return [{ ...base, op: "u", key, eventId: event.id, ...inherit(after, event.unchanged, priorOf(key), key) }]
      // The primary key changed: the old key is deleted, the new one carries the old row's unsent columns.
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

// ---------------------------------------------------------------------------------------------
// Completion: fill what the events did not carry from the mirror, then map rows to the star schema.

export const mirrorKey = (table: string, key: number): string => `${table}:${key}`

/** A mirror row completePlan needs, and what for. */
export interface MirrorNeed {
  readonly table: TotesysTable
  readonly key: number
  /** Its image fills columns a change lacks (no earlier change in the batch had them). */
  readonly fills: boolean
  /**
   * The oldest earlier change of this row in the batch that a later change took columns from
   * (null: none). Its image matters only if the mirror's row is at least as new as that change.
   */
  readonly oldestPrior: Position | null
}

/**
 * The (table, key) mirror rows completePlan needs, each once: the rows whose image fills what a
 * change lacks, and the rows of the earlier changes in the batch a change took columns from
 * (whether the mirror is newer than such a change decides which image supplies them).
 */
export const mirrorNeeds = (plan: Plan): ReadonlyArray<MirrorNeed> => {
  const needed = new Map<string, { table: TotesysTable; key: number; fills: boolean; oldestPrior: Position | null }>()
  const entry = (table: TotesysTable, key: number) => {
    const id = mirrorKey(table, key)
    let need = needed.get(id)
    if (!need) needed.set(id, (need = { table, key, fills: false, oldestPrior: null }))
    return need
  }
  const walked = new Set<RowChange>()
  for (const list of [plan.mirror, plan.facts]) {
    for (const change of list) {
      // Along the chain of earlier changes (each once): every prior's row, and the row the first one fills from.
      for (let c: RowChange | undefined = change; c && (c.prior || c.fill.length > 0) && !walked.has(c); c = c.prior) {
        walked.add(c)
        if (c.prior) {
          const need = entry(c.prior.table, c.prior.key)
          if (!need.oldestPrior || comparePositions(c.prior.position, need.oldestPrior) < 0) need.oldestPrior = c.prior.position
        } else entry(c.table, c.fillKey).fills = true
      }
    }
  }
  return [...needed.values()]
}

/** The (table, key) mirror rows completePlan needs (mirrorNeeds without the why). */
export const imagesNeeded = (plan: Plan): ReadonlyArray<{ readonly table: TotesysTable; readonly key: number }> =>
  mirrorNeeds(plan).map(({ table, key }) => ({ table, key }))

/** A mirror row as apply writes it. */
export interface MirrorRow {
  readonly table_name: TotesysTable
  readonly key_id: number
  readonly image: Row
  readonly source_lsn: Lsn
  readonly source_seq: number
  readonly deleted: boolean
  readonly event_id: string
}

/** A fact row: the diagram's columns (lossless JSON values, cast by the table's types) and the metadata. */
export type FactRow = Readonly<Record<string, Json>> & {
  readonly source_seq: number
  readonly change_op: "c" | "u" | "d" | "r"
  readonly event_id: string
  readonly source_lsn: Lsn
  readonly source_committed_at: string
}

export interface CompletedPlan {
  readonly mirror: ReadonlyArray<MirrorRow>
  readonly facts: Readonly<Record<FactTable, ReadonlyArray<FactRow>>>
  /** The dates the fact rows reference ('YYYY-MM-DD'), as a range; null without fact rows. */
  readonly dateRange: { readonly first: string; readonly last: string } | null
  /** Dimension keys the fact rows reference (apply inserts placeholders for those without a row). */
  readonly references: Readonly<Record<DimTable, ReadonlyArray<number>>>
}

/** No positions known: every earlier change in the batch counts as newer than the mirror. */
const NO_POSITIONS: ReadonlyMap<string, Position> = new Map()

/**
 * The completed image of each change (each resolved once; most need nothing). A change takes what
 * it lacks from its prior in the batch, completed the same way, unless the mirror's row of that
 * prior is at least as new as it (the prior is a duplicate or a late delivery): then from the
 * mirror's image, as when the prior falls into an earlier batch. Without a prior, from the mirror.
 */
const completion = (images: ReadonlyMap<string, Row>, positions: ReadonlyMap<string, Position>) => {
  const resolved = new Map<RowChange, Row>()
  /** Sets `columns` from `source` where it has them; a copy only when something changes. */
  const take = (image: Row, source: Row | undefined, columns: ReadonlyArray<string> | undefined, into: Record<string, Json> | undefined) => {
    if (!source || !columns) return into
    for (const column of columns) {
      if (!(column in source) || (column in image && image[column] === source[column])) continue
      into ??= { ...image }
      into[column] = source[column]!
    }
    return into
  }
  const imageOf = (change: RowChange): Row => {
    if (!change.prior && change.fill.length === 0) return change.image
    // Back along the priors (a loop: a row may change thousands of times in a batch) to what the
    // oldest unresolved change takes its columns from; then forward, completing each.
    const chain: Array<RowChange> = []
    let source: Row | undefined
    for (let c = change; ; ) {
      const known = resolved.get(c)
      if (known) {
        source = known
        break
      }
      if (!c.prior) {
        source = take(c.image, images.get(mirrorKey(c.table, c.fillKey)), c.fill, undefined) ?? c.image
        resolved.set(c, source)
        break
      }
      chain.push(c)
      const key = mirrorKey(c.prior.table, c.prior.key)
      const mirrorAt = positions.get(key)
      if (mirrorAt && comparePositions(c.prior.position, mirrorAt) <= 0) {
        source = images.get(key)
        break
      }
      c = c.prior
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const link = chain[i]!
      const image: Row = take(link.image, source, link.fill, take(link.image, source, link.inherited, undefined)) ?? link.image
      resolved.set(link, image)
      source = image
    }
    return source ?? change.image
  }
  return imageOf
}

/**
 * Completes the plan against the mirror as it was before the batch: `images` of the rows
 * imagesNeeded lists, `positions` where those rows stand (source_lsn, source_seq). A row without a
 * known position counts as older than every change in the batch.
 */
export const completePlan = (plan: Plan, images: ReadonlyMap<string, Row>, positions: ReadonlyMap<string, Position> = NO_POSITIONS): CompletedPlan => {
  const complete = completion(images, positions)
  const mirror = plan.mirror.map(
    (change): MirrorRow => ({
      table_name: change.table,
      key_id: change.key,
      image: complete(change),
      source_lsn: change.position.lsn,
      source_seq: change.position.seq,
      deleted: change.op === "d",
      event_id: change.eventId
    })
  )
  const facts: Record<FactTable, Array<FactRow>> = { fact_sales_order: [], fact_purchase_order: [], fact_payment: [] }
  const references = perDim(() => new Set<number>())
  let first: string | null = null
  let last: string | null = null
  for (const change of plan.facts) {
    const fact = factOf(change.table)!
    const row = toFactRow(fact, change, complete(change))
    facts[fact].push(row)
    for (const column of FACT_DATE_COLUMNS[fact]) {
      const date = row[column]
      if (typeof date !== "string") continue
      if (first === null || date < first) first = date
      if (last === null || date > last) last = date
    }
    for (const [column, dim] of FACT_REFERENCES[fact]) {
      const key = row[column]
      if (key !== null && key !== undefined) references[dim].add(Number(key))
    }
  }
  return {
    mirror,
    facts,
    dateRange: first !== null && last !== null ? { first, last } : null,
    references: perDim((dim) => sortedNumbers(references[dim]))
  }
}

// ---------------------------------------------------------------------------------------------
// The star-schema mapping of the three facts (totesys-schema.md §2).

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(?:\.\d+)?)$/
const DATE = /^\d{4}-\d{2}-\d{2}$/

/** `*_date` and `*_time` of a timestamp without zone ("2024-02-23T11:11:10.072"); the time keeps milliseconds. */
export const splitTimestamp = (value: Json | undefined, column: string): { date: string | null; time: string | null } => {
  if (value === null || value === undefined) return { date: null, time: null }
  const match = typeof value === "string" ? TIMESTAMP.exec(value) : null
  if (!match) throw new Error(`${column}: expected a timestamp without zone such as 2024-02-23T11:11:10.072, got ${JSON.stringify(value)}`)
  return { date: match[1]!, time: match[2]! }
}

/** A text date of the source ('YYYY-MM-DD'). */
export const textDate = (value: Json | undefined, column: string): string | null => {
  if (value === null || value === undefined) return null
  if (typeof value === "string" && DATE.test(value)) return value
  throw new Error(`${column}: expected a date YYYY-MM-DD, got ${JSON.stringify(value)}`)
}

const value = (row: Row, column: string): Json => (column in row ? row[column]! : null)

const timestamps = (row: Row) => {
  const created = splitTimestamp(row.created_at, "created_at")
  const updated = splitTimestamp(row.last_updated, "last_updated")
  return { created_date: created.date, created_time: created.time, last_updated_date: updated.date, last_updated_time: updated.time }
}

/** A fact's diagram columns but its record id: what one change of the source row becomes. */
type FactValues<F extends FactTable> = Record<Exclude<StarColumn<F>, (typeof STAR_SCHEMA)[F]["recordId"]>, Json>

/** The diagram's columns of each fact from the source row image (the catalogue makes the compiler check every column is here). */
const FACT_MAPPINGS: { readonly [F in FactTable]: (row: Row) => FactValues<F> } = {
  fact_sales_order: (row) => ({
    sales_order_id: value(row, "sales_order_id"),
    ...timestamps(row),
    sales_staff_id: value(row, "staff_id"),
    counterparty_id: value(row, "counterparty_id"),
    units_sold: value(row, "units_sold"),
    unit_price: value(row, "unit_price"),
    currency_id: value(row, "currency_id"),
    design_id: value(row, "design_id"),
    agreed_payment_date: textDate(row.agreed_payment_date, "agreed_payment_date"),
    agreed_delivery_date: textDate(row.agreed_delivery_date, "agreed_delivery_date"),
    agreed_delivery_location_id: value(row, "agreed_delivery_location_id")
  }),
  fact_purchase_order: (row) => ({
    purchase_order_id: value(row, "purchase_order_id"),
    ...timestamps(row),
    staff_id: value(row, "staff_id"),
    counterparty_id: value(row, "counterparty_id"),
    item_code: value(row, "item_code"),
    item_quantity: value(row, "item_quantity"),
    item_unit_price: value(row, "item_unit_price"),
    currency_id: value(row, "currency_id"),
    agreed_delivery_date: textDate(row.agreed_delivery_date, "agreed_delivery_date"),
    agreed_payment_date: textDate(row.agreed_payment_date, "agreed_payment_date"),
    agreed_delivery_location_id: value(row, "agreed_delivery_location_id")
  }),
  fact_payment: (row) => ({
    payment_id: value(row, "payment_id"),
    ...timestamps(row),
    transaction_id: value(row, "transaction_id"),
    counterparty_id: value(row, "counterparty_id"),
    payment_amount: value(row, "payment_amount"),
    currency_id: value(row, "currency_id"),
    payment_type_id: value(row, "payment_type_id"),
    paid: value(row, "paid"),
    payment_date: textDate(row.payment_date, "payment_date")
  })
}

/** The natural key column of each fact. */
export const FACT_KEYS = perFact((fact): string => STAR_SCHEMA[fact].key)

/** The diagram's columns of each fact after the serial record id, in order. */
export const FACT_COLUMNS = perFact((fact) => diagramColumns(fact))

const factReferences = (fact: FactTable) => Object.entries(STAR_SCHEMA[fact].references) as Array<[string, DimTable | "dim_date"]>

/** Fact columns holding dates (they reference dim_date, which apply extends to cover them). */
export const FACT_DATE_COLUMNS = perFact((fact) => factReferences(fact).filter(([, dim]) => dim === "dim_date").map(([column]) => column))

/** Fact columns that reference a dimension derived from source rows (placeholders until it arrives). */
export const FACT_REFERENCES = perFact((fact) => factReferences(fact).filter((ref): ref is [string, DimTable] => ref[1] !== "dim_date"))

export const toFactRow = (fact: FactTable, change: RowChange, image: Row): FactRow => ({
  ...FACT_MAPPINGS[fact](image),
  // the natural key is known even when a key-only delete's image could not be completed
  [FACT_KEYS[fact]]: change.key,
  source_seq: change.position.seq,
  change_op: change.op,
  event_id: change.eventId,
  source_lsn: change.position.lsn,
  source_committed_at: change.committedAt
})
