/**
 * The order of a replay from Parquet (`--source parquet`), planned from the compaction manifests
 * and the raw listing. Pure: no I/O.
 *
 * Raw replay applies raw objects in key order, and that is what gives every row its changes in
 * commit order: a row's changes travel on one shard, a shard reaches the lake in order, and raw
 * keys sort by arrival. A Parquet file is sorted by position inside, but its key (a random uuid)
 * says nothing of its place among other files, and one table and day gets a file per compaction
 * run. What places a file is the raw objects its run read, which the run's manifest lists:
 *
 *   - a run spans its first to its last input key; a raw object no manifest lists, its own key;
 *   - spans in order of their first key; spans that overlap (a run enclosing another run's span,
 *     as a full compaction after `lake compact --from`; runs of two concurrent compactions) are one
 *     group;
 *   - a group of one raw object: that object, read as raw replay reads it;
 *   - a group of one run: one unit per table with the run's files of that table (every commit
 *     day), in position order (a change takes missing columns only from its own row, so tables are
 *     independent), after a unit that reports what the run left out of the window's raw objects
 *     (unresolved claim checks and snapshot chunks, undecodable lines), as raw replay reports them;
 *   - a larger group: one unit with every event of its members in position order.
 *
 * So each row's changes are applied in the order raw replay applies them (with late deliveries in
 * the lake the batch boundaries still matter: README, Limitations).
 *
 * Unit keys sort in that order, since replay applies and checkpoints units by key
 * (progress-state.ts). Each member has a key of its own: `<first input key> <table>` for a run's
 * files of a table, `<first input key> ` for its report, `<raw key> ~` for a raw object; a unit's
 * key is the largest of its members'. A member's key does not depend on the rest of the listing,
 * and every member of a later unit has a larger key than any member of an earlier one, so a
 * checkpoint through key K means: every member with a key ≤ K (listed before the run) is applied,
 * whatever a later listing groups it with. (Keys of the order before this one, a Parquet file key
 * or a raw key, compare the same way: every file, then raw objects up to that key, were applied.)
 */
import type { ChangeEvent, StreamRecord } from "../../contracts/change-event.ts"
import { lsnToBigInt } from "../../contracts/lsn.ts"
import type { CompactionManifest, ManifestOutput } from "../lake/manifest.ts"
import type { RawObjectRef } from "../lake/raw.ts"

/** A committed Parquet file; lastModified is its run's commit (the manifest's creation). */
export interface ParquetFileRef extends ManifestOutput {
  readonly lastModified: Date
}

interface StepBase {
  readonly key: string
  readonly size: number
  readonly lastModified: Date | undefined
}

export type ParquetReplayStep =
  /** A raw object no compaction has read. */
  | (StepBase & { readonly kind: "raw"; readonly object: RawObjectRef })
  /** One run's files of one table. */
  | (StepBase & { readonly kind: "table"; readonly table: string; readonly files: ReadonlyArray<ParquetFileRef> })
  /** What one run left out of the window's raw objects. */
  | (StepBase & { readonly kind: "report"; readonly unresolved: ReadonlyArray<string>; readonly undecodable: number })
  /** Overlapping spans: everything, merged in position order. */
  | (StepBase & {
      readonly kind: "group"
      readonly files: ReadonlyArray<ParquetFileRef>
      readonly raw: ReadonlyArray<RawObjectRef>
      readonly unresolved: ReadonlyArray<string>
      readonly undecodable: number
    })

export interface ParquetWindow {
  readonly from?: Date
  readonly to?: Date
  readonly tables?: ReadonlyArray<string>
}

interface RunSpan {
  readonly kind: "run"
  readonly first: string
  readonly last: string
  readonly createdAt: Date
  readonly files: ReadonlyArray<ParquetFileRef>
  readonly unresolved: ReadonlyArray<string>
  readonly undecodable: number
}

interface RawSpan {
  readonly kind: "raw"
  readonly first: string
  readonly last: string
  readonly object: RawObjectRef
}

type Span = RunSpan | RawSpan

/** Lower than any character of an object key, so `<key> <suffix>` sorts as `<key>` does. */
const SEPARATOR = " "
/** Sorts after every table name: a raw object holds changes of every table. */
const EVERY_TABLE = "~"

const memberKey = (first: string, part: string) => `${first}${SEPARATOR}${part}`
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
const hasReport = (span: RunSpan) => span.unresolved.length > 0 || span.undecodable > 0

const ownKeys = (span: Span): Array<string> =>
  span.kind === "raw"
    ? [memberKey(span.first, EVERY_TABLE)]
    : [...(hasReport(span) ? [memberKey(span.first, "")] : []), ...span.files.map((file) => memberKey(span.first, file.table))]

const latest = (dates: ReadonlyArray<Date | undefined>): Date | undefined =>
  dates.some((d) => d === undefined) ? undefined : new Date(Math.max(...dates.map((d) => d!.getTime())))

const stepsOf = (group: ReadonlyArray<Span>): Array<ParquetReplayStep> => {
  const only = group.length === 1 ? group[0]! : undefined
  if (only?.kind === "raw") {
    return [{ kind: "raw", key: ownKeys(only)[0]!, size: only.object.size, lastModified: only.object.lastModified, object: only.object }]
  }
  if (only?.kind === "run") {
    const steps: Array<ParquetReplayStep> = []
    if (hasReport(only)) {
      steps.push({ kind: "report", key: memberKey(only.first, ""), size: 0, lastModified: only.createdAt, unresolved: only.unresolved, undecodable: only.undecodable })
    }
    const byTable = new Map<string, Array<ParquetFileRef>>()
    for (const file of only.files) byTable.set(file.table, [...(byTable.get(file.table) ?? []), file])
    for (const table of [...byTable.keys()].sort(byText)) {
      const files = byTable.get(table)!.sort((a, b) => byText(a.date, b.date) || byText(a.key, b.key))
      steps.push({ kind: "table", key: memberKey(only.first, table), size: files.reduce((n, f) => n + f.bytes, 0), lastModified: only.createdAt, table, files })
    }
    return steps
  }
  const runs = group.filter((span): span is RunSpan => span.kind === "run")
  const raw = group.filter((span): span is RawSpan => span.kind === "raw").map((span) => span.object)
  const files = runs.flatMap((run) => run.files)
  return [
    {
      kind: "group",
      key: group.flatMap(ownKeys).sort(byText).at(-1)!,
      size: files.reduce((n, f) => n + f.bytes, 0) + raw.reduce((n, o) => n + o.size, 0),
      lastModified: latest([...runs.map((run) => run.createdAt), ...raw.map((o) => o.lastModified)]),
      files,
      raw,
      unresolved: runs.flatMap((run) => run.unresolved),
      undecodable: runs.reduce((n, run) => n + run.undecodable, 0)
    }
  ]
}

/**
 * The units of a replay from Parquet, in the order to apply them (their keys' order).
 * `raw` is the raw listing of the replay's window (compacted objects included: what a run left
 * out of them is reported); files count when their commit day and table are in the window.
 */
export const planParquetReplay = (
  manifests: ReadonlyArray<CompactionManifest>,
  raw: ReadonlyArray<RawObjectRef>,
  window: ParquetWindow = {}
): Array<ParquetReplayStep> => {
  const fromDay = window.from?.toISOString().slice(0, 10)
  const toDay = window.to?.toISOString().slice(0, 10)
  const tables = window.tables && window.tables.length > 0 ? new Set(window.tables) : undefined
  const wanted = (file: ManifestOutput) => (!fromDay || file.date >= fromDay) && (!toDay || file.date <= toDay) && (!tables || tables.has(file.table))
  const inWindow = new Set(raw.map((object) => object.key))
  const compacted = new Set<string>()
  const spans: Array<Span> = []
  // By run id (creation time): an object two runs read (concurrent compactions) is reported once.
  for (const manifest of [...manifests].sort((a, b) => byText(a.run, b.run))) {
    const keys = manifest.inputs.map((input) => input.key).sort(byText)
    if (keys.length === 0) continue
    const createdAt = new Date(manifest.createdAt)
    const unresolved: Array<string> = []
    let undecodable = 0
    for (const input of manifest.inputs) {
      if (!inWindow.has(input.key) || compacted.has(input.key)) continue
      unresolved.push(...(input.unresolved ?? []))
      undecodable += input.undecodable ?? 0
    }
    for (const key of keys) compacted.add(key)
    const files = manifest.outputs.filter(wanted).map((output): ParquetFileRef => ({ ...output, lastModified: createdAt }))
    if (files.length === 0 && unresolved.length === 0 && undecodable === 0) continue
    spans.push({ kind: "run", first: keys[0]!, last: keys.at(-1)!, createdAt, files, unresolved, undecodable })
  }
  for (const object of raw) if (!compacted.has(object.key)) spans.push({ kind: "raw", first: object.key, last: object.key, object })
  spans.sort((a, b) => byText(a.first, b.first))

  const steps: Array<ParquetReplayStep> = []
  let group: Array<Span> = []
  let end = ""
  for (const span of spans) {
    if (group.length > 0 && span.first > end) {
      steps.push(...stepsOf(group))
      group = []
    }
    if (group.length === 0 || span.last > end) end = span.last
    group.push(span)
  }
  if (group.length > 0) steps.push(...stepsOf(group))
  return steps
}

/** Change events in source order (commit LSN, then index; stable), other records after them. */
export const inPositionOrder = (records: ReadonlyArray<StreamRecord>): Array<StreamRecord> => {
  const lsns = new Map<string, bigint>()
  const lsn = (text: string) => {
    let value = lsns.get(text)
    if (value === undefined) lsns.set(text, (value = lsnToBigInt(text)))
    return value
  }
  const changes = records.filter((r): r is ChangeEvent => r.kind === "change")
  const others = records.filter((r) => r.kind !== "change")
  const before = (a: ChangeEvent, b: ChangeEvent) => {
    const x = lsn(a.source.commitLsn)
    const y = lsn(b.source.commitLsn)
    return x < y ? -1 : x > y ? 1 : a.source.index - b.source.index
  }
  let sorted = true
  for (let i = 1; i < changes.length && sorted; i++) sorted = before(changes[i - 1]!, changes[i]!) <= 0
  return [...(sorted ? changes : changes.sort(before)), ...others]
}
