/**
 * Rebuilds the source's current state from the events on a stream (snapshot reads, then changes
 * in commit order) — an independent check that the stream carries exactly the source's history.
 */
import type { ChangeEvent, Row } from "../../contracts/change-event.ts"
import { compareLsn } from "../../contracts/lsn.ts"
import { PRIMARY_KEYS, TOTESYS_TABLES, type TotesysTable } from "../../contracts/totesys.ts"
import { queryEncoded } from "../fixtures/events.ts"
import type pg from "pg"

export const byPosition = (a: ChangeEvent, b: ChangeEvent) => compareLsn(a.source.commitLsn, b.source.commitLsn) || a.source.index - b.source.index

export const reconstruct = (events: ReadonlyArray<ChangeEvent>): Record<string, Map<string, Row>> => {
  const state: Record<string, Map<string, Row>> = {}
  for (const table of TOTESYS_TABLES) state[table] = new Map()
  const distinct = new Map(events.map((e) => [e.id, e]))
  for (const event of [...distinct.values()].sort(byPosition)) {
    const rows = state[event.source.table]!
    const key = (row: Row | null) => String(row?.[PRIMARY_KEYS[event.source.table as TotesysTable]])
    if (event.op === "t") rows.clear()
    else if (event.op === "d") rows.delete(key(event.key))
    else {
      if (event.op === "u" && event.before && key(event.before) !== key(event.after)) rows.delete(key(event.before))
      const previous = rows.get(key(event.after))
      const merged: Row = { ...(previous ?? {}), ...event.after }
      rows.set(key(event.after), merged)
    }
  }
  return state
}

export const sourceState = async (client: pg.ClientBase): Promise<Record<string, Map<string, Row>>> => {
  const state: Record<string, Map<string, Row>> = {}
  for (const table of TOTESYS_TABLES) {
    const rows = await queryEncoded(client, `SELECT * FROM "${table}"`)
    state[table] = new Map(rows.map((r) => [String(r[PRIMARY_KEYS[table]]), r]))
  }
  return state
}

/** Plain objects sorted by key, for readable equality failures. */
export const comparable = (state: Record<string, Map<string, Row>>) =>
  Object.fromEntries(Object.entries(state).map(([table, rows]) => [table, [...rows.entries()].sort(([a], [b]) => Number(a) - Number(b)).map(([, row]) => row)]))
