/**
 * Everything the reader asks of the source database outside the replication stream:
 * validation, publication, slot state, locks and heartbeat markers. Identifiers are validated
 * by config and always quoted; values are parameters.
 */
import pg from "pg"
import { normalizeLsn } from "../../contracts/lsn.ts"
import { REPAIR_MARKER_PREFIX } from "../../contracts/repair.ts"

export class SourceValidationError extends Error {
  override readonly name = "SourceValidationError"
}

/** A connection that runs one query at a time (a pg client, or the reader's serialised admin connection). */
export interface Queryable {
  query<R extends pg.QueryResultRow = any>(text: string, params?: ReadonlyArray<unknown>): Promise<pg.QueryResult<R>>
}

const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`

export const HEARTBEAT_PREFIX = "totes-heartbeat"

/**
 * Session settings for every source connection: the value decoder reads ISO dates and
 * timestamps, so the output format must not depend on the role's or database's defaults.
 */
export const SOURCE_SESSION_OPTIONS = "-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 -c TimeZone=UTC"

export interface SlotInfo {
  readonly slot: string
  readonly plugin: string
  readonly database: string
  readonly confirmedFlushLsn: string | null
  readonly restartLsn: string | null
  readonly activePid: number | null
  /** `reserved`, `extended`, `unreserved` (past max_slot_wal_keep_size: the next checkpoint invalidates it) or `lost`. */
  readonly walStatus: string | null
  /** PostgreSQL 17+: why the slot was invalidated (`wal_removed`, `rows_removed`, `wal_level_insufficient`, 18: `idle_timeout`). */
  readonly invalidationReason: string | null
  /** Bytes of WAL that can still be written before the slot is invalidated (null: no max_slot_wal_keep_size). */
  readonly safeWalSize: number | null
  /** PostgreSQL 17+: the slot is synchronised to standbys (null on older servers). */
  readonly failover: boolean | null
  /** PostgreSQL 17+: the slot was synchronised from a primary (this server was a standby). */
  readonly synced: boolean | null
}

export const validateSource = async (client: Queryable, tables: ReadonlyArray<string>, publication: string) => {
  const problems: Array<string> = []
  const wal = await client.query("SHOW wal_level")
  if (wal.rows[0].wal_level !== "logical") problems.push(`wal_level is '${wal.rows[0].wal_level}', logical replication needs 'logical' (set wal_level=logical and restart; on RDS: rds.logical_replication=1)`)
  const role = await client.query("SELECT rolreplication OR rolsuper AS can_replicate FROM pg_roles WHERE rolname = current_user")
  if (!role.rows[0]?.can_replicate) problems.push("the connecting role lacks the REPLICATION attribute (ALTER ROLE … WITH REPLICATION; on RDS: GRANT rds_replication)")
  const found = await client.query(
    `SELECT c.relname, c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
            has_table_privilege(c.oid, 'SELECT') AS can_select
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname = ANY($1)`,
    [tables]
  )
  const byName = new Map(found.rows.map((r) => [r.relname as string, r]))
  for (const table of tables) {
    const row = byName.get(table)
    if (!row) {
      problems.push(`table public.${table} does not exist`)
      continue
    }
    if (!row.can_select) problems.push(`no SELECT privilege on public.${table} (needed for the initial snapshot)`)
    if (row.relreplident === "n") problems.push(`public.${table} has REPLICA IDENTITY NOTHING: updates and deletes cannot be captured`)
    if (row.relreplident === "d" && !row.has_pk) problems.push(`public.${table} has no primary key and REPLICA IDENTITY DEFAULT: set REPLICA IDENTITY FULL or add a key`)
  }
  const publicationExists = (await client.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [publication])).rowCount! > 0
  if (!publicationExists) {
    const notOwned = await client.query(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname = ANY($1) AND NOT pg_has_role(current_user, c.relowner, 'USAGE')`,
      [tables]
    )
    if (notOwned.rows.length > 0) {
      problems.push(
        `publication '${publication}' does not exist and the role does not own ${notOwned.rows.map((r) => r.relname).join(", ")}: create it as the owner (CREATE PUBLICATION "${publication}" FOR TABLE …) or connect as the owner`
      )
    }
  }
  if (problems.length > 0) throw new SourceValidationError(`source database is not ready for capture:\n  - ${problems.join("\n  - ")}`)
}

/** Creates the publication if missing; adds tables that are missing from an existing one. */
export const ensurePublication = async (client: Queryable, publication: string, tables: ReadonlyArray<string>) => {
  const existing = await client.query("SELECT tablename FROM pg_publication_tables WHERE pubname = $1 AND schemaname = 'public'", [publication])
  const exists = (await client.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [publication])).rowCount! > 0
  const list = (names: ReadonlyArray<string>) => names.map((t) => `public.${quote(t)}`).join(", ")
  if (!exists) {
    await client.query(`CREATE PUBLICATION ${quote(publication)} FOR TABLE ${list(tables)}`)
    return
  }
  const have = new Set(existing.rows.map((r) => r.tablename as string))
  const missing = tables.filter((t) => !have.has(t))
  if (missing.length > 0) await client.query(`ALTER PUBLICATION ${quote(publication)} ADD TABLE ${list(missing)}`)
}

const orNull = <A>(value: A | undefined): A | null => (value === undefined ? null : value)

/** The slot as the server sees it. The row is read as JSON: its columns differ between PostgreSQL versions. */
export const slotInfo = async (client: Queryable, slot: string): Promise<SlotInfo | undefined> => {
  const { rows } = await client.query("SELECT to_jsonb(s) AS slot FROM pg_replication_slots s WHERE slot_name = $1", [slot])
  const row = rows[0]?.slot as Record<string, any> | undefined
  if (!row) return undefined
  return {
    slot: row.slot_name,
    plugin: row.plugin,
    database: row.database,
    confirmedFlushLsn: row.confirmed_flush_lsn ? normalizeLsn(row.confirmed_flush_lsn) : null,
    restartLsn: row.restart_lsn ? normalizeLsn(row.restart_lsn) : null,
    activePid: orNull(row.active_pid),
    walStatus: orNull(row.wal_status),
    invalidationReason: orNull(row.invalidation_reason),
    safeWalSize: row.safe_wal_size === null || row.safe_wal_size === undefined ? null : Number(row.safe_wal_size),
    failover: orNull(row.failover),
    synced: orNull(row.synced)
  }
}

/** `server_version_num`, e.g. 170004 for 17.4. */
export const serverVersionNum = async (client: Queryable): Promise<number> => Number((await client.query("SHOW server_version_num")).rows[0].server_version_num)

/** A physical replication slot: how a standby streams from this server. */
export interface PhysicalSlot {
  readonly name: string
  readonly active: boolean
  /** Set from the standby's hot_standby_feedback. */
  readonly xmin: string | null
  /** Set from the standby's feedback when it holds logical slots (e.g. synchronised ones). */
  readonly catalogXmin: string | null
  readonly walStatus: string | null
  readonly invalidationReason: string | null
}

/** What the primary can tell about standbys that would keep a failover slot (PostgreSQL 17+). */
export interface StandbyView {
  readonly serverVersionNum: number
  /** The primary's synchronized_standby_slots (empty before PostgreSQL 17 or when unset). */
  readonly synchronizedStandbySlots: ReadonlyArray<string>
  readonly physicalSlots: ReadonlyArray<PhysicalSlot>
  /** Names of logical slots, to tell a logical slot listed in synchronized_standby_slots. */
  readonly logicalSlots: ReadonlyArray<string>
}

export const standbyView = async (client: Queryable): Promise<StandbyView> => {
  const version = await serverVersionNum(client)
  const listed = version >= 170000 ? String((await client.query("SELECT current_setting('synchronized_standby_slots') AS v")).rows[0].v) : ""
  const { rows } = await client.query("SELECT to_jsonb(s) AS slot FROM pg_replication_slots s ORDER BY slot_name")
  const slots = rows.map((r) => r.slot as Record<string, any>)
  return {
    serverVersionNum: version,
    synchronizedStandbySlots: listed
      .split(",")
      .map((name) => name.trim().replace(/^"(.*)"$/, "$1"))
      .filter(Boolean),
    physicalSlots: slots
      .filter((s) => s.slot_type === "physical")
      .map((s) => ({
        name: s.slot_name,
        active: Boolean(s.active),
        xmin: orNull(s.xmin),
        catalogXmin: orNull(s.catalog_xmin),
        walStatus: orNull(s.wal_status),
        invalidationReason: orNull(s.invalidation_reason)
      })),
    logicalSlots: slots.filter((s) => s.slot_type === "logical").map((s) => s.slot_name as string)
  }
}

/**
 * Turns a logical slot's failover on or off (PostgreSQL 17+, replication command
 * ALTER_REPLICATION_SLOT). While a walsender holds the slot the server waits for it to be
 * released (PostgreSQL 18): run it with the reader stopped.
 */
export const setSlotFailover = async (connectionString: string, slot: string, failover: boolean) => {
  const connection = new pg.Client({ connectionString, replication: "database", application_name: "totes-reader-admin" } as pg.ClientConfig)
  connection.on("error", () => {}) // a dropped connection fails the query below
  await connection.connect()
  try {
    await connection.query(`ALTER_REPLICATION_SLOT ${quote(slot)} (FAILOVER ${failover})`)
  } finally {
    await connection.end().catch(() => {})
  }
}

/** The primary-key columns of the captured tables, in key order ("public.<table>" → columns). */
export const primaryKeys = async (client: Queryable, tables: ReadonlyArray<string>): Promise<Map<string, Array<string>>> => {
  const { rows } = await client.query<{ tbl: string; columns: Array<string> }>(
    `SELECT c.relname AS tbl, array_agg(a.attname::text ORDER BY array_position(i.indkey, a.attnum)) AS columns
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indisprimary AND n.nspname = 'public' AND c.relname = ANY($1)
      GROUP BY c.relname`,
    [tables]
  )
  return new Map(rows.map((r) => [`public.${r.tbl}`, r.columns]))
}

/** The columns (name, type OID, in order) of the captured tables as the catalogue has them now. */
export const tableSchemas = async (client: Queryable, tables: ReadonlyArray<string>): Promise<Record<string, Array<readonly [string, number]>>> => {
  const { rows } = await client.query<{ tbl: string; name: string; oid: number }>(
    `SELECT c.relname AS tbl, a.attname AS name, a.atttypid::int AS oid
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY c.relname, a.attnum`,
    [tables]
  )
  const out: Record<string, Array<readonly [string, number]>> = {}
  for (const row of rows) (out[row.tbl] ??= []).push([row.name, row.oid])
  return out
}

export const systemIdentifier = async (client: Queryable): Promise<string> =>
  String((await client.query("SELECT system_identifier::text AS id FROM pg_control_system()")).rows[0].id)

/**
 * The WAL insert position: past every commit record written so far. (pg_current_wal_lsn() is the
 * *write* position, which lags behind commits made with synchronous_commit=off.)
 */
export const currentWalLsn = async (client: Queryable): Promise<string> =>
  normalizeLsn((await client.query("SELECT pg_current_wal_insert_lsn()::text AS lsn")).rows[0].lsn)

/**
 * Session-level advisory lock so two readers never consume one slot. Held for as long as
 * `client` stays connected. Returns false if another session holds it.
 */
export const tryLockSlot = async (client: Queryable, slot: string): Promise<boolean> =>
  Boolean((await client.query("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked", [`totes-reader:${slot}`])).rows[0].locked)

/** A WAL marker the reader sees in its own stream: proof that everything before it was delivered. */
export const emitHeartbeatMarker = async (client: Queryable): Promise<string> => {
  const { rows } = await client.query("SELECT pg_logical_emit_message(false, $1, $2)::text AS lsn", [
    HEARTBEAT_PREFIX,
    JSON.stringify({ at: new Date().toISOString() })
  ])
  return normalizeLsn(rows[0].lsn)
}

/**
 * Drops the slot once no walsender holds it: a reader that just disconnected leaves its walsender
 * marked active for a moment, and dropping an active slot fails.
 */
export const dropSlot = async (client: Queryable, slot: string, waitMs = 10_000) => {
  const deadline = Date.now() + waitMs
  for (;;) {
    const { rows } = await client.query("SELECT active FROM pg_replication_slots WHERE slot_name = $1", [slot])
    if (rows.length === 0) return
    if (!rows[0].active || Date.now() > deadline) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await client.query("SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", [slot])
}

/** A repair's WAL marker (see repair-window.ts); returns its LSN. */
export const emitRepairMarker = async (client: Queryable, content: string): Promise<string> => {
  const { rows } = await client.query("SELECT pg_logical_emit_message(false, $1, $2)::text AS lsn", [REPAIR_MARKER_PREFIX, content])
  return normalizeLsn(rows[0].lsn)
}

/** The top-level transactions running now (xid8 as text), as a new snapshot sees them. */
export const runningTransactions = async (client: Queryable): Promise<Array<string>> =>
  (await client.query("SELECT x::text AS xid FROM pg_snapshot_xip(pg_current_snapshot()) x")).rows.map((r) => r.xid as string)

/**
 * Those of `xids` a new snapshot still sees as running. (A committed transaction can be in the
 * commit log and still running for snapshots while it waits for its WAL flush or a synchronous
 * standby; only this, not pg_xact_status, says when its changes become visible.)
 */
export const stillRunning = async (client: Queryable, xids: ReadonlyArray<string>): Promise<Array<string>> =>
  xids.length === 0
    ? []
    : (await client.query("SELECT x::text AS xid FROM unnest($1::xid8[]) x WHERE NOT pg_visible_in_snapshot(x, pg_current_snapshot())", [xids])).rows.map(
        (r) => r.xid as string
      )
