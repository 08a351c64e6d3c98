/**
 * The lake's object layout (the same whether Firehose or the local archiver writes it):
 *
 *   raw/YYYY/MM/DD/HH/<stream>-<first sequence>-<uuid>.ndjson.gz   gzip NDJSON, one stream record a line
 *   errors/YYYY/MM/DD/HH/<…>.ndjson.gz                              records that could not be delivered
 *   dead-letter/YYYY/MM/DD/HH/<shard>-<sequence>.json               records the consumer could not decode/apply, with the reason
 *   claims/<commit LSN sortable>/<event id>.json                    row images too large for one stream record
 *   snapshots/<consistent point sortable>/<table>/<attempt>-<chunk>.copy.gz   initial-snapshot rows: COPY text format, gzip
 *   parquet/<table>/date=YYYY-MM-DD/<uuid>.parquet                  compacted events per source table and day
 *   parquet/_manifests/<run>.json                                   what one compaction run wrote
 *
 * Keys are never reused: every write is a new object (`IfNoneMatch: *`).
 */
import { lsnSortable } from "./lsn.ts"

const hourPath = (at: Date) => {
  const iso = at.toISOString()
  return `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}`
}

/** `<prefix>YYYY/MM/DD/HH` without its slash: as a listing's StartAfter it sorts just before every key of that hour and later. */
export const hourListingStart = (prefix: string, at: Date) => `${prefix}${hourPath(at)}`

export const rawObjectKey = (at: Date, stream: string, firstSequence: string, uuid: string) =>
  `raw/${hourPath(at)}/${stream}-${firstSequence}-${uuid}.ndjson.gz`

/** One object per stream record: `id` is `<shard>-<sequence number>`, `at` its arrival time. */
export const deadLetterKey = (at: Date, id: string) => `dead-letter/${hourPath(at)}/${id.replace(/[^A-Za-z0-9:._-]/g, "_")}.json`

export const claimCheckKey = (commitLsn: string, eventId: string) =>
  `claims/${lsnSortable(commitLsn)}/${eventId.replace(/[^A-Za-z0-9:._-]/g, "_")}.json`

export const SNAPSHOTS_PREFIX = "snapshots/"

/** One chunk of the initial snapshot of a table (`attempt`: one reading of the table, `chunk` from 0). */
export const snapshotChunkKey = (consistentPoint: string, table: string, attempt: string, chunk: number) =>
  `${SNAPSHOTS_PREFIX}${lsnSortable(consistentPoint)}/${table.replace(/[^A-Za-z0-9_.-]/g, "_")}/${attempt}-${String(chunk).padStart(6, "0")}.copy.gz`

/** Hour prefixes covering [from, to] for listing raw objects by time. */
export const rawHourPrefixes = (from: Date, to: Date): Array<string> => {
  const prefixes: Array<string> = []
  const cursor = new Date(Math.floor(from.getTime() / 3_600_000) * 3_600_000)
  while (cursor.getTime() <= to.getTime()) {
    prefixes.push(`raw/${hourPath(cursor)}/`)
    cursor.setTime(cursor.getTime() + 3_600_000)
  }
  return prefixes
}

export const RAW_PREFIX = "raw/"
export const DEAD_LETTER_PREFIX = "dead-letter/"
export const PARQUET_PREFIX = "parquet/"

export const PARQUET_MANIFEST_PREFIX = "parquet/_manifests/"

export const parquetObjectKey = (table: string, date: string, uuid: string) => `${PARQUET_PREFIX}${table}/date=${date}/${uuid}.parquet`

export const parquetManifestKey = (run: string) => `${PARQUET_MANIFEST_PREFIX}${run}.json`

export interface RawObjectKey {
  /** Start of the hour of the key's time prefix (Firehose: arrival time of the object's oldest record). */
  readonly hour: Date
  /** Stream and first sequence number, when the name follows rawObjectKey (Firehose's own names do not). */
  readonly stream: string | undefined
  readonly firstSequence: string | undefined
}

const RAW_HOUR = /^raw\/(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})\/([^/]+)$/
const RAW_NAME = /^(.+)-(\d+)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.ndjson\.gz$/

/** Reads the hour (and, for rawObjectKey names, stream and sequence) of a raw object; undefined if not under raw/YYYY/MM/DD/HH/. */
export const parseRawObjectKey = (key: string): RawObjectKey | undefined => {
  const match = RAW_HOUR.exec(key)
  if (!match) return undefined
  const [, year, month, day, hour, name] = match
  const named = RAW_NAME.exec(name!)
  return { hour: new Date(`${year}-${month}-${day}T${hour}:00:00.000Z`), stream: named?.[1], firstSequence: named?.[2] }
}
