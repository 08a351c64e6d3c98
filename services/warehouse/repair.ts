/**
 * [repair] The consumer's side of the online table repair (`totes resnapshot`): a repaired range
 * (contracts/change-event.ts RepairedRange) becomes ordinary deletes before projection, so the
 * position guard, the fact history and the dimension recomputation treat them like any delete.
 *
 * The range says: at its position (H, -1) no row of its table existed whose key lies in
 * (afterKey, throughKey] and is not listed in `presentKeys`. So every such row the warehouse still holds
 * as live with an older position is deleted at (H, -1): the row was deleted in the source while
 * no change was captured (a lost slot), or never existed (a row written into the warehouse by
 * hand). "Holds as live" is the newest of the mirror's row (committed before this batch) and the
 * batch's own changes of that key older than the range; a row already deleted is left alone (no
 * second 'd' fact row). Changes newer than the range win by position, as always.
 *
 * The derived delete's id is `<range id>:<key>`: a range delivered twice, or replayed, derives the
 * same ids and the fact history stays one row per delete. Runs inside apply's transaction, under
 * the exclusive apply lock (apply.ts takes it for a batch with a range), before projection.
 */
import type pg from "pg"
import { SCHEMA_VERSION, type ChangeEvent, type RepairedRange, type StreamRecord } from "../../contracts/change-event.ts"
import { compareLsn, normalizeLsn } from "../../contracts/lsn.ts"
import { isTotesysTable } from "../../contracts/totesys.ts"

/** What apply's statements offer: a statement in the open transaction, answered in order. */
export interface StatementSink {
  add(sql: string, params?: ReadonlyArray<unknown>): Promise<pg.QueryResult>
}

interface Position {
  readonly lsn: string
  readonly seq: number
}

const compare = (a: Position, b: Position) => compareLsn(a.lsn, b.lsn) || a.seq - b.seq

const inRange = (key: number, range: RepairedRange) => (range.afterKey === null || key > range.afterKey) && (range.throughKey === null || key <= range.throughKey)

const keyOf = (event: ChangeEvent, column: string): number | undefined => {
  const image = event.after ?? event.before ?? event.key
  const value = image?.[column]
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value) : Number.NaN
  return Number.isSafeInteger(n) ? n : undefined
}

/**
 * Pure: the keys a range deletes, from the live mirror rows (`liveInMirror`: key → the row's
 * position; rows outside the range, listed, or not older than it are left alone) and the batch's changes.
 */
export const keysToDelete = (range: RepairedRange, liveInMirror: ReadonlyMap<number, Position>, batch: ReadonlyArray<StreamRecord>): Array<number> => {
  const at: Position = { lsn: normalizeLsn(range.source.commitLsn), seq: range.source.index }
  const present = new Set(range.presentKeys)
  const concerned = (key: number, position: Position) => !present.has(key) && inRange(key, range) && compare(position, at) < 0
  const latest = new Map<number, { position: Position; live: boolean }>()
  for (const [key, position] of liveInMirror) if (concerned(key, position)) latest.set(key, { position, live: true })
  for (const record of batch) {
    if (record.kind !== "change" || record.source.table !== range.source.table || record.op === "t") continue
    const key = keyOf(record, range.keyColumn)
    const position: Position = { lsn: normalizeLsn(record.source.commitLsn), seq: record.source.index }
    if (key === undefined || !concerned(key, position)) continue
    const known = latest.get(key)
    if (!known || compare(position, known.position) > 0) latest.set(key, { position, live: record.op !== "d" })
  }
  return [...latest].filter(([, state]) => state.live).map(([key]) => key).sort((a, b) => a - b)
}

/** The delete a range derives for one key: key-only (the image comes from the mirror, as for any key-only delete). */
export const derivedDelete = (range: RepairedRange, key: number): ChangeEvent => ({
  kind: "change",
  schemaVersion: SCHEMA_VERSION,
  id: `${range.id}:${key}`,
  op: "d",
  source: range.source,
  key: { [range.keyColumn]: key },
  before: { [range.keyColumn]: key },
  after: null,
  unchanged: []
})

/** Whether a batch holds a repaired range (apply takes the exclusive lock for it). */
export const hasRepairedRanges = (records: ReadonlyArray<StreamRecord>): boolean => records.some((r) => r.kind === "repair")

/**
 * The batch with every repaired range replaced by the deletes it implies (one query per range, in
 * the open transaction). A range of a table the warehouse does not build on is dropped.
 */
export const withRepairDeletes = async (sql: StatementSink, p: string, records: ReadonlyArray<StreamRecord>): Promise<ReadonlyArray<StreamRecord>> => {
  if (!hasRepairedRanges(records)) return records
  const out: Array<StreamRecord> = []
  for (const record of records) {
    if (record.kind !== "repair") {
      out.push(record)
      continue
    }
    if (!isTotesysTable(record.source.table)) continue
    const { rows } = await sql.add(
      `SELECT m.key_id, m.source_lsn::text AS lsn, m.source_seq FROM ${p}.mirror_current m
       WHERE m.table_name = $1 AND NOT m.deleted
         AND ($2::bigint IS NULL OR m.key_id > $2::bigint) AND ($3::bigint IS NULL OR m.key_id <= $3::bigint)
         AND m.key_id <> ALL($4::bigint[])
         AND (m.source_lsn, m.source_seq) < ($5::pg_lsn, $6::integer)`,
      [record.source.table, record.afterKey, record.throughKey, record.presentKeys, record.source.commitLsn, record.source.index]
    )
    const live = new Map<number, Position>(
      (rows as Array<{ key_id: string; lsn: string; source_seq: number }>).map((r) => [Number(r.key_id), { lsn: normalizeLsn(r.lsn), seq: r.source_seq }])
    )
    for (const key of keysToDelete(record, live, records)) out.push(derivedDelete(record, key))
  }
  return out
}
