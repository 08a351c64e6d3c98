/**
 * Bulk replay = row-by-row replay, on real PostgreSQL: random histories of every table (inserts,
 * updates with unsent TOAST columns, primary-key changes, full and key-only deletes, truncations,
 * invalid events, unknown tables) delivered to the lake with duplicates and late events, replayed
 * once through applyRecords batch by batch and once in bulk (COPY, set-based): every table of the
 * warehouse and of the pipeline state must be equal, with one segment or many, after an
 * interruption and a resume, with tables paused by changes that no longer fit (random schema
 * changes: the same pauses, the same parked events), and with a catch-up (row by row) on top of a
 * bulk rebuild.
 */
import { randomUUID } from "node:crypto"
import { Effect, Option } from "effect"
import { describe, expect, it } from "vitest"
import { replayCheckpointKey } from "../../contracts/checkpoint.ts"
import { compareLsn } from "../../contracts/lsn.ts"
import { comparePositions } from "../../services/warehouse/projection.ts"
import { TOTESYS_TABLES } from "../../contracts/totesys.ts"
import { migrateWarehouse } from "../../services/warehouse/migrate.ts"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { rawObjectKey } from "../../contracts/lake.ts"
import { encodeRawObject } from "../../services/lake/raw.ts"
import { replay, type ReplayOptions, type ReplayReport } from "../../services/replay/replay.ts"
import { parseBound } from "../../services/replay/window.ts"
import { changeEvent, seededRandom } from "../fixtures/events.ts"
import type { Rows } from "../fixtures/derive-star-schema.ts"
import { dumpOf } from "../support/lake.ts"
import { memoryCheckpoints, memoryLake } from "../support/lake-memory.ts"
import { randomHistory, shuffleForDelivery } from "../support/random-history.ts"
import { connect, freshDatabase } from "../support/stack.ts"

/** Writes the events into a lake in this order, `perObject` events an object, object keys in the same order. */
const lakeWith = async (events: ReadonlyArray<ChangeEvent>, perObject: number) => {
  const lake = memoryLake()
  const start = Date.parse("2024-02-26T08:00:00Z")
  for (let i = 0; i < events.length; i += perObject) {
    const key = rawObjectKey(new Date(start + i * 1_000), "test", String(i).padStart(12, "0"), randomUUID())
    await Effect.runPromise(lake.putNew(key, encodeRawObject(events.slice(i, i + perObject).map((e) => JSON.stringify(e))), "application/x-ndjson"))
  }
  return lake
}

/** The warehouse and pipeline state, plus what schema changes leave behind. */
const stateOf = async (url: string): Promise<Record<string, Rows>> => {
  const dump = await dumpOf(url)
  const client = await connect(url)
  try {
    for (const [name, sql] of Object.entries({
      paused_table: "SELECT table_name, column_name, problem, detail, first_event_id, first_lsn, first_seq, first_committed_at FROM totes.paused_table",
      parked_event: "SELECT event_id, table_name, source_lsn, source_seq, event FROM totes.parked_event"
    })) {
      dump[name] = (await client.query(`SELECT q::text AS row FROM (${sql}) q ORDER BY 1`)).rows as Rows
    }
    return dump
  } finally {
    await client.end()
  }
}

const expectSameState = (actual: Record<string, Rows>, expected: Record<string, Rows>) => {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort())
  for (const table of Object.keys(expected)) {
    expect(actual[table]!.length, `${table} rows`).toBe(expected[table]!.length)
    expect(actual[table], table).toEqual(expected[table])
  }
}

const run = async (lake: ReturnType<typeof memoryLake>, more: Partial<ReplayOptions> & { name: string }): Promise<{ url: string; report: ReplayReport }> => {
  const url = await freshDatabase("bulk")
  const report = await Effect.runPromise(replay({ lake, targetUrl: url, checkpoints: memoryCheckpoints(), batchSize: 40, ...more }))
  return { url, report }
}

describe("bulk replay builds what the row-by-row replay builds", { timeout: 300_000 }, () => {
  it("random histories with duplicates and late deliveries, in one segment or many", async () => {
    for (const seed of [5, 6]) {
      const random = seededRandom(seed)
      const events = shuffleForDelivery(randomHistory({ seed, transactions: 700, keys: 8, truncateRate: 0.015 }), random, { duplicate: 0.08, late: 0.08 })
      const lake = await lakeWith(events, 97)
      const rows = await run(lake, { name: `rows-${seed}`, rowByRow: true })
      expect(rows.report.mode).toBe("row-by-row")
      const expected = await stateOf(rows.url)
      // The comparison covers what it must: history, deletes, truncations, skipped events, placeholders.
      expect(expected.truncation!.length).toBeGreaterThan(3)
      expect(expected.skipped_event!.length).toBeGreaterThan(3)
      expect(expected.fact_payment!.some((row) => row.row!.includes(",d,"))).toBe(true)
      expect(expected.fact_sales_order!.length).toBeGreaterThan(100)

      const many = await run(lake, { name: `bulk-many-${seed}`, segmentSize: 150 })
      expect(many.report.mode).toBe("bulk")
      expect(many.report.events).toBe(rows.report.events)
      expectSameState(await stateOf(many.url), expected)

      const one = await run(lake, { name: `bulk-one-${seed}` })
      expect(one.report.mode).toBe("bulk")
      expectSameState(await stateOf(one.url), expected)
    }
  })

  it("random histories with schema changes that pause tables, duplicates and late deliveries: same pauses, same parked events", async () => {
    for (const seed of [21, 24, 29]) {
      const random = seededRandom(seed)
      const history = randomHistory({ seed, transactions: 700, keys: 8, truncateRate: 0.015, breakingRate: 0.003 })
      const lake = await lakeWith(shuffleForDelivery(history, random, { duplicate: 0.08, late: 0.08 }), 97)
      const rows = await run(lake, { name: `breaking-rows-${seed}`, rowByRow: true })
      const expected = await stateOf(rows.url)
      // Tables paused part way (not from the start), their later changes parked, the others applied on.
      expect(expected.paused_table!.length, `seed ${seed}`).toBeGreaterThanOrEqual(2)
      expect(expected.parked_event!.length, `seed ${seed}`).toBeGreaterThan(10)
      expect(expected.fact_sales_order!.length + expected.fact_purchase_order!.length + expected.fact_payment!.length).toBeGreaterThan(200)

      for (const segmentSize of [150, undefined]) {
        const bulk = await run(lake, { name: `breaking-bulk-${seed}-${segmentSize ?? "one"}`, ...(segmentSize ? { segmentSize } : {}) })
        expect(bulk.report.mode).toBe("bulk")
        expect(bulk.report.events).toBe(rows.report.events)
        expectSameState(await stateOf(bulk.url), expected)
      }
    }
  })

  it("a table paused by a change that no longer fits is paused and parked the same way", async () => {
    const history = randomHistory({ seed: 8, transactions: 300, keys: 6, invalid: false })
    const at = history.findIndex((e, i) => i > history.length / 2 && e.source.table === "sales_order" && e.op !== "t")
    const breaking = changeEvent("u", "sales_order", { commitLsn: history[at]!.source.commitLsn, index: 99, committedAt: history[at]!.source.committedAt }, {
      after: { ...(history[at]!.after ?? history[at]!.before)!, units_sold: "12.5" }
    })
    const lake = await lakeWith([...history.slice(0, at), breaking, ...history.slice(at)], 50)
    const rows = await run(lake, { name: "paused-rows", rowByRow: true })
    const expected = await stateOf(rows.url)
    expect(expected.paused_table).toHaveLength(1)
    expect(expected.parked_event!.length).toBeGreaterThan(1)
    const bulk = await run(lake, { name: "paused-bulk", segmentSize: 120 })
    expectSameState(await stateOf(bulk.url), expected)
  })

  it("changes older than the pause that arrive after it (late, redelivered) are applied, not parked: exactly the changes from the pausing one on wait, either path", async () => {
    const history = randomHistory({ seed: 8, transactions: 300, keys: 6, invalid: false })
    const at = history.findIndex((e, i) => i > history.length / 2 && e.source.table === "sales_order" && e.op !== "t")
    const breakingAt = (index: number) =>
      changeEvent("u", "sales_order", { commitLsn: history[at]!.source.commitLsn, index, committedAt: history[at]!.source.committedAt }, {
        after: { ...(history[at]!.after ?? history[at]!.before)!, units_sold: `12.${index}` }
      })
    const before = history.slice(0, at)
    const olderOrders = before.filter((e) => e.source.table === "sales_order")
    // Some older sales_order changes arrive only after the break (late), others a second time (redelivered).
    const late = new Set(olderOrders.slice(-12).filter((_, i) => i % 2 === 0))
    const redelivered = olderOrders.slice(-30, -12)
    expect(late.size).toBeGreaterThan(3)
    const lateIds = [...late].filter((e) => e.op !== "t").map((e) => e.id)
    // Then the same with a second, older break that arrives late too: the table pauses from the older one.
    for (const olderBreak of [undefined, breakingAt(98)]) {
      const breaking = breakingAt(99)
      const name = olderBreak ? "older-break" : "one-break"
      const delivered = [...before.filter((e) => !late.has(e)), breaking, ...history.slice(at, at + 60), ...late, ...(olderBreak ? [olderBreak] : []), ...history.slice(at + 60), ...redelivered]
      const lake = await lakeWith(delivered, 50)
      // Independently of either path: the sales_order changes at or after the pausing change's position.
      const pausing = olderBreak ?? breaking
      const pausedFrom = { lsn: pausing.source.commitLsn, seq: pausing.source.index }
      const expectedParked = [...new Set([breaking, ...(olderBreak ? [olderBreak] : []), ...history])]
        .filter((e) => e.source.table === "sales_order" && comparePositions({ lsn: e.source.commitLsn, seq: e.source.index }, pausedFrom) >= 0)
        .map((e) => e.id)
        .sort()
      expect(expectedParked.length).toBeGreaterThan(5)

      const rows = await run(lake, { name: `park-at-pause-rows-${name}`, rowByRow: true })
      const client = await connect(rows.url)
      try {
        const parked = await client.query("SELECT event_id FROM totes.parked_event ORDER BY event_id")
        expect(parked.rows.map((r) => r.event_id as string).sort(), name).toEqual(expectedParked)
        const paused = await client.query("SELECT table_name, first_event_id FROM totes.paused_table")
        expect(paused.rows, name).toEqual([{ table_name: "sales_order", first_event_id: pausing.id }])
        // Every older change is in the fact history, the late ones included.
        const applied = await client.query("SELECT event_id FROM fact_sales_order WHERE event_id = ANY($1::text[])", [lateIds])
        expect(applied.rows.map((r) => r.event_id as string).sort(), name).toEqual([...lateIds].sort())
      } finally {
        await client.end()
      }
      const expected = await stateOf(rows.url)
      for (const segmentSize of [120, undefined]) {
        const bulk = await run(lake, { name: `park-at-pause-bulk-${name}-${segmentSize ?? "one"}`, ...(segmentSize ? { segmentSize } : {}) })
        expect(bulk.report.mode).toBe("bulk")
        expectSameState(await stateOf(bulk.url), expected)
      }
    }
  })

  it("a duplicate older than the warehouse's row in a delete's batch does not supply the delete's image: any batch size, either path, the same warehouse", async () => {
    const at = (lsn: string) => ({ commitLsn: lsn, index: 0, committedAt: "2024-02-26T09:00:00.000Z" })
    const payment = (id: number, values: Record<string, string | number | boolean>) => ({
      payment_id: id, created_at: "2024-02-26T08:00:00.000", last_updated: "2024-02-26T08:00:00.000", transaction_id: 1, counterparty_id: 1,
      payment_amount: "10.00", currency_id: 1, payment_type_id: 1, paid: false, payment_date: "2024-02-26", company_ac_number: 1, counterparty_ac_number: 2, ...values
    })
    const created = [changeEvent("c", "payment", at("0/5000100"), { after: payment(1, {}) }), changeEvent("c", "payment", at("0/5000110"), { after: payment(2, {}) })]
    const updated = [
      changeEvent("u", "payment", at("0/5000200"), { after: payment(1, { payment_amount: "20.00", paid: true }) }),
      changeEvent("u", "payment", at("0/5000210"), { after: payment(2, { payment_date: "2024-03-01" }) })
    ]
    // The creations again (a redelivery), then a key-only delete of 1 and an update of 2 that does not send payment_date, then its key-only delete.
    const later = [
      ...created,
      changeEvent("d", "payment", at("0/5000300"), { before: { payment_id: 1 } }),
      changeEvent("u", "payment", at("0/5000310"), { after: payment(2, { payment_date: "2024-03-01", payment_amount: "30.00" }), unchanged: ["payment_date"] }),
      changeEvent("d", "payment", at("0/5000410"), { before: { payment_id: 2 } })
    ]
    const lake = await lakeWith([...created, ...updated, ...later], 4)
    const deletes = async (url: string) => {
      const client = await connect(url)
      try {
        return (await client.query("SELECT payment_id, payment_amount::text, paid, payment_date::text FROM fact_payment WHERE change_op = 'd' ORDER BY payment_id")).rows
      } finally {
        await client.end()
      }
    }
    const whole = await run(lake, { name: "stale-whole", rowByRow: true, batchSize: 100 })
    expect(await deletes(whole.url)).toEqual([
      { payment_id: 1, payment_amount: "20.00", paid: true, payment_date: "2024-02-26" },
      { payment_id: 2, payment_amount: "30.00", paid: false, payment_date: "2024-03-01" }
    ])
    const expected = await stateOf(whole.url)
    // In batches of 4 the redelivered creations share a batch with the delete and the update, after the updates were applied.
    for (const more of [{ rowByRow: true }, {}, { segmentSize: 4 }]) {
      const split = await run(lake, { name: `stale-split-${JSON.stringify(more)}`, batchSize: 4, ...more })
      expectSameState(await stateOf(split.url), expected)
    }
  })

  it("a checkpoint moved over objects without events waits for the segment still committing: a failed commit is replayed on resume, nothing skipped", async () => {
    // In source order, a whole number of objects of 40 events: every object ends a batch and a segment.
    const tables = [...TOTESYS_TABLES]
    const history = randomHistory({ seed: 21, transactions: 300, keys: 8 })
      .filter((e) => (tables as Array<string>).includes(e.source.table))
      .sort((a, b) => compareLsn(a.source.commitLsn, b.source.commitLsn) || a.source.index - b.source.index)
    const events = history.slice(0, history.length - (history.length % 40))
    const last = events[events.length - 40]!
    // Then objects whose events the run does not select (another table): the checkpoint moves over them.
    const others = Array.from({ length: 5 }, (_, i) =>
      changeEvent("c", "audit_log", { commitLsn: `FF/${(i + 1).toString(16).toUpperCase()}`, index: 0, committedAt: "2024-02-27T08:00:00.000Z" }, { after: { id: i + 1 } })
    )
    const lake = await lakeWith(events, 40)
    for (const [i, other] of others.entries()) {
      const key = rawObjectKey(new Date(Date.parse("2024-02-27T08:00:00Z") + i * 1_000), "test", String(events.length + i).padStart(12, "0"), randomUUID())
      await Effect.runPromise(lake.putNew(key, encodeRawObject([JSON.stringify(other)]), "application/x-ndjson"))
    }
    const expected = await stateOf((await run(lake, { name: "idle-rows", rowByRow: true, tables })).url)

    // The last segment's commit fails (a deferred trigger on the mirror rows of its positions).
    const url = await freshDatabase("bulk")
    const client = await connect(url)
    await migrateWarehouse(client)
    await client.query(`CREATE FUNCTION totes.refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'commit refused by the test'; END $$`)
    await client.query(
      `CREATE CONSTRAINT TRIGGER refuse_last_segment AFTER INSERT OR UPDATE ON totes.mirror DEFERRABLE INITIALLY DEFERRED
       FOR EACH ROW WHEN ((NEW.source_lsn, NEW.source_seq) >= ('${last.source.commitLsn}'::pg_lsn, ${last.source.index})) EXECUTE FUNCTION totes.refuse_commit()`
    )
    const checkpoints = memoryCheckpoints()
    const options = { lake, targetUrl: url, checkpoints, name: "idle", batchSize: 40, segmentSize: 40, listingMarginMs: 0, tables }
    let reports = 0
    const failed = await Effect.runPromiseExit(
      replay({
        ...options,
        progressIntervalMs: 0,
        // Once the last segment has started committing, more than 2 s pass before the next object:
        // the run then moves its checkpoint over the objects without events.
        onProgress: (p) => {
          if (p.events === events.length && ++reports === 1) {
            const until = Date.now() + 2_100
            while (Date.now() < until);
          }
        }
      })
    )
    expect(failed._tag).toBe("Failure")
    // The trigger's exception (P0001, raised in totes.refuse_commit) is what failed the run.
    expect(JSON.stringify(failed)).toContain('"code":"P0001"')
    expect(JSON.stringify(failed)).toContain("refuse_commit")
    const stored = Option.getOrUndefined(await Effect.runPromise(checkpoints.get<{ appliedThrough: string }>(replayCheckpointKey("idle"))))
    const lastObject = (await Effect.runPromise(lake.list("raw/"))).map((o) => o.key).sort()[events.length / 40 - 1]!
    expect(stored!.data.appliedThrough < lastObject, `checkpoint ${stored!.data.appliedThrough} passed ${lastObject}`).toBe(true)

    await client.query("DROP TRIGGER refuse_last_segment ON totes.mirror")
    await client.end()
    const resumed = await Effect.runPromise(replay(options))
    expect(resumed.resumed).toBe(true)
    expectSameState(await stateOf(url), expected)
  })

  it("an interrupted bulk run resumes from its checkpoint; a catch-up on top of a bulk rebuild goes row by row", async () => {
    // Duplicates but no late deliveries: a change delivered after a newer change of its row takes what
    // it lacks from the image known when its batch is applied, so a run that starts elsewhere (a
    // resume, a --to) may differ there (README, Limitations).
    const events = shuffleForDelivery(randomHistory({ seed: 9, transactions: 600, keys: 8 }), seededRandom(9), { duplicate: 0.15, late: 0 })
    const lake = await lakeWith(events, 60)
    const rows = await run(lake, { name: "resume-rows", rowByRow: true })
    const expected = await stateOf(rows.url)

    const url = await freshDatabase("bulk")
    const checkpoints = memoryCheckpoints()
    const options = { lake, targetUrl: url, checkpoints, name: "resume", batchSize: 40, segmentSize: 200, listingMarginMs: 0 }
    const controller = new AbortController()
    let reports = 0
    const first = await Effect.runPromise(replay({ ...options, signal: controller.signal, progressIntervalMs: 0, onProgress: () => ++reports === 12 && controller.abort() }))
    expect(first.aborted).toBe(true)
    expect(first.mode).toBe("bulk")
    const second = await Effect.runPromise(replay(options))
    expect(second.resumed).toBe(true)
    expect(second.mode).toBe("bulk")
    expect(second.objectsSkipped).toBeGreaterThan(0)
    expectSameState(await stateOf(url), expected)

    // Up to the middle in bulk, then the rest as a catch-up into the (now non-empty) target.
    const middle = events[Math.floor(events.length / 2)]!.source.commitLsn
    const target = await freshDatabase("bulk")
    const half = await Effect.runPromise(replay({ lake, targetUrl: target, checkpoints, name: "half", batchSize: 40, to: parseBound(middle) }))
    expect(half.mode).toBe("bulk")
    const rest = await Effect.runPromise(replay({ lake, targetUrl: target, checkpoints, name: "rest", batchSize: 40, from: parseBound(middle), catchUp: true }))
    expect(rest.mode).toBe("row-by-row")
    expectSameState(await stateOf(target), expected)
  })
})
