/**
 * Which changes of a batch apply and which are parked (services/warehouse/apply.ts sortBySchema):
 * a table pauses at the position of the change that broke it, and only its changes at or after
 * that position are parked, whatever batch they come in and in whatever order; an older change (a
 * redelivery, a late delivery) was written under the old schema and applies.
 */
import { describe, expect, it } from "vitest"
import type { ChangeEvent, Row, StreamRecord } from "../../contracts/change-event.ts"
import { parkAndPauseStatements, sortBySchema, type SchemaState, type SortedRecords } from "../../services/warehouse/apply.ts"
import type { Position } from "../../services/warehouse/projection.ts"
import { changeEvent, heartbeatEvent, seededRandom } from "../fixtures/events.ts"

const AT = "2024-03-01T10:00:00.000Z"
const at = (commitLsn: string, index = 0) => ({ commitLsn, index, committedAt: AT })

const design = (id: number, name: string): Row => ({
  design_id: id, created_at: "2024-03-01T10:00:00.000", design_name: name, file_location: "/usr", file_name: `${id}.json`, last_updated: "2024-03-01T10:00:00.000"
})
const payment = (id: number, amount: string): Row => ({
  payment_id: id, created_at: "2024-02-26T08:00:00.000", last_updated: "2024-02-26T08:00:00.000", transaction_id: 1, counterparty_id: 1,
  payment_amount: amount, currency_id: 1, payment_type_id: 1, paid: false, payment_date: "2024-02-26", company_ac_number: 1, counterparty_ac_number: 2
})

/** A design change that fits. */
const designAt = (lsn: string, id: number, name: string, index = 0) => changeEvent("u", "design", at(lsn, index), { after: design(id, name) })
/** A design change after design_name was renamed in the source: it breaks. */
const renamedDesignAt = (lsn: string, id: number, index = 0) => {
  const { design_name: _renamed, ...rest } = design(id, "x")
  return changeEvent("u", "design", at(lsn, index), { after: { ...rest, title: "x" } })
}
const paymentAt = (lsn: string, id: number, amount = "10.00") => changeEvent("u", "payment", at(lsn), { after: payment(id, amount) })
/** A payment whose payment_date became a list: it breaks. */
const brokenPaymentAt = (lsn: string, id: number) => changeEvent("u", "payment", at(lsn), { after: { ...payment(id, "10.00"), payment_date: ["2024-02-26"] } })

const NOTHING_PAUSED: SchemaState = { paused: new Map(), decisions: new Map() }
const pausedAt = (entries: Record<string, Position>): SchemaState => ({ paused: new Map(Object.entries(entries)), decisions: new Map() })

const ids = (records: ReadonlyArray<StreamRecord>) => records.map((r) => r.id)
const outcome = (sorted: SortedRecords) => ({
  applicable: ids(sorted.applicable),
  parked: ids(sorted.parked),
  pauses: sorted.pauses.map((p) => [p.violation.table, p.violation.column, p.event.id])
})

describe("sortBySchema: parked from the pausing position on", () => {
  it("in the batch that pauses a table: older changes apply wherever they stand in the batch, the breaking change and newer ones are parked", () => {
    const older = designAt("0/1000", 1, "older")
    const newerFirst = designAt("0/2500", 1, "newer, delivered before the break")
    const breaking = renamedDesignAt("0/2000", 2)
    const newer = designAt("0/3000", 1, "newer")
    const redelivered = designAt("0/1000", 1, "older")
    const late = designAt("0/1500", 2, "late")
    const otherTable = paymentAt("0/4000", 7)
    const heartbeat = heartbeatEvent("0/4000", AT)
    const sorted = sortBySchema([older, newerFirst, breaking, newer, redelivered, late, otherTable, heartbeat], NOTHING_PAUSED)
    expect(outcome(sorted)).toEqual({
      applicable: [older.id, redelivered.id, late.id, otherTable.id, heartbeat.id],
      parked: [newerFirst.id, breaking.id, newer.id],
      pauses: [["design", "design_name", breaking.id]]
    })
  })

  it("in later batches while paused: a change before the pausing position applies (index within the transaction counts), at or after it is parked", () => {
    const state = pausedAt({ design: { lsn: "0/2000", seq: 1 } })
    const redelivered = designAt("0/1000", 1, "older")
    const sameTransactionBefore = designAt("0/2000", 1, "index 0", 0)
    const thePausingOne = renamedDesignAt("0/2000", 2, 1)
    const sameTransactionAfter = designAt("0/2000", 1, "index 2", 2)
    const later = designAt("0/3000", 1, "later")
    // Zero-padded as pg-logical-replication gives commit LSNs: compared by value.
    const paddedOlder = designAt("00000000/00001FFF", 3, "padded older")
    const paddedLater = designAt("00000000/00002001", 3, "padded later")
    const sorted = sortBySchema([later, redelivered, thePausingOne, sameTransactionBefore, sameTransactionAfter, paddedOlder, paddedLater], state)
    expect(outcome(sorted)).toEqual({
      applicable: [redelivered.id, sameTransactionBefore.id, paddedOlder.id],
      parked: [later.id, thePausingOne.id, sameTransactionAfter.id, paddedLater.id],
      pauses: []
    })
  })

  it("keeps each table to its own pausing position, and a table being resumed is not paused", () => {
    const state = pausedAt({ design: { lsn: "0/2000", seq: 0 }, payment: { lsn: "0/5000", seq: 0 } })
    const designOlder = designAt("0/1800", 1, "older")
    const designNewer = designAt("0/2200", 1, "newer")
    const paymentBetween = paymentAt("0/3000", 7) // after design's pause, before payment's
    const paymentNewer = paymentAt("0/6000", 7)
    const sorted = sortBySchema([designNewer, paymentBetween, designOlder, paymentNewer], state)
    expect(outcome(sorted)).toEqual({ applicable: [paymentBetween.id, designOlder.id], parked: [designNewer.id, paymentNewer.id], pauses: [] })
    const resuming = sortBySchema([designNewer, paymentBetween, designOlder, paymentNewer], state, "design")
    expect(outcome(resuming)).toEqual({ applicable: [designNewer.id, paymentBetween.id, designOlder.id], parked: [paymentNewer.id], pauses: [] })
  })

  it("an older change that breaks too pauses the table from its own position; the earliest break of a batch is the pause", () => {
    const state = pausedAt({ payment: { lsn: "0/5000", seq: 0 } })
    const olderFits = paymentAt("0/1000", 7)
    const laterBreak = brokenPaymentAt("0/3000", 8)
    const earlierBreak = brokenPaymentAt("0/2000", 9)
    const between = paymentAt("0/2500", 7)
    const sorted = sortBySchema([laterBreak, between, olderFits, earlierBreak], state)
    expect(outcome(sorted)).toEqual({
      applicable: [olderFits.id],
      parked: [laterBreak.id, between.id, earlierBreak.id],
      pauses: [["payment", "payment_date", earlierBreak.id]]
    })
  })

  it("pauses several tables in one batch, each from its own break", () => {
    const designBreak = renamedDesignAt("0/2000", 1)
    const paymentBreak = brokenPaymentAt("0/4000", 7)
    const designBefore = designAt("0/1000", 2, "before")
    const paymentBetween = paymentAt("0/3000", 7)
    const designBetween = designAt("0/3000", 2, "between")
    const paymentAfter = paymentAt("0/5000", 7)
    const sorted = sortBySchema([paymentAfter, designBetween, designBreak, paymentBreak, paymentBetween, designBefore], NOTHING_PAUSED)
    expect(outcome(sorted)).toEqual({
      applicable: [paymentBetween.id, designBefore.id],
      parked: [paymentAfter.id, designBetween.id, designBreak.id, paymentBreak.id],
      pauses: [
        ["design", "design_name", designBreak.id],
        ["payment", "payment_date", paymentBreak.id]
      ]
    })
  })

  it("the same sets whatever the order of the batch", () => {
    const batch: Array<ChangeEvent> = [
      designAt("0/1000", 1, "a"),
      renamedDesignAt("0/2000", 2, 1),
      designAt("0/2000", 1, "same transaction, before", 0),
      designAt("0/3000", 1, "b"),
      designAt("0/1000", 1, "a"),
      brokenPaymentAt("0/2800", 7),
      paymentAt("0/2700", 7),
      paymentAt("0/2900", 7)
    ]
    const expected = outcome(sortBySchema(batch, NOTHING_PAUSED))
    const random = seededRandom(3)
    for (let round = 0; round < 20; round++) {
      const shuffled = [...batch].sort(() => random() - 0.5)
      const got = outcome(sortBySchema(shuffled, NOTHING_PAUSED))
      const asSets = (o: typeof got) => ({ applicable: [...o.applicable].sort(), parked: [...o.parked].sort(), pauses: [...o.pauses].sort() })
      expect(asSets(got)).toEqual(asSets(expected))
    }
    expect([...expected.parked].sort()).toEqual(["0/2000:1", "0/2800:0", "0/2900:0", "0/3000:0"])
  })
})

describe("parkAndPauseStatements", () => {
  it("writes one pause per table, the last one given (bulk replay collects several batches' pauses)", () => {
    const first = sortBySchema([renamedDesignAt("0/3000", 1)], NOTHING_PAUSED)
    const earlier = sortBySchema([renamedDesignAt("0/2000", 2)], pausedAt({ design: { lsn: "0/3000", seq: 0 } }))
    const statements = parkAndPauseStatements("totes", { pauses: [...first.pauses, ...earlier.pauses], parked: [...first.parked, ...earlier.parked] })
    expect(statements).toHaveLength(2)
    const pauses = JSON.parse(statements[0]![1][0] as string) as Array<{ table_name: string; lsn: string; seq: number }>
    expect(pauses.map((p) => [p.table_name, p.lsn, p.seq])).toEqual([["design", "0/2000", 0]])
    const parked = JSON.parse(statements[1]![1][0] as string) as Array<ChangeEvent>
    expect(parked.map((e) => e.source.commitLsn)).toEqual(["0/3000", "0/2000"])
  })
})
