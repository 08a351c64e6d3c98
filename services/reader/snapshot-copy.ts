/**
 * The bulk initial snapshot of one table: `COPY … TO STDOUT` inside the caller's snapshot
 * transaction, cut into chunks of `chunkRows` rows; each chunk is written to the lake
 * (snapshots/…, COPY text format, gzip) and then announced on the stream by one small
 * SnapshotChunk record (a claim check for the chunk's rows). The consumer merges a chunk
 * set-wise; replay and compaction read the same objects back as op "r" events.
 *
 * A chunk is announced only after its object is written, so a pointer Kinesis accepted always
 * resolves. Reading the next chunk overlaps the upload of the previous ones (at most
 * `UPLOADS_IN_FLIGHT`); pointers are announced in chunk order.
 */
import { randomUUID } from "node:crypto"
import type { Readable } from "node:stream"
import { Effect } from "effect"
import pg from "pg"
import { to as copyTo } from "pg-copy-streams"
import { SCHEMA_VERSION, snapshotChunkId, type ChunkColumn, type SnapshotChunk } from "../../contracts/change-event.ts"
import { snapshotChunkKey } from "../../contracts/lake.ts"
import { encodeChunk } from "../lake/snapshot-chunks.ts"
import type { LakeStoreShape } from "../shared/lake-store.ts"

export const DEFAULT_CHUNK_ROWS = 100_000

const UPLOADS_IN_FLIGHT = 2

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

export interface ChunkedReadOptions {
  readonly lake: LakeStoreShape
  readonly database: string
  readonly consistentPoint: string
  /** The snapshot's moment (source.committedAt of every row). */
  readonly committedAt: string
  readonly table: string
  readonly keyColumns: ReadonlyArray<string>
  readonly chunkRows?: number
  /** Puts a pointer on the stream (resolves once it is in the outbox). */
  readonly announce: (pointer: SnapshotChunk) => Promise<void>
  /** After each announced chunk: rows of the table so far. Throwing stops the read (e.g. a stop was requested). */
  readonly onChunk: (rows: number) => void
}

/** Reads the table in the caller's open snapshot transaction; returns the number of rows. */
export const readTableInChunks = async (client: pg.ClientBase, options: ChunkedReadOptions): Promise<number> => {
  const chunkRows = Math.max(1, options.chunkRows ?? DEFAULT_CHUNK_ROWS)
  const columns = await tableColumns(client, options.table)
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

  const ship = (text: Buffer, rows: number) => {
    const index = chunk++
    const key = snapshotChunkKey(options.consistentPoint, options.table, attempt, index)
    const uploaded = encodeChunk(text).then(async (body) => {
      await Effect.runPromise(options.lake.putNew(key, body, "application/gzip"))
      return body.byteLength
    })
    uploaded.catch(() => {})
    const announcedHere = queue.then(async () => {
      const bytes = await uploaded
      await options.announce({
        kind: "snapshot-chunk",
        schemaVersion: SCHEMA_VERSION,
        id: snapshotChunkId(options.consistentPoint, options.table, attempt, index),
        source,
        keyColumns: [...options.keyColumns],
        columns,
        chunk: index,
        rows,
        object: { bucket: options.lake.bucket, key, bytes }
      })
      announced += rows
      options.onChunk(announced)
    })
    queue = announcedHere.catch((error: unknown) => {
      failure ??= error
    })
    inFlight.add(queue)
    void queue.then(() => inFlight.delete(queue))
  }

  const stream = client.query(copyTo(`COPY public.${quote(options.table)} (${columns.map((c) => quote(c.name)).join(", ")}) TO STDOUT`)) as unknown as Readable
  let parts: Array<Buffer> = []
  let rows = 0
  try {
    for await (const data of stream as AsyncIterable<Buffer>) {
      if (failure) throw failure
      let from = 0
      for (let at = data.indexOf(10, from); at >= 0; at = data.indexOf(10, at + 1)) {
        if (++rows < chunkRows) continue
        parts.push(data.subarray(from, at + 1))
        ship(Buffer.concat(parts), rows)
        parts = []
        rows = 0
        from = at + 1
        // Backpressure: the COPY waits while enough chunks are being uploaded.
        while (inFlight.size >= UPLOADS_IN_FLIGHT && !failure) await Promise.race(inFlight)
        if (failure) throw failure
      }
      if (from < data.length) parts.push(data.subarray(from))
    }
    if (rows > 0) ship(Buffer.concat(parts), rows)
  } catch (error) {
    stream.destroy()
    await queue
    throw error
  }
  await queue
  if (failure) throw failure
  return announced
}
