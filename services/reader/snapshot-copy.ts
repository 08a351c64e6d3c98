/**
 * The bulk initial snapshot of one table: `COPY … TO STDOUT` inside the caller's snapshot
 * transaction, cut into chunks of `chunkRows` rows; each chunk is written to the lake
 * (snapshots/…, COPY text format, gzip) and then announced on the stream by one small
 * SnapshotChunk record (a claim check for the chunk's rows). The consumer merges a chunk
 * set-wise; replay and compaction read the same objects back as op "r" events.
 *
 * A chunk holds the rows of one shard (see readTableInChunks). A chunk is announced only after its
 * object is written, so a pointer Kinesis accepted always resolves. Reading the next chunk overlaps the upload of the previous ones (at most
 * `UPLOADS_IN_FLIGHT`); pointers are announced in chunk order.
 */
import { randomUUID } from "node:crypto"
import type { Readable } from "node:stream"
import { Effect } from "effect"
import pg from "pg"
import { to as copyTo } from "pg-copy-streams"
import { SCHEMA_VERSION, snapshotChunkId, type ChunkColumn, type SnapshotChunk } from "../../contracts/change-event.ts"
import { snapshotChunkKey } from "../../contracts/lake.ts"
import { decodeValue, PgType } from "../../contracts/pg-text-values.ts"
import { encodeChunk, unescapeCopyField } from "../lake/snapshot-chunks.ts"
import { partitionKeyFor } from "../shared/kinesis/shard-map.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"

export const DEFAULT_CHUNK_ROWS = 100_000

const UPLOADS_IN_FLIGHT = 2

/** The rows held for chunks being filled (one per shard), at most. */
const MAX_PENDING_BYTES = 64 * 1024 * 1024

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`

/** The table's columns in their order (what `SELECT *` and `COPY table` give), with their types. */
export const tableColumns = async (client: pg.ClientBase, table: string): Promise<Array<ChunkColumn>> => {
  const { rows } = await client.query(
    `SELECT a.attname AS name, a.atttypid::int AS "typeOid", format_type(a.atttypid, a.atttypmod) AS "typeName", t.typcategory AS category
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [`public.${quote(table)}`]
  )
  return rows as Array<ChunkColumn>
}

/** The text of field `index` of a COPY text line (still escaped). */
const fieldText = (line: Buffer, index: number): string => {
  let start = 0
  for (let i = 0; i < index; i++) start = line.indexOf(9, start) + 1
  const end = line.indexOf(9, start)
  return line.toString("utf8", start, end < 0 ? line.length : end)
}

export interface ChunkedReadOptions {
  readonly lake: LakeStoreShape
  readonly database: string
  readonly consistentPoint: string
  /** The snapshot's moment (source.committedAt of every row). */
  readonly committedAt: string
  readonly table: string
  readonly keyColumns: ReadonlyArray<string>
  readonly chunkRows?: number
  /** The shard (index) a partition key goes to now, and how many shards there are. */
  readonly route: (partitionKey: string) => number
  readonly shards: number
  /** Puts a pointer on the stream with the partition key of one of its rows (resolves once it is in the outbox). */
  readonly announce: (pointer: SnapshotChunk, partitionKey: string) => Promise<void>
  /** After each announced chunk: rows of the table so far. Throwing stops the read (e.g. a stop was requested). */
  readonly onChunk: (rows: number) => void
}

/** The rows of one shard waiting to become a chunk. */
interface Pending {
  parts: Array<Buffer>
  rows: number
  bytes: number
  /** Partition key of its first row: the pointer goes where that row's changes go. */
  partitionKey: string
}

/**
 * Reads the table in the caller's open snapshot transaction; returns the number of rows.
 *
 * Rows are grouped by the shard their own partition key goes to, and each chunk's pointer goes to
 * that shard: a row's chunk then comes before the row's later changes on one shard, in order, as
 * its op "r" event did (a delete that carries only the key finds the row's image in the warehouse).
 */
export const readTableInChunks = async (client: pg.ClientBase, options: ChunkedReadOptions): Promise<number> => {
  const chunkRows = Math.max(1, options.chunkRows ?? DEFAULT_CHUNK_ROWS)
  const columns = await tableColumns(client, options.table)
  const keyIndexes = options.keyColumns.map((key) => columns.findIndex((c) => c.name === key))
  if (keyIndexes.some((i) => i < 0)) throw new Error(`table ${options.table}: key ${options.keyColumns.join(", ")} is not among its columns`)
  const attempt = randomUUID().slice(0, 8)
  const source = {
    db: options.database,
    schema: "public",
    table: options.table,
    commitLsn: options.consistentPoint,
    lsn: null,
    xid: null,
    committedAt: options.committedAt,
    index: -1,
    snapshot: true
  }
  let announced = 0
  let chunk = 0
  // Uploads run ahead of the COPY; announcements follow in chunk order.
  let queue: Promise<void> = Promise.resolve()
  const inFlight = new Set<Promise<void>>()
  let failure: unknown

  const ship = (pending: Pending) => {
    const index = chunk++
    const rows = pending.rows
    const key = snapshotChunkKey(options.consistentPoint, options.table, attempt, index)
    const uploaded = encodeChunk(Buffer.concat(pending.parts)).then(async (body) => {
      await Effect.runPromise(options.lake.putNew(key, body, "application/gzip"))
      return body.byteLength
    })
    uploaded.catch(() => {})
    const announcedHere = queue.then(async () => {
      const bytes = await uploaded
      await options.announce(
        {
          kind: "snapshot-chunk",
          schemaVersion: SCHEMA_VERSION,
          id: snapshotChunkId(options.consistentPoint, options.table, attempt, index),
          source,
          keyColumns: [...options.keyColumns],
          columns,
          chunk: index,
          rows,
          object: { bucket: options.lake.bucket, key, bytes }
        },
        pending.partitionKey
      )
      announced += rows
      options.onChunk(announced)
    })
    const settled = announcedHere.catch((error: unknown) => {
      failure ??= error
    })
    queue = settled
    inFlight.add(settled)
    void settled.then(() => inFlight.delete(settled))
  }

  // An integer key's text is its value's text: the partition key without decoding (the usual case).
  const integerKey = keyIndexes.length === 1 && [PgType.int2, PgType.int4, PgType.int8].includes(columns[keyIndexes[0]!]!.typeOid as 21)
  /** The partition key of a row (its line of COPY text), as partitionKeyFor gives it for the row's event. */
  const partitionKeyOf = (line: Buffer): string => {
    if (integerKey) return `${options.table}:${fieldText(line, keyIndexes[0]!)}`
    const key: Record<string, unknown> = {}
    keyIndexes.forEach((index, i) => {
      const text = fieldText(line, index)
      key[options.keyColumns[i]!] = decodeValue(columns[index]!.typeOid, text === "\\N" ? null : text.includes("\\") ? unescapeCopyField(text) : text)
    })
    return partitionKeyFor(options.table, key)
  }
  const singleShard = options.shards === 1

  const pending = new Map<number, Pending>()
  let pendingBytes = 0
  const stream = client.query(copyTo(`COPY public.${quote(options.table)} (${columns.map((c) => quote(c.name)).join(", ")}) TO STDOUT`)) as unknown as Readable
  let carry: Buffer | undefined
  try {
    for await (const received of stream as AsyncIterable<Buffer>) {
      if (failure) throw failure
      const data = carry ? Buffer.concat([carry, received]) : received
      carry = undefined
      let from = 0
      for (let at = data.indexOf(10, from); at >= 0; at = data.indexOf(10, from)) {
        const line = data.subarray(from, at + 1)
        from = at + 1
        // One shard: every row goes there (only a chunk's first row needs its key).
        const partitionKey = singleShard && pending.has(0) ? "" : partitionKeyOf(line.subarray(0, line.length - 1))
        const shard = singleShard ? 0 : options.route(partitionKey)
        let rows = pending.get(shard)
        if (!rows) pending.set(shard, (rows = { parts: [], rows: 0, bytes: 0, partitionKey }))
        rows.parts.push(line)
        rows.bytes += line.length
        pendingBytes += line.length
        let full: Pending | undefined = ++rows.rows >= chunkRows ? rows : undefined
        // Many shards: the chunks being filled together stay under a memory bound (the largest goes early).
        if (!full && pendingBytes > MAX_PENDING_BYTES) full = [...pending.values()].reduce((a, b) => (a.bytes >= b.bytes ? a : b))
        if (!full) continue
        for (const [index, candidate] of pending) if (candidate === full) pending.delete(index)
        pendingBytes -= full.bytes
        ship(full)
        // Backpressure: the COPY waits while enough chunks are being uploaded.
        while (inFlight.size >= UPLOADS_IN_FLIGHT && !failure) await Promise.race(inFlight)
        if (failure) throw failure
      }
      if (from < data.length) carry = data.subarray(from)
    }
    if (carry && carry.length > 0) throw new Error(`table ${options.table}: COPY output ended inside a row`)
    for (const rows of [...pending.values()].sort((a, b) => (a.partitionKey < b.partitionKey ? -1 : 1))) ship(rows)
  } catch (error) {
    stream.destroy()
    await queue
    throw error
  }
  await queue
  if (failure) throw failure
  return announced
}
