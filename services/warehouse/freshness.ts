/**
 * How far a warehouse rebuilt by replay is consistent (migration 004: <pipeline>.replay_position,
 * read through the pipeline_freshness view when the warehouse has no live shards).
 *
 *   await recordReplayPosition(client, schemas, { lsn, committedAt, name })   // forward only
 *   const freshness = await readWarehouseFreshness(client, schemas)           // + which of stream/replay
 */
import type pg from "pg"
import { normalizeLsn } from "../../contracts/lsn.ts"
import { resolveSchemas, type WarehouseSchemas } from "./migrate.ts"

export interface ReplayPosition {
  readonly lsn: string
  /** Commit time of the position (null when unknown). */
  readonly committedAt: string | null
}

/** The warehouse's pipeline_freshness: how far it is consistent with the source. */
export interface Freshness {
  readonly consistentThroughLsn: string | null
  readonly consistentThroughAt: Date | null
}

export interface WarehouseFreshness {
  readonly consistentThroughLsn: string | null
  readonly consistentThroughAt: Date | null
  /** stream: the live pipeline's shards; replay: the replay that built the warehouse; null: neither yet. */
  readonly source: "stream" | "replay" | null
}

/** The position the last complete replay into this warehouse reached, if any. */
export const readReplayPosition = async (client: pg.ClientBase, schemas: WarehouseSchemas = {}): Promise<ReplayPosition | null> => {
  const { p } = resolveSchemas(schemas)
  // The time as ISO text with the microseconds commit times carry (a JS Date would keep milliseconds).
  const { rows } = await client.query(
    `SELECT consistent_through_lsn::text AS lsn,
            to_char(consistent_through_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at
     FROM ${p}.replay_position`
  )
  return rows[0] ? { lsn: normalizeLsn(rows[0].lsn), committedAt: rows[0].at ?? null } : null
}

/** Records that everything committed before `position` is in the warehouse; never moves it back. */
export const recordReplayPosition = async (
  client: pg.ClientBase,
  schemas: WarehouseSchemas,
  position: ReplayPosition & { readonly name: string }
): Promise<void> => {
  const { p } = resolveSchemas(schemas)
  await client.query(
    `INSERT INTO ${p}.replay_position AS r (consistent_through_lsn, consistent_through_at, replay_name)
     VALUES ($1::pg_lsn, $2::timestamptz, $3)
     ON CONFLICT (singleton) DO UPDATE
     SET consistent_through_lsn = excluded.consistent_through_lsn, consistent_through_at = excluded.consistent_through_at,
         replay_name = excluded.replay_name, updated_at = now()
     WHERE excluded.consistent_through_lsn >= r.consistent_through_lsn`,
    [position.lsn, position.committedAt, position.name]
  )
}

/** pipeline_freshness with where its position comes from (a warehouse migrated before 004 has only the stream's). */
export const readWarehouseFreshness = async (client: pg.ClientBase, schemas: WarehouseSchemas = {}): Promise<WarehouseFreshness> => {
  const { s } = resolveSchemas(schemas)
  const { rows } = await client.query(`SELECT * FROM ${s}.pipeline_freshness`)
  const row = rows[0] as { consistent_through_lsn: string | null; consistent_through_at: Date | null; consistent_through_source?: string | null }
  const source = "consistent_through_source" in row ? row.consistent_through_source : row.consistent_through_lsn === null ? null : "stream"
  return {
    consistentThroughLsn: row.consistent_through_lsn === null ? null : normalizeLsn(row.consistent_through_lsn),
    consistentThroughAt: row.consistent_through_at,
    source: source === "stream" || source === "replay" ? source : null
  }
}

/** The warehouse's freshness watermark (view <schema>.pipeline_freshness). */
export const readFreshness = async (
  client: pg.ClientBase,
  options: WarehouseSchemas = {}
): Promise<Freshness> => {
  const { s } = resolveSchemas(options)
  const { rows } = await client.query(`SELECT consistent_through_lsn::text, consistent_through_at FROM ${s}.pipeline_freshness`)
  return { consistentThroughLsn: rows[0].consistent_through_lsn, consistentThroughAt: rows[0].consistent_through_at }
}
