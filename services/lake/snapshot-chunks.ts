/**
 * Snapshot chunks in the lake: the rows of one piece of a table's initial snapshot, exactly as
 * `COPY (SELECT …) TO STDOUT` wrote them (text format), gzip-compressed, under snapshots/. The
 * stream carries one SnapshotChunk record per object instead of a change event per row.
 *
 *   encodeChunk(copyText)              producer: the object's body
 *   chunkEvents(pointer, body)         the op "r" change events the chunk stands for, exactly as
 *                                      the row-by-row snapshot built them (same ids, same values)
 *   expandSnapshotChunks(lake, records) readers of the lake and the stream (replay, compaction,
 *                                      tests): every pointer replaced by its events
 *
 * Values go through the reader's own decoder (contracts/pg-text-values.ts): COPY's text form of a
 * value is the text form a SELECT returns, so nothing differs from the row path.
 */
import { promisify } from "node:util"
import { gunzip, gzip } from "node:zlib"
import { Effect, Result, Schema } from "effect"
import { snapshotEventId, SCHEMA_VERSION, type ChangeEvent, type Row, type SnapshotChunk, type StreamRecord } from "../../contracts/change-event.ts"
import { decodeValue } from "../../contracts/pg-text-values.ts"
import type { LakeError, LakeStoreShape } from "../shared/lake-store.ts"
import { isMissingObject } from "./claims.ts"

const gzipAsync = promisify(gzip)
const gunzipAsync = promisify(gunzip)

/** The object's body: gzip at level 1 (the snapshot is bound by the reader's CPU, not by bytes). */
export const encodeChunk = (copyText: Uint8Array): Promise<Buffer> => gzipAsync(copyText, { level: 1 })

export const decodeChunk = (body: Uint8Array): Promise<Buffer> => gunzipAsync(body)

const ESCAPES: Readonly<Record<string, string>> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" }

/** One field of COPY's text format: backslash escapes undone (`\N` alone is NULL, handled by the caller). */
export const unescapeCopyField = (field: string): string =>
  field.replace(/\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|.)/g, (_, escaped: string) => {
    if (escaped.length > 1 || /[0-7]/.test(escaped)) {
      return escaped.startsWith("x") ? String.fromCharCode(parseInt(escaped.slice(1), 16)) : String.fromCharCode(parseInt(escaped, 8))
    }
    return ESCAPES[escaped] ?? escaped
  })

/** Rows of COPY's text format (tab-separated, one row a line): each field's text, or null. */
export const parseCopyText = (text: string): Array<Array<string | null>> => {
  const rows: Array<Array<string | null>> = []
  let start = 0
  while (start < text.length) {
    let end = text.indexOf("\n", start)
    if (end < 0) end = text.length
    const line = text.slice(start, end)
    start = end + 1
    rows.push(line.split("\t").map((field) => (field === "\\N" ? null : field.includes("\\") ? unescapeCopyField(field) : field)))
  }
  return rows
}

/** The op "r" change events a chunk stands for, in the chunk's order. */
export const chunkEvents = (pointer: SnapshotChunk, copyText: string): Array<ChangeEvent> => {
  const { columns, keyColumns, source } = pointer
  const keyIndexes = keyColumns.map((key) => columns.findIndex((c) => c.name === key))
  return parseCopyText(copyText).map((fields): ChangeEvent => {
    if (fields.length !== columns.length) throw new Error(`snapshot chunk ${pointer.object.key}: a row has ${fields.length} fields, the chunk ${columns.length} columns`)
    const after: Record<string, Row[string]> = {}
    for (let i = 0; i < columns.length; i++) after[columns[i]!.name] = decodeValue(columns[i]!.typeOid, fields[i]!) as Row[string]
    const key: Record<string, Row[string]> = {}
    keyIndexes.forEach((index, i) => (key[keyColumns[i]!] = index >= 0 ? after[columns[index]!.name]! : null))
    return {
      kind: "change",
      schemaVersion: SCHEMA_VERSION,
      id: snapshotEventId(source.commitLsn, source.table, key),
      op: "r",
      source,
      key,
      before: null,
      after,
      unchanged: []
    }
  })
}

/** A chunk's object that is not gzip (so not what the pointer says). */
export class SnapshotChunkUnreadable extends Schema.TaggedError<SnapshotChunkUnreadable>()("SnapshotChunkUnreadable", {
  key: Schema.String,
  message: Schema.String
}) {}

/** The chunk's rows as COPY text (gunzipped); a failure of the lake is the caller's to retry. */
export const readChunkText = (lake: LakeStoreShape, pointer: SnapshotChunk): Effect.Effect<Buffer, LakeError | SnapshotChunkUnreadable> =>
  Effect.flatMap(lake.get(pointer.object.key), (body) =>
    Effect.tryPromise({
      try: () => decodeChunk(body),
      catch: (error) => new SnapshotChunkUnreadable({ key: pointer.object.key, message: `snapshot chunk ${pointer.object.key}: ${(error as Error)?.message ?? String(error)}` })
    })
  )

/**
 * Every snapshot chunk replaced by its change events; the ids of chunks that cannot be read
 * (missing from the lake, or not what the pointer says) are returned and their rows left out.
 * A lake that cannot be read fails: the caller retries or stops, no chunk is skipped for it.
 */
export const expandSnapshotChunks = Effect.fn("expandSnapshotChunks")(function* (
  lake: LakeStoreShape,
  records: ReadonlyArray<StreamRecord>
): Effect.fn.Return<{ records: Array<StreamRecord>; unresolved: Array<string> }, LakeError> {
  if (!records.some((r) => r.kind === "snapshot-chunk")) return { records: [...records], unresolved: [] }
  const out: Array<StreamRecord> = []
  const unresolved: Array<string> = []
  for (const record of records) {
    if (record.kind !== "snapshot-chunk") {
      out.push(record)
      continue
    }
    const text = yield* readChunkText(lake, record).pipe(
      Effect.catchTag("SnapshotChunkUnreadable", () => Effect.succeed(undefined)),
      Effect.catchIf(isMissingObject, () => Effect.succeed(undefined))
    )
    if (!text) {
      unresolved.push(record.id)
      continue
    }
    const events = Result.try(() => chunkEvents(record, text.toString("utf8")))
    if (Result.isSuccess(events) && events.success.length === record.rows) out.push(...events.success)
    else unresolved.push(record.id)
  }
  return { records: out, unresolved }
})
