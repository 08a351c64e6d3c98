/**
 * Random change histories of every totesys table, for comparing two ways of applying the same
 * events: a snapshot, then transactions of inserts, updates (some with unsent TOAST columns, some
 * changing the primary key), deletes (full and key-only images), truncations, and a few events the
 * warehouse must skip (a key that is not an integer, a table it does not know), and optionally
 * changes that no longer fit the warehouse (a used column missing or of another type: the table
 * pauses and its later changes are parked). Values carry the
 * characters that need escaping on the way into Postgres (tabs, newlines, backslashes, quotes).
 * Deterministic for a seed.
 *
 *   randomHistory({ seed: 7, transactions: 400 }) → ChangeEvent[] in commit order
 *   shuffleForDelivery(events, random)              → duplicates and out-of-order delivery
 */
import type { ChangeEvent, Row } from "../../contracts/change-event.ts"
import { lsnFromBigInt } from "../../contracts/lsn.ts"
import { PRIMARY_KEYS, SOURCE_COLUMNS, TOTESYS_TABLES, type TotesysTable } from "../../contracts/totesys.ts"
import { usedColumns } from "../../contracts/warehouse-catalogue.ts"
import { changeEvent, seededRandom, snapshotEvent, truncateEvent } from "../fixtures/events.ts"

const TEXTS = ["plain", "O'Keefe", "tab\there", "line\nbreak", "back\\slash", 'quote "q"', "comma, semi;", "é ü 東京", "\\N", ""]

const pad = (n: number) => String(n).padStart(2, "0")

export interface RandomHistoryOptions {
  readonly seed: number
  readonly transactions: number
  /** Keys per table (small: changes pile up on the same rows). */
  readonly keys?: number
  /** Chance of a truncation per transaction (default 0.01). */
  readonly truncateRate?: number
  /** Whether to include events the warehouse must skip (default true). */
  readonly invalid?: boolean
  /** Chance that an insert or update no longer fits the warehouse (a schema change; default 0). */
  readonly breakingRate?: number
}

export const randomHistory = (options: RandomHistoryOptions): Array<ChangeEvent> => {
  const random = seededRandom(options.seed)
  const keys = options.keys ?? 6
  const pick = <A>(values: ReadonlyArray<A>): A => values[Math.floor(random() * values.length)]!
  const int = (n: number) => 1 + Math.floor(random() * n)
  let clock = Date.parse("2024-02-26T08:00:00Z")
  const stamp = () => {
    const at = new Date(clock)
    return `${at.toISOString().slice(0, 10)}T${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:${pad(at.getUTCSeconds())}.${String(at.getUTCMilliseconds()).padStart(3, "0")}`
  }
  const day = (offsetDays: number) => new Date(clock + offsetDays * 86_400_000).toISOString().slice(0, 10)

  const valueOf = (table: TotesysTable, column: string, key: number): Row[string] => {
    if (column === PRIMARY_KEYS[table]) return key
    if (column === "created_at" || column === "last_updated") return stamp()
    if (column.endsWith("_date")) return day(int(20) - 5)
    if (column === "unit_price" || column === "item_unit_price" || column === "payment_amount") return `${int(90_000)}.${pad(int(99))}`
    if (column === "units_sold" || column === "item_quantity" || column.endsWith("_ac_number")) return int(100_000)
    if (column === "paid") return random() < 0.5
    if (column === "currency_code") return pick(["GBP", "USD", "EUR", "XYZ"])
    if (column === "transaction_type") return pick(["SALE", "PURCHASE"])
    if (column === "payment_type_name") return pick(["SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND"])
    if (column === "sales_order_id" || column === "purchase_order_id") return random() < 0.3 ? null : int(keys)
    if (column.endsWith("_id")) return int(keys)
    if (column === "address_line_2" || column === "district" || column === "delivery_contact" || column === "location") return random() < 0.3 ? null : pick(TEXTS)
    return `${pick(TEXTS)} ${int(1000)}`
  }
  const rowOf = (table: TotesysTable, key: number): Row => Object.fromEntries(SOURCE_COLUMNS[table].map((column) => [column, valueOf(table, column, key)]))

  /** The image as a schema change would send it: a column the warehouse uses dropped, or of another type. */
  const breaking = (table: TotesysTable, image: Row): Row => {
    const column = pick(Object.keys(usedColumns(table)).filter((c) => c !== PRIMARY_KEYS[table]))
    if (random() < 0.5) return Object.fromEntries(Object.entries(image).filter(([c]) => c !== column))
    return { ...image, [column]: [image[column] ?? null] }
  }
  // No draw at all without the option: the histories of a seed stay what they were.
  const maybeBreaking = (table: TotesysTable, image: Row): Row =>
    (options.breakingRate ?? 0) > 0 && random() < options.breakingRate! && Object.keys(usedColumns(table)).length > 1 ? breaking(table, image) : image

  const state = new Map<TotesysTable, Map<number, Row>>(TOTESYS_TABLES.map((t) => [t, new Map()]))
  const events: Array<ChangeEvent> = []
  const snapshotAt = new Date(clock - 3_600_000).toISOString()
  for (const table of TOTESYS_TABLES) {
    for (let key = 1; key <= Math.ceil(keys / 2); key++) {
      const row = rowOf(table, key)
      state.get(table)!.set(key, row)
      events.push(snapshotEvent(table, row, { snapshotLsn: "0/3000000", committedAt: snapshotAt }))
    }
  }

  let lsn = 0x3000000n
  for (let t = 0; t < options.transactions; t++) {
    lsn += BigInt(0x100 + int(0x400))
    clock += int(4 * 3_600_000)
    const committedAt = `${new Date(clock).toISOString().slice(0, 23)}${String(int(999)).padStart(3, "0")}Z`
    const position = (index: number) => ({ commitLsn: lsnFromBigInt(lsn), index, committedAt })
    const changes = int(4)
    for (let index = 0; index < changes; index++) {
      const table = pick(TOTESYS_TABLES)
      const rows = state.get(table)!
      const existing = [...rows.keys()]
      const roll = random()
      const truncateRate = options.truncateRate ?? 0.01
      if (roll >= 0.99 - truncateRate && roll < 0.99) {
        events.push(truncateEvent(table, position(index)))
        rows.clear()
      } else if ((options.invalid ?? true) && roll >= 0.99) {
        // Skipped by the projection (a delete with neither image nor key) or as a table it does not know.
        const event = changeEvent("c", table, position(index), { after: rowOf(table, 1) })
        if (random() < 0.5) events.push({ ...event, op: "d", key: null, before: null, after: null })
        else events.push({ ...event, source: { ...event.source, table: "audit_log" } })
      } else if (existing.length === 0 || roll < 0.35) {
        const key = existing.length >= keys ? pick(existing) : int(keys * 2)
        const existed = rows.has(key)
        const row = rowOf(table, key)
        rows.set(key, row)
        events.push(changeEvent(existed ? "u" : "c", table, position(index), { after: maybeBreaking(table, row) }))
      } else if (roll < 0.75) {
        const key = pick(existing)
        const before = rows.get(key)!
        const after = { ...before, ...Object.fromEntries(SOURCE_COLUMNS[table].filter(() => random() < 0.4).map((c) => [c, valueOf(table, c, key)])) }
        const toastable = SOURCE_COLUMNS[table].filter((c) => c !== PRIMARY_KEYS[table] && typeof before[c] === "string")
        const unchanged = random() < 0.15 && toastable.length > 0 ? [pick(toastable)] : []
        for (const column of unchanged) after[column] = before[column]!
        rows.set(key, after)
        events.push(changeEvent("u", table, position(index), { after: maybeBreaking(table, after), unchanged }))
      } else if (roll < 0.8) {
        // The primary key changes (an update with the old key in its before image).
        const key = pick(existing)
        const to = int(keys * 3)
        if (rows.has(to)) continue
        const before = rows.get(key)!
        const after = { ...before, [PRIMARY_KEYS[table]]: to }
        rows.delete(key)
        rows.set(to, after)
        events.push({ ...changeEvent("u", table, position(index), { after }), key: { [PRIMARY_KEYS[table]]: key }, before: random() < 0.5 ? before : null })
      } else {
        const key = pick(existing)
        const before = rows.get(key)!
        rows.delete(key)
        events.push(random() < 0.5 ? changeEvent("d", table, position(index), { before }) : changeEvent("d", table, position(index), { before: { [PRIMARY_KEYS[table]]: key } }))
      }
    }
  }
  return events
}

/**
 * The events as a lake may deliver them: every event at least once, in arrival order, with
 * some delivered twice and some moved later (as after a reshard or a redelivered batch).
 */
export const shuffleForDelivery = <A>(events: ReadonlyArray<A>, random: () => number, rates = { duplicate: 0.05, late: 0.05 }): Array<A> => {
  const out: Array<A> = []
  const late: Array<A> = []
  for (const event of events) {
    if (random() < rates.late) late.push(event)
    else out.push(event)
    if (random() < rates.duplicate) late.push(event)
    // late events arrive a little later, in a burst
    if (late.length > 0 && random() < 0.05) out.push(...late.splice(0))
  }
  return [...out, ...late]
}
