/**
 * The initial snapshot. A new slot is created with an exported snapshot (`CREATE_REPLICATION_SLOT
 * … (SNAPSHOT 'export')`): reading the tables in that snapshot gives exactly the state at the
 * slot's consistent point, and streaming from that point gives every later change — no gap,
 * no overlap. Progress is checkpointed per table; a snapshot interrupted part-way resumes the
 * remaining tables in a fresh snapshot (the exported one dies with its connection), labelled
 * with the consistent point so the changes streamed after it still win by position.
 */
import pg from "pg"
import { snapshotEventId, SCHEMA_VERSION, type ChangeEvent, type Row } from "../../contracts/change-event.ts"
import { normalizeLsn } from "../../contracts/lsn.ts"
import { PRIMARY_KEYS, isTotesysTable } from "../../contracts/totesys.ts"
import { SOURCE_SESSION_OPTIONS, type Queryable } from "./source-admin.ts"
import { decodeValue } from "./values.ts"

export interface CreatedSlot {
  readonly consistentPoint: string
  /** Taken just before the slot was created: everything committed up to it is in the snapshot. */
  readonly createdAt: string
  readonly snapshotName: string
  /** Keep open until the snapshot has been read: the exported snapshot lives as long as it. */
  readonly connection: pg.Client
}

/**
 * `failover` (PostgreSQL 17+ only) marks the slot for synchronisation to standbys with
 * sync_replication_slots = on, so that a promoted standby has it.
 */
export const createSlotWithSnapshot = async (connectionString: string, slot: string, options: { readonly failover?: boolean } = {}): Promise<CreatedSlot> => {
  const connection = new pg.Client({ connectionString, replication: "database", options: SOURCE_SESSION_OPTIONS } as pg.ClientConfig)
  await connection.connect()
  try {
    const createdAt = new Date().toISOString()
    const { rows } = await connection.query(`CREATE_REPLICATION_SLOT "${slot}" LOGICAL pgoutput (SNAPSHOT 'export'${options.failover ? ", FAILOVER true" : ""})`)
    return { consistentPoint: normalizeLsn(rows[0].consistent_point), createdAt, snapshotName: rows[0].snapshot_name, connection }
  } catch (error) {
    await connection.end().catch(() => {})
    throw error
  }
}

const rawText = { getTypeParser: () => (value: string) => value }

/** Primary-key columns of a table (catalog lookup, falls back to the known totesys keys). */
export const keyColumns = async (client: pg.ClientBase, table: string): Promise<Array<string>> => {
  const { rows } = await client.query(
    `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`,
    [`public."${table}"`]
  )
  if (rows.length > 0) return rows.map((r) => r.attname as string)
  return isTotesysTable(table) ? [PRIMARY_KEYS[table]] : []
}

export interface SnapshotReadOptions {
  readonly database: string
  readonly consistentPoint: string
  /** The snapshot's moment (source.committedAt of every row it reads). */
  readonly committedAt: string
  readonly table: string
  readonly batchRows?: number
  readonly onBatch: (events: ReadonlyArray<ChangeEvent>) => Promise<void>
}

/**
 * Reads one table inside the caller's open REPEATABLE READ transaction (already set to the
 * exported snapshot, or a fresh one on resume) with a cursor, in key order, `batchRows` at a time.
 */
export const readTableSnapshot = async (client: pg.ClientBase, options: SnapshotReadOptions): Promise<number> => {
  const keys = await keyColumns(client, options.table)
  const order = keys.length > 0 ? ` ORDER BY ${keys.map((k) => `"${k}"`).join(", ")}` : ""
  const cursor = `totes_snapshot_${options.table}`
  await client.query(`DECLARE "${cursor}" NO SCROLL CURSOR FOR SELECT * FROM public."${options.table}"${order}`)
  const committedAt = options.committedAt
  let total = 0
  for (;;) {
    const result = await client.query({ text: `FETCH ${options.batchRows ?? 2000} FROM "${cursor}"`, types: rawText })
    if (result.rows.length === 0) break
    const types = new Map(result.fields.map((f) => [f.name, f.dataTypeID]))
    const events = result.rows.map((raw): ChangeEvent => {
      const after: Record<string, Row[string]> = {}
      for (const [column, text] of Object.entries(raw)) after[column] = decodeValue(types.get(column) ?? 25, text as string | null) as Row[string]
      const key: Record<string, Row[string]> = {}
      for (const column of keys) key[column] = after[column] ?? null
      return {
        kind: "change",
        schemaVersion: SCHEMA_VERSION,
        id: snapshotEventId(options.consistentPoint, options.table, key),
        op: "r",
        source: {
          db: options.database,
          schema: "public",
          table: options.table,
          commitLsn: options.consistentPoint,
          lsn: null,
          xid: null,
          committedAt,
          index: -1,
          snapshot: true
        },
        key,
        before: null,
        after,
        unchanged: []
      }
    })
    total += events.length
    await options.onBatch(events)
  }
  await client.query(`CLOSE "${cursor}"`)
  return total
}

/** The primary key of a table with each column's type (the online repair reads by key range). */
export const primaryKeyColumns = async (client: Queryable, table: string): Promise<Array<{ readonly name: string; readonly type: string }>> => {
  const { rows } = await client.query(
    `SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`,
    [`public."${table}"`]
  )
  return rows.map((r) => ({ name: r.name as string, type: r.type as string }))
}

/** The table's size as the planner estimates it; counted when it has no estimate or is small. */
export const estimateRows = async (client: Queryable, table: string): Promise<number> => {
  const { rows } = await client.query("SELECT reltuples::bigint AS n FROM pg_class WHERE oid = $1::regclass", [`public."${table}"`])
  const estimate = Number(rows[0]?.n ?? -1)
  if (estimate >= 100_000) return estimate
  return Number((await client.query(`SELECT count(*) AS n FROM public."${table}"`)).rows[0].n)
}

/** The largest key of a table (null: the table is empty). */
export const maxKey = async (client: Queryable, table: string, keyColumn: string): Promise<number | null> => {
  const { rows } = await client.query(`SELECT max("${keyColumn.replace(/"/g, '""')}")::text AS k FROM public."${table.replace(/"/g, '""')}"`)
  return rows[0].k === null ? null : Number(rows[0].k)
}

/**
 * One chunk of a table in key order: the rows whose integer key is after `after` (null: from
 * the smallest) and at most `upTo`, at most `limit` of them, read in one statement (one
 * snapshot), decoded losslessly.
 */
export const readKeyChunk = async (
  client: pg.ClientBase,
  options: { readonly table: string; readonly keyColumn: string; readonly after: number | null; readonly upTo: number; readonly limit: number }
): Promise<Array<Row>> => {
  const key = `"${options.keyColumn.replace(/"/g, '""')}"`
  const from = `public."${options.table.replace(/"/g, '""')}"`
  const result =
    options.after === null
      ? await client.query({ text: `SELECT * FROM ${from} WHERE ${key} <= $1 ORDER BY ${key} LIMIT $2`, values: [options.upTo, options.limit], types: rawText })
      : await client.query({
          text: `SELECT * FROM ${from} WHERE ${key} > $1 AND ${key} <= $2 ORDER BY ${key} LIMIT $3`,
          values: [options.after, options.upTo, options.limit],
          types: rawText
        })
  const types = new Map(result.fields.map((f) => [f.name, f.dataTypeID]))
  return result.rows.map((raw) => {
    const row: Record<string, Row[string]> = {}
    for (const [column, text] of Object.entries(raw)) row[column] = decodeValue(types.get(column) ?? 25, text as string | null) as Row[string]
    return row
  })
}
