/**
 * The online repair's windows (services/reader/repair-window.ts): which chunk rows are published
 * at the high watermark, which the stream supersedes, and what the range record says.
 */
import { describe, expect, it } from "vitest"
import type { ChangeEvent, RepairedRange, Row } from "../../contracts/change-event.ts"
import { markerContent, RepairWindows, type ChunkOutcome } from "../../services/reader/repair-window.ts"
import { changeEvent, truncateEvent } from "../fixtures/events.ts"

const AT = "2026-11-27T10:00:00.000Z"
const design = (id: number, name = `Design ${id}`): Row => ({ design_id: id, design_name: name, file_location: "/usr", file_name: `d${id}.json` })
const at = (commitLsn: string, index = 0) => ({ commitLsn, index, committedAt: AT })

/** A window for `chunk` of design after `after`, with rows read; returns what a marker pair yields around `stream`. */
const run = (
  windows: RepairWindows,
  options: { chunk: string; after: number | null; rows: ReadonlyArray<Row>; through: number | null; before?: ReadonlyArray<ChangeEvent>; inside?: ReadonlyArray<ChangeEvent> }
): ChunkOutcome | undefined => {
  windows.expect({ id: options.chunk, repair: "req-1", table: "design", keyColumn: "design_id", after: options.after })
  for (const event of options.before ?? []) windows.observe(event)
  expect(windows.marker({ lsn: "0/5000010", content: markerContent(options.chunk, "low", AT) })).toBeUndefined()
  for (const event of options.inside ?? []) windows.observe(event)
  windows.supply(options.chunk, { rows: options.rows, through: options.through })
  return windows.marker({ lsn: "00000000/05000200", content: markerContent(options.chunk, "high", AT) })?.outcome
}

describe("repair windows", () => {
  it("publishes the rows the stream left alone at (high watermark, -1), drops the ones it changed inside the window", () => {
    const windows = new RepairWindows("totesys")
    const outcome = run(windows, {
      chunk: "c1",
      after: null,
      rows: [design(1), design(2), design(3), design(5)],
      through: 5,
      // Before the low watermark: the chunk's snapshot saw it, so it does not supersede the row.
      before: [changeEvent("u", "design", at("0/5000000"), { after: design(1, "old news") })],
      inside: [
        changeEvent("u", "design", at("0/5000100"), { after: design(2, "renamed") }),
        changeEvent("c", "design", at("0/5000110"), { after: design(4) }), // inserted in the range during the chunk
        changeEvent("c", "design", at("0/5000120"), { after: design(9) }), // beyond the range: not the range's business
        changeEvent("u", "staff", at("0/5000130"), { after: { staff_id: 3, first_name: "Ann" } })
      ]
    })
    expect(outcome?._tag).toBe("Published")
    if (outcome?._tag !== "Published") return
    expect(outcome.highWatermark).toBe("0/5000200")
    expect(outcome.published).toBe(3)
    expect(outcome.superseded).toBe(1)
    expect(outcome.events.map((e) => [e.id, e.op, e.source.commitLsn, e.source.index, e.source.snapshot, e.key, e.after])).toEqual(
      [1, 3, 5].map((id) => [`0/5000200:repair:design:${id}`, "r", "0/5000200", -1, true, { design_id: id }, design(id)])
    )
    const range: RepairedRange = {
      kind: "repair",
      schemaVersion: 1,
      id: "0/5000200:repair-range:design:..5",
      repair: "req-1",
      source: { db: "totesys", schema: "public", table: "design", commitLsn: "0/5000200", lsn: null, xid: null, committedAt: AT, index: -1, snapshot: true },
      keyColumn: "design_id",
      afterKey: null,
      throughKey: 5,
      presentKeys: [1, 2, 3, 4, 5]
    }
    expect(outcome.range).toEqual(range)
    expect(windows.size).toBe(0)
  })

  it("the last chunk's range is unbounded above; an update that moves a key notes the old key and the new", () => {
    const windows = new RepairWindows("totesys")
    const outcome = run(windows, {
      chunk: "c2",
      after: 5,
      rows: [design(7), design(8)],
      through: null,
      inside: [
        changeEvent("u", "design", at("0/5000100"), { before: { design_id: 8 }, after: design(80) }),
        changeEvent("d", "design", at("0/5000110"), { before: { design_id: 3 } }) // before the range
      ]
    })
    expect(outcome?._tag === "Published" && outcome.events.map((e) => e.id)).toEqual(["0/5000200:repair:design:7"])
    expect(outcome?._tag === "Published" && outcome.range).toMatchObject({ afterKey: 5, throughKey: null, presentKeys: [7, 8, 80], id: "0/5000200:repair-range:design:5.." })
  })

  it("a truncate of the table inside the window makes the chunk be read again", () => {
    const windows = new RepairWindows("totesys")
    const outcome = run(windows, { chunk: "c3", after: null, rows: [design(1)], through: null, inside: [truncateEvent("design", at("0/5000100"))] })
    expect(outcome).toEqual({ _tag: "Truncated", highWatermark: "0/5000200" })
  })

  it("never throws on the stream's path: a change whose key it cannot read makes the chunk be read again", () => {
    const windows = new RepairWindows("totesys")
    const odd = changeEvent("u", "design", at("0/5000100"), { after: { ...design(1), design_id: "12345678901234567890" } })
    const outcome = run(windows, { chunk: "c7", after: null, rows: [design(1)], through: null, inside: [odd] })
    expect(outcome).toEqual({ _tag: "Truncated", highWatermark: "0/5000200" })
  })

  it("ignores markers of chunks it was not told about (an earlier session's, sent again), and never publishes a window without its rows", () => {
    const windows = new RepairWindows("totesys")
    expect(windows.marker({ lsn: "0/1", content: markerContent("old", "low", AT) })).toBeUndefined()
    expect(windows.marker({ lsn: "0/2", content: markerContent("old", "high", AT) })).toBeUndefined()
    expect(windows.marker({ lsn: "0/3", content: "not json" })).toBeUndefined()
    windows.expect({ id: "c4", repair: "r", table: "design", keyColumn: "design_id", after: null })
    expect(windows.marker({ lsn: "0/4", content: markerContent("c4", "high", AT) })).toBeUndefined()
    expect(windows.size).toBe(1)
    windows.forget("c4")
    expect(windows.size).toBe(0)
  })

  it("a window only notes changes while it is open", () => {
    const windows = new RepairWindows("totesys")
    run(windows, { chunk: "c5", after: null, rows: [design(1)], through: null })
    // Closed: a later change of key 1 must not leak into the next chunk's window.
    windows.observe(changeEvent("u", "design", at("0/6000000"), { after: design(1, "later") }))
    const next = run(windows, { chunk: "c6", after: null, rows: [design(1)], through: null })
    expect(next?._tag === "Published" && next.published).toBe(1)
  })
})
