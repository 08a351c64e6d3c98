/**
 * Pure core of the online table repair (the watermark technique of DBLog and Debezium's
 * incremental snapshots): the intake's view of the chunks being re-read. No I/O.
 *
 * For every chunk the repair task (table-repair.ts) registers the chunk (`expect`), writes a low
 * watermark into the WAL, waits until every transaction that was open at that moment has ended,
 * selects the chunk (`supply`) and writes a high watermark. In the stream:
 *
 *   low watermark L   the window opens: every change of the table from here on is noted (`observe`)
 *   high watermark H  the window closes: chunk rows whose key the stream changed inside the window
 *                     are dropped (the stream's own change is newer or as new); the others are
 *                     published as op "r" events at position (H, -1), followed by a RepairedRange
 *                     record that says which keys of the chunk's key range existed at H.
 *
 * Why (H, -1) is the right position. The warehouse keeps the newest change of a row by (commit
 * LSN, index). H is the LSN of a WAL marker, which no transaction's commit record shares, and
 * the stream delivers transactions in commit-LSN order with the markers in between, so every
 * change before H in the stream sorts before (H, -1) and every change after it sorts after. A
 * published chunk row must be newer than the first kind and older than the second:
 *   - a transaction that committed before L is visible to the chunk's snapshot: the snapshot is
 *     taken only after every transaction open at L (and so every one whose commit record precedes
 *     L but was not yet visible) has ended;
 *   - a transaction that committed between L and H changed keys the window noted: their rows are
 *     dropped, whether the snapshot saw that transaction or not;
 *   - a transaction that committed after H cannot be visible to the snapshot (taken before H was
 *     written): its change is newer than the row, and (H, -1) sorts before it.
 * So a published row is exactly the row as of H, and the range record's absent keys are exactly
 * the keys that did not exist at H.
 *
 * The chunks cover the keys up to the largest one when the table's repair began (its start
 * marker A, read after the transactions open at A ended); the keys above it are covered by one
 * range at (A, -1) with no key present (`tailRange`): at A none of them existed, and a row
 * inserted since has a newer position. So a table that grows faster than it is read still ends,
 * and rows the warehouse holds beyond the source's largest key are deleted too.
 */
import { repairedRangeId, repairEventId, SCHEMA_VERSION, type ChangeEvent, type RepairedRange, type Row } from "../../contracts/change-event.ts"
import { normalizeLsn } from "../../contracts/lsn.ts"

export interface ChunkPlan {
  /** Unique per attempt (a chunk read again after a reconnection gets a new id). */
  readonly id: string
  readonly repair: string
  readonly table: string
  /** The table's primary key: a single integer column. */
  readonly keyColumn: string
  /** The chunk holds the keys after this one (null: from the smallest). */
  readonly after: number | null
}

export interface ChunkRead {
  /** The chunk's rows in key order, as lossless JSON. */
  readonly rows: ReadonlyArray<Row>
  /** The last key of the chunk; null when the chunk reached the end of the table (the range is unbounded above). */
  readonly through: number | null
}

export type ChunkOutcome =
  | {
      readonly _tag: "Published"
      readonly events: ReadonlyArray<ChangeEvent>
      readonly range: RepairedRange
      readonly highWatermark: string
      readonly published: number
      readonly superseded: number
    }
  /** The table was truncated while the chunk was read (or a change's key could not be read): read it again. */
  | { readonly _tag: "Truncated"; readonly highWatermark: string }

export type WatermarkEdge = "low" | "high"

/** The content of a repair marker (JSON in the WAL message). */
export const markerContent = (chunk: string, edge: WatermarkEdge, at: string) => JSON.stringify({ chunk, edge, at })

const parseMarker = (content: string): { chunk: string; edge: WatermarkEdge; at: string } | undefined => {
  try {
    const value = JSON.parse(content) as { chunk?: unknown; edge?: unknown; at?: unknown }
    if (typeof value.chunk !== "string" || (value.edge !== "low" && value.edge !== "high")) return undefined
    const at = typeof value.at === "string" && !Number.isNaN(Date.parse(value.at)) ? value.at : new Date().toISOString()
    return { chunk: value.chunk, edge: value.edge, at }
  } catch {
    return undefined
  }
}

const safeInteger = (value: Row[string] | undefined): number | undefined => {
  const n = typeof value === "number" ? value : typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : Number.NaN
  return Number.isSafeInteger(n) ? n : undefined
}

/** An integer key value (int8 arrives as text); anything else cannot be repaired by key range. */
export const integerKey = (value: Row[string] | undefined, column: string): number => {
  const n = safeInteger(value)
  if (n === undefined) throw new Error(`primary key ${column} is not an integer a repair can range over: ${JSON.stringify(value)}`)
  return n
}

const inRange = (key: number, after: number | null, through: number | null) => (after === null || key > after) && (through === null || key <= through)

interface Pending {
  readonly plan: ChunkPlan
  open: boolean
  truncated: boolean
  readonly changed: Set<number>
  read: ChunkRead | undefined
}

/** The range above the largest key at the table's start marker `startLsn` (null: the table was empty). */
export const tailRange = (options: {
  readonly database: string
  readonly repair: string
  readonly table: string
  readonly keyColumn: string
  readonly startLsn: string
  readonly committedAt: string
  readonly upperKey: number | null
}): RepairedRange => {
  const at = normalizeLsn(options.startLsn)
  return {
    kind: "repair",
    schemaVersion: SCHEMA_VERSION,
    id: repairedRangeId(at, options.table, options.upperKey, null),
    repair: options.repair,
    source: { db: options.database, schema: "public", table: options.table, commitLsn: at, lsn: null, xid: null, committedAt: options.committedAt, index: -1, snapshot: true },
    keyColumn: options.keyColumn,
    afterKey: options.upperKey,
    throughKey: null,
    presentKeys: []
  }
}

export class RepairWindows {
  private readonly pending = new Map<string, Pending>()
  /** Open windows by table (what `observe` looks at). */
  private readonly open = new Map<string, Array<Pending>>()

  constructor(private readonly database: string) {}

  /** Registers a chunk before its low watermark is written. */
  expect(plan: ChunkPlan): void {
    this.pending.set(plan.id, { plan, open: false, truncated: false, changed: new Set(), read: undefined })
  }

  /** The chunk's rows, given before its high watermark is written. */
  supply(chunkId: string, read: ChunkRead): void {
    const pending = this.pending.get(chunkId)
    if (pending) pending.read = read
  }

  /** Forgets a chunk (its task gave up on it). */
  forget(chunkId: string): void {
    const pending = this.pending.get(chunkId)
    if (!pending) return
    this.pending.delete(chunkId)
    this.close(pending)
  }

  /** Every change event of the stream, in stream order. */
  observe(event: ChangeEvent): void {
    if (this.open.size === 0) return
    const windows = this.open.get(event.source.table)
    if (!windows) return
    for (const window of windows) {
      if (event.op === "t") {
        window.truncated = true
        continue
      }
      const column = window.plan.keyColumn
      for (const image of [event.key, event.before, event.after]) {
        // The new key, and the old one of an update that changed it.
        if (!image || !(column in image)) continue
        const key = safeInteger(image[column])
        // Never throw on the stream's path: a key the window cannot read makes the chunk be read again.
        if (key === undefined) window.truncated = true
        else window.changed.add(key)
      }
    }
  }

  /**
   * A repair marker reached the intake (between transactions). A low watermark opens its chunk's
   * window; a high watermark closes it and returns what to publish. Markers of chunks this
   * session did not register (an earlier session's, sent again after a reconnection) are ignored.
   */
  marker(message: { readonly lsn: string; readonly content: string }): { readonly chunkId: string; readonly outcome: ChunkOutcome } | undefined {
    const marker = parseMarker(message.content)
    if (!marker) return undefined
    const pending = this.pending.get(marker.chunk)
    if (!pending) return undefined
    if (marker.edge === "low") {
      if (!pending.open) {
        pending.open = true
        const list = this.open.get(pending.plan.table) ?? []
        list.push(pending)
        this.open.set(pending.plan.table, list)
      }
      return undefined
    }
    if (!pending.open || !pending.read) return undefined // cannot happen in order; never publish half a window
    this.pending.delete(marker.chunk)
    this.close(pending)
    const highWatermark = normalizeLsn(message.lsn)
    if (pending.truncated) return { chunkId: marker.chunk, outcome: { _tag: "Truncated", highWatermark } }
    return { chunkId: marker.chunk, outcome: this.publish(pending, highWatermark, marker.at) }
  }

  /** Chunks registered and not yet published. */
  get size(): number {
    return this.pending.size
  }

  private close(pending: Pending) {
    const list = this.open.get(pending.plan.table)
    if (!list) return
    const rest = list.filter((p) => p !== pending)
    if (rest.length > 0) this.open.set(pending.plan.table, rest)
    else this.open.delete(pending.plan.table)
  }

  private publish(pending: Pending, highWatermark: string, committedAt: string): ChunkOutcome {
    const { plan, changed } = pending
    const read = pending.read!
    const source = {
      db: this.database,
      schema: "public",
      table: plan.table,
      commitLsn: highWatermark,
      lsn: null,
      xid: null,
      committedAt,
      index: -1,
      snapshot: true
    }
    const events: Array<ChangeEvent> = []
    const present = new Set<number>()
    let superseded = 0
    for (const row of read.rows) {
      const key = integerKey(row[plan.keyColumn], plan.keyColumn)
      present.add(key)
      if (changed.has(key)) {
        superseded++
        continue
      }
      events.push({
        kind: "change",
        schemaVersion: SCHEMA_VERSION,
        id: repairEventId(highWatermark, plan.table, key),
        op: "r",
        source,
        key: { [plan.keyColumn]: row[plan.keyColumn]! },
        before: null,
        after: row,
        unchanged: []
      })
    }
    for (const key of changed) if (inRange(key, plan.after, read.through)) present.add(key)
    const range: RepairedRange = {
      kind: "repair",
      schemaVersion: SCHEMA_VERSION,
      id: repairedRangeId(highWatermark, plan.table, plan.after, read.through),
      repair: plan.repair,
      source,
      keyColumn: plan.keyColumn,
      afterKey: plan.after,
      throughKey: read.through,
      presentKeys: [...present].sort((a, b) => a - b)
    }
    return { _tag: "Published", events, range, highWatermark, published: events.length, superseded }
  }
}
