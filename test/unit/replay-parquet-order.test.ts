/**
 * The order of a replay from Parquet (services/replay/parquet-order.ts): compaction runs placed by
 * the raw objects they read, never by file keys, run ids or creation times; uncompacted raw objects
 * between them by key; overlapping ones merged; what a run left out reported. And, on random lakes
 * compacted in random windows and run sizes, before and after a crash: no unit is applied before
 * one holding earlier raw objects of the same table, and a resumed run skips only what the
 * interrupted one applied.
 */
import { describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import type { CompactionManifest, ManifestInput } from "../../services/lake/manifest.ts"
import type { RawObjectRef } from "../../services/lake/raw.ts"
import { inPositionOrder, planParquetReplay, type ParquetReplayStep } from "../../services/replay/parquet-order.ts"
import { pendingObjects, type ReplayCheckpoint } from "../../services/replay/progress-state.ts"
import { changeEvent, heartbeatEvent, seededRandom } from "../fixtures/events.ts"

const T0 = Date.parse("2024-02-27T00:00:00Z")
const rawKey = (hour: number, n = 0) => `raw/2024/02/26/${String(hour).padStart(2, "0")}/stream-${n}-u.ndjson.gz`
const rawObject = (key: string, at = T0): RawObjectRef => ({ key, size: 100, hour: new Date(`${key.slice(4, 17).replace(/\//g, "-").replace(/-(\d\d)$/, "T$1")}:00:00Z`), lastModified: new Date(at) })
const file = (table: string, name: string, date = "2024-02-26") => ({ key: `parquet/${table}/date=${date}/${name}.parquet`, table, date, rows: 1, bytes: 10 })

const manifest = (
  run: string,
  createdAt: number,
  inputs: ReadonlyArray<string | Partial<ManifestInput>>,
  outputs: ReadonlyArray<ReturnType<typeof file>>
): CompactionManifest => ({
  version: 1,
  run,
  createdAt: new Date(createdAt).toISOString(),
  window: { from: null, to: null },
  writer: "test",
  inputs: inputs.map((input) => ({ size: 100, records: 1, events: 1, ...(typeof input === "string" ? { key: input } : input) }) as ManifestInput),
  outputs,
  duplicates: 0,
  undecodable: 0
})

/** What each unit holds: raw keys and Parquet file keys. */
const members = (step: ParquetReplayStep): Array<string> =>
  step.kind === "raw" ? [step.object.key] : step.kind === "table" ? step.files.map((f) => f.key) : step.kind === "group" ? [...step.files.map((f) => f.key), ...step.raw.map((o) => o.key)] : []

const keysInOrder = (steps: ReadonlyArray<ParquetReplayStep>) => pendingObjects(steps, undefined).map((s) => s.key)

describe("replay from Parquet: the order of units", () => {
  it("places a run's files by the raw objects it read, not by file keys, run ids or creation times; uncompacted raw objects between runs by key", () => {
    // The later run (inputs at 10:00) has the earlier id, the earlier creation time and the smaller file keys.
    const manifests = [
      manifest("20240227T000000000Z-aaaa", T0 + 1, [rawKey(10, 1), rawKey(10, 2)], [file("sales_order", "000")]),
      manifest("20240227T090000000Z-bbbb", T0 + 9, [rawKey(9)], [file("sales_order", "fff"), file("design", "eee"), file("sales_order", "ddd", "2024-02-25")])
    ]
    const raw = [rawKey(8), rawKey(9), rawKey(10, 1), rawKey(10, 2), rawKey(11)].map((key) => rawObject(key))
    const steps = planParquetReplay(manifests, raw)
    expect(steps.map((s) => [s.kind, s.key, members(s)])).toEqual([
      ["raw", `${rawKey(8)} ~`, [rawKey(8)]],
      ["table", `${rawKey(9)} design`, [file("design", "eee").key]],
      // One table's files of a run: every day, oldest first.
      ["table", `${rawKey(9)} sales_order`, [file("sales_order", "ddd", "2024-02-25").key, file("sales_order", "fff").key]],
      ["table", `${rawKey(10, 1)} sales_order`, [file("sales_order", "000").key]],
      ["raw", `${rawKey(11)} ~`, [rawKey(11)]]
    ])
    // The keys sort in that order (replay applies and checkpoints units by key).
    expect(keysInOrder(steps)).toEqual(steps.map((s) => s.key))
    // A file's unit is stamped with its run's commit, for the checkpoint's listing margin.
    expect(steps[1]!.lastModified).toEqual(new Date(T0 + 9))
    // Day and table filters choose files; a run with nothing left in the window has no unit.
    const window = planParquetReplay(manifests, raw, { from: new Date("2024-02-26T05:00:00Z"), tables: ["sales_order"] })
    expect(window.map((s) => s.key)).toEqual([`${rawKey(8)} ~`, `${rawKey(9)} sales_order`, `${rawKey(10, 1)} sales_order`, `${rawKey(11)} ~`])
    expect(window.flatMap(members)).not.toContain(file("sales_order", "ddd", "2024-02-25").key)
  })

  it("merges overlapping spans (a run enclosing another, a raw object left inside a run's span) into one unit", () => {
    // `compact --from 09 --to 09`, then a full compaction: its run reads 08 and 10 around the first run's 09.
    const manifests = [
      manifest("b", T0 + 2, [rawKey(8), rawKey(10)], [file("sales_order", "b1"), file("address", "b2")]),
      manifest("a", T0 + 1, [rawKey(9)], [file("sales_order", "a1")]),
      manifest("c", T0 + 3, [rawKey(12)], [file("sales_order", "c1")])
    ]
    const raw = [rawKey(8), rawKey(9), rawKey(9, 5), rawKey(10), rawKey(12)].map((key) => rawObject(key, T0 + 5))
    const steps = planParquetReplay(manifests, raw)
    expect(steps.map((s) => s.kind)).toEqual(["group", "table"])
    const group = steps[0]!
    expect(members(group).sort()).toEqual([file("sales_order", "b1").key, file("address", "b2").key, file("sales_order", "a1").key, rawKey(9, 5)].sort())
    // The largest key of its members: a raw object's `~` sorts after every table.
    expect(group.key).toBe(`${rawKey(9, 5)} ~`)
    expect(group.lastModified).toEqual(new Date(T0 + 5))
    expect(steps[1]!.key).toBe(`${rawKey(12)} sales_order`)
  })

  it("reports what a run left out of the window's raw objects (unresolved events, undecodable lines) once, before its files", () => {
    const lost = { key: rawKey(9), unresolved: ["0/5000000:2"], undecodable: 1 }
    const manifests = [
      manifest("r1", T0, [{ key: rawKey(8), unresolved: ["0/4000000:0"] }, lost], [file("design", "d")]),
      // Two concurrent runs read the same object: reported once, by the run created first (its id sorts first).
      manifest("r2", T0, [lost], [file("design", "e")]),
      // Everything of this object was lost: no file, still reported.
      manifest("r3", T0, [{ key: rawKey(11), unresolved: ["0/6000000:0"] }], []),
      // Manifests written before these were recorded: nothing to report.
      manifest("r4", T0, [rawKey(12)], [file("design", "f")])
    ]
    const raw = [rawKey(9), rawKey(11), rawKey(12)].map((key) => rawObject(key)) // 08 is outside the replay's window
    const steps = planParquetReplay(manifests, raw)
    expect(steps.map((s) => [s.kind, s.key])).toEqual([
      ["group", `${rawKey(9)} design`],
      ["report", `${rawKey(11)} `],
      ["table", `${rawKey(12)} design`]
    ])
    expect(steps[0]).toMatchObject({ unresolved: ["0/5000000:2"], undecodable: 1 })
    expect(steps[1]).toMatchObject({ unresolved: ["0/6000000:0"], undecodable: 0, size: 0 })
    // A run alone: its report, keyed by its first input (08, outside the window: its events are not reported).
    const single = planParquetReplay([manifests[0]!], [rawObject(rawKey(9))])
    expect(single.map((s) => [s.kind, s.key])).toEqual([
      ["report", `${rawKey(8)} `],
      ["table", `${rawKey(8)} design`]
    ])
    expect(single[0]).toMatchObject({ unresolved: ["0/5000000:2"], undecodable: 1 })
  })

  it("orders change events by commit LSN and index, stable, other records after them", () => {
    const at = (lsn: string, index: number) => ({ commitLsn: lsn, index, committedAt: "2024-02-26T10:00:00.000000Z" })
    const e = (lsn: string, index: number, id: number): ChangeEvent => changeEvent("c", "design", at(lsn, index), { after: { design_id: id } })
    const [a, b, c, d] = [e("0/9", 0, 1), e("0/10", 0, 2), e("0/10", 1, 3), e("0/10", 1, 4)]
    const beat = heartbeatEvent("0/10", "2024-02-26T10:00:00.000000Z")
    expect(inPositionOrder([c, beat, b, d, a]).map((r) => r.id)).toEqual([a.id, b.id, c.id, d.id, beat.id])
  })
})

describe("replay from Parquet: random lakes, compactions and crashes", () => {
  const TABLES = ["address", "design", "sales_order"]

  interface Lake {
    readonly manifests: Array<CompactionManifest>
    readonly raw: Array<RawObjectRef>
  }

  /** Compacts as compactLake does: the uncompacted objects of a window of hours in key order, split into runs. */
  const compact = (lake: Lake, random: () => number, at: number) => {
    const keys = lake.raw.map((o) => o.key)
    const lo = Math.floor(random() * keys.length)
    const hi = lo + Math.floor(random() * (keys.length - lo))
    const compacted = new Set(lake.manifests.flatMap((m) => m.inputs.map((i) => i.key)))
    const pending = keys.slice(lo, hi + 1).filter((key) => !compacted.has(key))
    for (let i = 0; i < pending.length; ) {
      const size = 1 + Math.floor(random() * 3)
      const tables = TABLES.filter(() => random() < 0.7)
      const id = `${Math.floor(random() * 1e9)}`
      lake.manifests.push(manifest(`run-${id}`, at, pending.slice(i, i + size), tables.map((t) => file(t, id))))
      i += size
    }
  }

  const arrive = (lake: Lake, count: number, at: number) => {
    for (let i = 0; i < count; i++) lake.raw.push(rawObject(rawKey(lake.raw.length, Math.floor(at)), at))
  }

  /** The raw objects a unit's member was made of, and the tables it can hold. */
  const spans = (lake: Lake) => {
    const out = new Map<string, { inputs: Array<string>; tables: Array<string> }>()
    for (const m of lake.manifests) for (const o of m.outputs) out.set(o.key, { inputs: m.inputs.map((i) => i.key), tables: [o.table] })
    for (const o of lake.raw) out.set(o.key, { inputs: [o.key], tables: TABLES })
    return out
  }

  it("never applies a unit before one holding earlier raw objects of the same table; a resumed run skips only what was applied", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const random = seededRandom(seed)
      const lake: Lake = { manifests: [], raw: [] }
      let now = T0
      arrive(lake, 4 + Math.floor(random() * 10), now)
      for (let i = Math.floor(random() * 4); i > 0; i--) compact(lake, random, ++now)
      arrive(lake, Math.floor(random() * 3), ++now)

      // The first run lists, applies units in key order and stops after `crash` of them.
      const listedAt = ++now
      const first = pendingObjects(planParquetReplay(lake.manifests, lake.raw), undefined)
      const inPlan = first as Array<ParquetReplayStep>
      const placed = spans(lake)
      for (let p = 0; p < inPlan.length; p++) {
        for (let q = p + 1; q < inPlan.length; q++) {
          for (const a of members(inPlan[p]!)) {
            for (const b of members(inPlan[q]!)) {
              const [x, y] = [placed.get(a)!, placed.get(b)!]
              if (!x.tables.some((t) => y.tables.includes(t))) continue
              expect(x.inputs.every((k) => y.inputs.every((l) => k < l)), `seed ${seed}: ${a} applied before ${b}`).toBe(true)
            }
          }
        }
      }
      const crash = Math.floor(random() * (inPlan.length + 1))
      const applied = new Set(inPlan.slice(0, crash).flatMap(members))
      const checkpoint: ReplayCheckpoint = {
        version: 1,
        fingerprint: "f",
        appliedThrough: crash > 0 ? inPlan[crash - 1]!.key : "",
        listedAt: new Date(listedAt).toISOString(),
        objects: crash,
        events: 0,
        startedAt: "",
        updatedAt: ""
      }

      // Meanwhile: more compactions and deliveries; the resumed run lists again.
      for (let i = Math.floor(random() * 3); i > 0; i--) compact(lake, random, ++now)
      arrive(lake, Math.floor(random() * 3), now + 1)
      const resumed = planParquetReplay(lake.manifests, lake.raw)
      const pending = new Set(pendingObjects(resumed, checkpoint, 0).map((u) => u.key))
      for (const step of resumed) {
        if (pending.has(step.key)) continue
        for (const member of members(step)) expect(applied.has(member), `seed ${seed}: ${member} skipped but never applied`).toBe(true)
      }
      expect(new Set(resumed.map((s) => s.key)).size).toBe(resumed.length)
      expect(keysInOrder(resumed)).toEqual(resumed.map((s) => s.key))
    }
  })

  it("a checkpoint of the order before this one (every file, then raw objects by key) skips only what that order applied", () => {
    const manifests = [manifest("r1", T0, [rawKey(8)], [file("design", "a")]), manifest("r2", T0, [rawKey(10)], [file("design", "b")])]
    const raw = [rawKey(8), rawKey(9), rawKey(10), rawKey(11)].map((key) => rawObject(key))
    const base = { version: 1, fingerprint: "f", listedAt: new Date(T0 + 1).toISOString(), objects: 3, events: 0, startedAt: "", updatedAt: "" } as const
    const steps = planParquetReplay(manifests, raw)
    // It had applied both files and the raw object of 09 (its order: parquet/… < raw/…); now only the
    // file placed before 09 is skipped, the rest is applied (again: harmless, the position guard).
    const pending = pendingObjects(steps, { ...base, appliedThrough: rawKey(9) }, 0) as Array<ParquetReplayStep>
    expect(pending.flatMap(members)).toEqual([rawKey(9), file("design", "b").key, rawKey(11)])
    // Still in its Parquet files: nothing is known applied.
    expect(pendingObjects(steps, { ...base, appliedThrough: file("design", "a").key }, 0)).toHaveLength(steps.length)
  })
})
