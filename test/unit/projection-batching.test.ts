/**
 * The images the projection completes do not depend on how a lake's events fall into batches:
 * random histories (TOAST columns left unsent, key-only deletes, key changes) delivered with
 * duplicates, applied batch after batch to an in-memory warehouse that keeps apply's two rules
 * (the mirror takes only a newer position; a fact row is written once per event id), must give
 * the same mirror and fact rows in one uninterrupted run, in batches of another size, resumed
 * after a crash (a stretch of events applied again) and split at a position (`--to`, then
 * `--from`). Deleted rows' images are compared exactly.
 *
 * A late delivery (a change arriving after a newer change of its row) is another matter: what it
 * lacks comes from the newest image known when its batch is applied (README, Limitations).
 */
import { describe, expect, it } from "vitest"
import type { ChangeEvent, Row } from "../../contracts/change-event.ts"
import { lsnToBigInt } from "../../contracts/lsn.ts"
import {
  comparePositions,
  completePlan,
  imagesNeeded,
  mirrorKey,
  projectBatch,
  type FactRow,
  type MirrorRow,
  type Position
} from "../../services/warehouse/projection.ts"
import { seededRandom } from "../fixtures/events.ts"
import { randomHistory, shuffleForDelivery } from "../support/random-history.ts"

interface Warehouse {
  readonly mirror: Map<string, MirrorRow>
  readonly facts: Map<string, FactRow>
}

const emptyWarehouse = (): Warehouse => ({ mirror: new Map(), facts: new Map() })

const positionOf = (row: MirrorRow): Position => ({ lsn: row.source_lsn, seq: row.source_seq })

/** One batch as apply applies it: read the mirror rows the plan needs, complete, write under the position guard. */
const applyBatch = (warehouse: Warehouse, events: ReadonlyArray<ChangeEvent>, withPositions: boolean) => {
  const plan = projectBatch(events)
  const images = new Map<string, Row>()
  const positions = new Map<string, Position>()
  for (const { table, key } of imagesNeeded(plan)) {
    const held = warehouse.mirror.get(mirrorKey(table, key))
    if (!held) continue
    images.set(mirrorKey(table, key), held.image)
    positions.set(mirrorKey(table, key), positionOf(held))
  }
  const done = completePlan(plan, images, withPositions ? positions : undefined)
  for (const row of done.mirror) {
    const key = mirrorKey(row.table_name, row.key_id)
    const held = warehouse.mirror.get(key)
    if (!held || comparePositions(positionOf(row), positionOf(held)) > 0) warehouse.mirror.set(key, row)
  }
  for (const rows of Object.values(done.facts)) for (const row of rows) if (!warehouse.facts.has(row.event_id)) warehouse.facts.set(row.event_id, row)
}

/** Applies events[from, to) in batches of `size`. */
const applyRange = (warehouse: Warehouse, events: ReadonlyArray<ChangeEvent>, from: number, to: number, size: number, withPositions = true) => {
  for (let i = from; i < to; i += size) applyBatch(warehouse, events.slice(i, Math.min(i + size, to)), withPositions)
  return warehouse
}

/** Comparable text of a warehouse: mirror rows (images as jsonb keeps them: keys in order) and fact rows, sorted. */
const contents = (warehouse: Warehouse) => ({
  mirror: [...warehouse.mirror.values()].map((row) => JSON.stringify({ ...row, image: Object.fromEntries(Object.entries(row.image).sort(([a], [b]) => (a < b ? -1 : 1))) })).sort(),
  facts: [...warehouse.facts.values()].map((row) => JSON.stringify(row)).sort()
})

const histories = (late: number) =>
  [11, 12, 13, 14, 15, 16].map((seed) =>
    shuffleForDelivery(randomHistory({ seed, transactions: 500, keys: 5, truncateRate: 0 }), seededRandom(seed), { duplicate: 0.15, late })
  )

/** The ways of cutting the same delivery into batches a replay can take. */
const ways = (events: ReadonlyArray<ChangeEvent>) => {
  const n = events.length
  const crashAt = Math.floor(n * 0.6)
  const resumeFrom = crashAt - 70
  const middle = events[Math.floor(n / 2)]!.source.commitLsn
  const before = events.filter((e) => lsnToBigInt(e.source.commitLsn) <= lsnToBigInt(middle))
  const after = events.filter((e) => lsnToBigInt(e.source.commitLsn) > lsnToBigInt(middle))
  return {
    "batches of 29": () => applyRange(emptyWarehouse(), events, 0, n, 29),
    "batches of 200": () => applyRange(emptyWarehouse(), events, 0, n, 200),
    "resumed after a crash": () => applyRange(applyRange(emptyWarehouse(), events, 0, crashAt, 40), events, resumeFrom, n, 40),
    "split at a position (--to, then --from)": () => {
      const warehouse = applyRange(emptyWarehouse(), before, 0, before.length, 40)
      return applyRange(warehouse, after, 0, after.length, 40)
    }
  }
}

describe("completed images do not depend on batching", () => {
  it("random histories with duplicates: uninterrupted, other batch sizes, resumed, split — the same mirror and fact rows", () => {
    let keyOnlyDeletes = 0
    for (const events of histories(0)) {
      const expected = contents(applyRange(emptyWarehouse(), events, 0, events.length, 40))
      keyOnlyDeletes += events.filter((e) => e.op === "d" && e.before && Object.keys(e.before).length === 1).length
      for (const [name, build] of Object.entries(ways(events))) expect(contents(build()), name).toEqual(expected)
    }
    expect(keyOnlyDeletes).toBeGreaterThan(50)
  })

  it("(the comparison can fail: letting a stale duplicate in the batch supply, as before, changes deleted rows' images)", () => {
    let differing = 0
    for (const events of histories(0)) {
      const expected = contents(applyRange(emptyWarehouse(), events, 0, events.length, 40, false))
      const resumed = contents(applyRange(applyRange(emptyWarehouse(), events, 0, Math.floor(events.length * 0.6), 40, false), events, Math.floor(events.length * 0.6) - 70, events.length, 40, false))
      const split = contents(applyRange(emptyWarehouse(), events, 0, events.length, 29, false))
      for (const other of [resumed, split]) if (JSON.stringify(other) !== JSON.stringify(expected)) differing++
    }
    expect(differing).toBeGreaterThan(0)
  })
})
