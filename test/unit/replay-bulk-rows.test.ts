/**
 * The rows a bulk replay writes for a batch of plain changes, built straight from the events
 * (services/replay/bulk/batch-rows.ts simpleBatchRows), are the consumer's: projectBatch,
 * completePlan and toFactRow, written as COPY text. Checked on synthetic and random histories and
 * on images whose values are changed in every way a fact column can see them.
 */
import { describe, expect, it } from "vitest"
import type { ChangeEvent, Row, StreamRecord } from "../../contracts/change-event.ts"
import { completePlan, FACT_COLUMNS, FACT_KEYS, projectBatch } from "../../services/warehouse/projection.ts"
import { completedBatchRows, FACT_FIELDS, FACT_TABLES, simpleBatchRows } from "../../services/replay/bulk/batch-rows.ts"
import { seededRandom } from "../fixtures/events.ts"
import { randomHistory } from "../support/random-history.ts"
import { syntheticEvents } from "../support/synthetic-lake.ts"

const general = (records: ReadonlyArray<StreamRecord>) => {
  const plan = projectBatch(records)
  return completedBatchRows(plan, completePlan(plan, new Map()))
}

/** What a fact column can meet in an image: nothing, null, other types, other timestamp forms, characters COPY escapes. */
const ODD_VALUES: ReadonlyArray<Row[string] | "<absent>"> = [
  "<absent>", null, 0, -7, 12.5, 1e21, "12", "12.50", "abc", true, false, "",
  "2024-02-23 11:11:10.5", "2024-02-23T11:11:10.123456", "2024-02-23T11:11:10", "2024-02-23", "23/02/2024",
  "tab\there", "line\nbreak", "cr\rhere", "back\\slash", "\\N", "é 東京", { nested: 1 }, [1, 2]
]

const withOddValues = (events: ReadonlyArray<ChangeEvent>, seed: number): Array<ChangeEvent> => {
  const random = seededRandom(seed)
  return events.map((event) => {
    const image = event.after ?? event.before
    if (!image || random() < 0.5) return event
    const columns = Object.keys(image).filter((c) => !c.endsWith("_order_id") && c !== "payment_id" && c !== "transaction_id")
    const column = columns[Math.floor(random() * columns.length)]!
    const odd = ODD_VALUES[Math.floor(random() * ODD_VALUES.length)]!
    const changed: Record<string, Row[string]> = { ...image }
    if (odd === "<absent>") delete changed[column]
    else changed[column] = odd
    return event.op === "d" ? { ...event, before: changed } : { ...event, after: changed }
  })
}

describe("rows of a plain batch", () => {
  it("maps the fact columns in projection.ts's order", () => {
    for (const fact of FACT_TABLES) {
      expect(FACT_FIELDS[fact]).toHaveLength(FACT_COLUMNS[fact].length)
      expect(FACT_FIELDS[fact][0]).toEqual({ kind: "key" })
      expect(FACT_COLUMNS[fact][0]).toBe(FACT_KEYS[fact])
    }
  })

  it("equal the consumer's rows, on every batch the fast way takes", () => {
    let compared = 0
    let declined = 0
    const histories = [
      [...syntheticEvents(6_000)],
      withOddValues([...syntheticEvents(6_000, 2)], 3),
      ...[11, 12, 13].map((seed) => randomHistory({ seed, transactions: 400, invalid: false, truncateRate: 0 })),
      ...[14, 15].map((seed) => withOddValues(randomHistory({ seed, transactions: 400 }), seed))
    ]
    for (const [h, events] of histories.entries()) {
      for (const size of [3, 17, 250]) {
        for (let i = 0; i < events.length; i += size) {
          const batch = events.slice(i, i + size)
          const fast = simpleBatchRows(batch)
          if (!fast) {
            declined++
            continue
          }
          expect(fast, `history ${h}, batch at ${i} of ${size}`).toEqual(general(batch))
          compared++
        }
      }
    }
    expect(compared).toBeGreaterThan(1_000)
    expect(declined).toBeGreaterThan(100)
  })

  it("declines what needs the plan", () => {
    const [first] = randomHistory({ seed: 1, transactions: 1 }).filter((e) => e.source.table === "sales_order")
    const event = first!
    expect(simpleBatchRows([event])).toBeDefined()
    expect(simpleBatchRows([{ ...event, unchanged: ["unit_price"] }])).toBeUndefined()
    expect(simpleBatchRows([{ ...event, op: "t", after: null }])).toBeUndefined()
    expect(simpleBatchRows([{ ...event, op: "d", before: { sales_order_id: 1 }, after: null }])).toBeUndefined()
    expect(simpleBatchRows([{ ...event, op: "u", key: { sales_order_id: 99 } }])).toBeUndefined()
    expect(simpleBatchRows([{ ...event, source: { ...event.source, table: "audit_log" } }])).toBeUndefined()
    expect(simpleBatchRows([{ ...event, after: { ...event.after, created_at: "yesterday" } }])).toBeUndefined()
    expect(simpleBatchRows([{ ...event, after: { ...event.after, units_sold: { n: 1 } } }])).toBeUndefined()
  })
})
