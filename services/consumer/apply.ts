/**
 * Apply: executes the projection's plan of one batch in ONE warehouse transaction.
 *
 *   const plan = projectBatch(records)                       // pure (projection.ts)
 *   await applyPlan(client, plan, { shard: { stream, shardId, lastSequenceNumber } })
 *   // or both at once: await applyRecords(client, records, { shard })
 *
 * `client` is a dedicated connection not inside a transaction; `schema`/`pipelineSchema` default
 * to "public"/"totes" as in migrateWarehouse. `shard` records the batch's position (last Kinesis
 * sequence number, newest heartbeat) in the same transaction; omit it to apply events that did
 * not come from a shard (lake replay). registerShards tells the freshness view which shards
 * exist (it stays NULL until each has applied a heartbeat); endShard retires a drained shard.
 *
 * Why the result does not depend on duplicates, replays or the interleaving of shards:
 * - the mirror of source rows only takes a change newer than what it holds (position guard);
 * - dimensions are recomputed from the mirror (views <pipeline>.dim_*_source), so they are a
 *   function of the mirror's final state; a key only referenced by a fact gets a placeholder;
 * - fact rows are unique by event id (ON CONFLICT DO NOTHING); a delete repeats the last image;
 * - a truncation is recorded with its position: mirror rows older than it count as deleted, and
 *   its 'd' fact rows are re-derived whenever older changes of that table arrive after it;
 * - batches are serialised by an advisory lock, so a recompute never misses a concurrent change.
 */
import type pg from "pg"
import type { Row, StreamRecord } from "../../contracts/change-event.ts"
import { resolveSchemas, type WarehouseSchemas } from "../warehouse/migrate.ts"
import {
  completePlan,
  comparePositions,
  DIM_TABLES,
  FACT_COLUMNS,
  FACT_KEYS,
  FACT_SOURCES,
  imagesNeeded,
  mirrorKey,
  projectBatch,
  type DimTable,
  type FactTable,
  type HeartbeatMark,
  type Plan,
  type Position
} from "./projection.ts"

export interface ShardBatch {
  readonly stream: string
  readonly shardId: string
  /** Sequence number of the batch's last record (decimal text); null when unknown. */
  readonly lastSequenceNumber?: string | null
}

export interface ApplyOptions extends WarehouseSchemas {
  readonly shard?: ShardBatch
}

export interface ApplyResult {
  /** Mirror rows written (changes older than the mirror's are not). */
  readonly mirrorRows: number
  /** Dimension rows inserted or changed by a recompute. */
  readonly dimensionRows: number
  /** Placeholder dimension rows created for keys that facts referenced first. */
  readonly placeholders: number
  readonly datesAdded: number
  /** Fact rows appended (duplicates of applied events are not). */
  readonly factRows: number
  /** 'd' fact rows added (+) or withdrawn (-) for truncations. */
  readonly truncationFactRows: number
  readonly skipped: number
  readonly heartbeat: HeartbeatMark | null
}

/** Advisory lock class for apply (migrations use 74010). */
const APPLY_LOCK = 74_011

/** Each dimension's key and diagram columns; the values come from <pipeline>.<dim>_source. */
const DIMENSIONS: Record<DimTable, { readonly key: string; readonly columns: ReadonlyArray<string> }> = {
  dim_staff: { key: "staff_id", columns: ["first_name", "last_name", "department_name", "location", "email_address"] },
  dim_location: {
    key: "location_id",
    columns: ["address_line_1", "address_line_2", "district", "city", "postal_code", "country", "phone"]
  },
  dim_currency: { key: "currency_id", columns: ["currency_code", "currency_name"] },
  dim_design: { key: "design_id", columns: ["design_name", "file_location", "file_name"] },
  dim_counterparty: {
    key: "counterparty_id",
    columns: [
      "counterparty_legal_name",
      "counterparty_legal_address_line_1",
      "counterparty_legal_address_line_2",
      "counterparty_legal_district",
      "counterparty_legal_city",
      "counterparty_legal_postal_code",
      "counterparty_legal_country",
      "counterparty_legal_phone_number"
    ]
  },
  dim_payment_type: { key: "payment_type_id", columns: ["payment_type_name"] },
  dim_transaction: { key: "transaction_id", columns: ["transaction_type", "sales_order_id", "purchase_order_id"] }
}

const FACT_METADATA = ["source_seq", "change_op", "event_id", "source_lsn", "source_committed_at"] as const

/** Projects and applies one batch of decoded stream records. */
export const applyRecords = (client: pg.ClientBase, records: ReadonlyArray<StreamRecord>, options: ApplyOptions = {}) =>
  applyPlan(client, projectBatch(records), options)

export const applyPlan = async (client: pg.ClientBase, plan: Plan, options: ApplyOptions = {}): Promise<ApplyResult> => {
  const { pipelineSchema, s, p } = resolveSchemas(options)
  await client.query("BEGIN")
  try {
    await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [APPLY_LOCK, pipelineSchema])
    const completed = completePlan(plan, await readImages(client, p, plan))

    const mirrorRows = await count(
      client,
      completed.mirror.length > 0,
      `INSERT INTO ${p}.mirror AS m (table_name, key_id, image, source_lsn, source_seq, deleted, event_id)
       SELECT r.table_name, r.key_id, r.image, r.source_lsn, r.source_seq, r.deleted, r.event_id
       FROM jsonb_to_recordset($1::jsonb)
         AS r(table_name text, key_id bigint, image jsonb, source_lsn pg_lsn, source_seq integer, deleted boolean, event_id text)
       ON CONFLICT (table_name, key_id) DO UPDATE
       SET image = excluded.image, source_lsn = excluded.source_lsn, source_seq = excluded.source_seq,
           deleted = excluded.deleted, event_id = excluded.event_id, updated_at = now()
       WHERE (excluded.source_lsn, excluded.source_seq) > (m.source_lsn, m.source_seq)`,
      [JSON.stringify(completed.mirror)]
    )

    await count(
      client,
      plan.truncations.length > 0,
      `INSERT INTO ${p}.truncation (table_name, source_lsn, source_seq, event_id, committed_at)
       SELECT r.table_name, r.source_lsn, r.source_seq, r.event_id, r.committed_at
       FROM jsonb_to_recordset($1::jsonb) AS r(table_name text, source_lsn pg_lsn, source_seq integer, event_id text, committed_at timestamptz)
       ON CONFLICT DO NOTHING`,
      [
        JSON.stringify(
          plan.truncations.map((t) => ({ table_name: t.table, source_lsn: t.position.lsn, source_seq: t.position.seq, event_id: t.eventId, committed_at: t.committedAt }))
        )
      ]
    )

    await count(
      client,
      plan.skipped.length > 0,
      `INSERT INTO ${p}.skipped_event (event_id, table_name, reason, detail, source_lsn, event)
       SELECT r.event_id, r.table_name, r.reason, r.detail, r.source_lsn, r.event
       FROM jsonb_to_recordset($1::jsonb) AS r(event_id text, table_name text, reason text, detail text, source_lsn pg_lsn, event jsonb)
       ON CONFLICT (event_id) DO NOTHING`,
      [
        JSON.stringify(
          plan.skipped.map((e) => ({ event_id: e.eventId, table_name: e.table, reason: e.reason, detail: e.detail, source_lsn: e.lsn, event: e.event }))
        )
      ]
    )

    // Dimensions: recompute the affected keys from the mirror; keep a row untouched when nothing changed.
    let dimensionRows = 0
    for (const dim of DIM_TABLES) {
      const { all, keys, parentKeys } = plan.dims[dim]
      if (!all && keys.length === 0 && parentKeys.length === 0) continue
      const { key, columns } = DIMENSIONS[dim]
      const tracked = [...columns, "source_lsn", "is_deleted"]
      dimensionRows += await count(
        client,
        true,
        `INSERT INTO ${s}.${dim} AS d (${key}, ${tracked.join(", ")}, updated_at)
         SELECT v.${key}, ${tracked.map((c) => `v.${c}`).join(", ")}, now()
         FROM ${p}.${dim}_source v
         WHERE ${all ? "true" : `v.${key} = ANY($1::bigint[]) OR v.parent_id = ANY($2::bigint[])`}
         ON CONFLICT (${key}) DO UPDATE
         SET ${tracked.map((c) => `${c} = excluded.${c}`).join(", ")}, updated_at = excluded.updated_at
         WHERE (${tracked.map((c) => `d.${c}`).join(", ")}) IS DISTINCT FROM (${tracked.map((c) => `excluded.${c}`).join(", ")})`,
        all ? [] : [keys, parentKeys]
      )
    }

    // Every date and dimension key a fact row references must exist before the fact row.
    let datesAdded = 0
    if (completed.dateRange) {
      const { rows } = await client.query(`SELECT ${p}.extend_dim_date($1::date, $2::date) AS added`, [
        completed.dateRange.first,
        completed.dateRange.last
      ])
      datesAdded = Number(rows[0].added)
    }
    let placeholders = 0
    for (const dim of DIM_TABLES) {
      const keys = completed.references[dim]
      const { key } = DIMENSIONS[dim]
      placeholders += await count(
        client,
        keys.length > 0,
        `INSERT INTO ${s}.${dim} (${key}) SELECT unnest($1::integer[]) ON CONFLICT (${key}) DO NOTHING`,
        [keys]
      )
    }

    let factRows = 0
    let truncationFactRows = 0
    for (const fact of Object.keys(FACT_SOURCES) as Array<FactTable>) {
      const rows = completed.facts[fact]
      const columns = [...FACT_COLUMNS[fact], ...FACT_METADATA].join(", ")
      factRows += await count(
        client,
        rows.length > 0,
        `INSERT INTO ${s}.${fact} (${columns})
         SELECT ${columns} FROM jsonb_populate_recordset(NULL::${s}.${fact}, $1::jsonb)
         ON CONFLICT (event_id) DO NOTHING`,
        [JSON.stringify(rows)]
      )
      truncationFactRows += await reconcileTruncations(client, { s, p }, fact, plan)
    }

    if (options.shard) await recordShardPosition(client, p, options.shard, plan.heartbeat)
    await client.query("COMMIT")
    return { mirrorRows, dimensionRows, placeholders, datesAdded, factRows, truncationFactRows, skipped: plan.skipped.length, heartbeat: plan.heartbeat }
  } catch (error) {
    await client.query("ROLLBACK")
    throw error
  }
}

/** Runs a statement when `when` holds and returns its row count. */
const count = async (client: pg.ClientBase, when: boolean, sql: string, params: ReadonlyArray<unknown>): Promise<number> => {
  if (!when) return 0
  const result = await client.query(sql, params as Array<unknown>)
  return result.rowCount ?? 0
}

/** The mirror's current images of the rows whose unsent columns the plan must fill. */
const readImages = async (client: pg.ClientBase, p: string, plan: Plan): Promise<ReadonlyMap<string, Row>> => {
  const needed = imagesNeeded(plan)
  const images = new Map<string, Row>()
  if (needed.length === 0) return images
  const { rows } = await client.query<{ table_name: string; key_id: string; image: Row }>(
    `SELECT m.table_name, m.key_id, m.image
     FROM ${p}.mirror m
     JOIN unnest($1::text[], $2::bigint[]) AS n(table_name, key_id) ON m.table_name = n.table_name AND m.key_id = n.key_id`,
    [needed.map((n) => n.table), needed.map((n) => n.key)]
  )
  for (const row of rows) images.set(mirrorKey(row.table_name, Number(row.key_id)), row.image)
  return images
}

/**
 * The 'd' fact rows of a truncation: one per key whose latest change before the truncation is not
 * a delete, with the event id `<truncation event id>:<key>`. Changes older than a truncation can
 * arrive after it (another shard), so whenever a batch brings a truncation or an older change of
 * the table, the affected truncations are re-derived in source order: missing rows are added and
 * rows that are no longer right (the key turned out to be deleted already) are withdrawn.
 */
const reconcileTruncations = async (client: pg.ClientBase, { s, p }: { s: string; p: string }, fact: FactTable, plan: Plan): Promise<number> => {
  const table = FACT_SOURCES[fact]
  const key = FACT_KEYS[fact]
  const ownTruncations = plan.truncations.filter((t) => t.table === table)
  const changes = plan.facts.filter((c) => c.table === table)
  if (ownTruncations.length === 0 && changes.length === 0) return 0
  const earliest = [...ownTruncations.map((t) => t.position), ...changes.map((c) => c.position)].reduce((a: Position, b: Position) =>
    comparePositions(a, b) <= 0 ? a : b
  )
  // A new truncation re-derives every key; older changes only their own keys.
  const keys = ownTruncations.length > 0 ? null : [...new Set(changes.map((c) => c.key))]
  const { rows: truncations } = await client.query<{ source_lsn: string; source_seq: number; event_id: string; committed_at: Date }>(
    `SELECT source_lsn::text, source_seq, event_id, committed_at FROM ${p}.truncation
     WHERE table_name = $1 AND (source_lsn, source_seq) >= ($2::pg_lsn, $3::integer)
     ORDER BY source_lsn, source_seq`,
    [table, earliest.lsn, earliest.seq]
  )
  const columns = FACT_COLUMNS[fact]
  const latestBefore = `SELECT f.change_op FROM ${s}.${fact} f
     WHERE f.${key} = g.${key} AND (f.source_lsn, f.source_seq) < ($2::pg_lsn, $3::integer)
     ORDER BY f.source_lsn DESC, f.source_seq DESC LIMIT 1`
  let changed = 0
  for (const t of truncations) {
    const params = [t.event_id, t.source_lsn, t.source_seq, keys]
    const withdrawn = await client.query(
      `DELETE FROM ${s}.${fact} g
       WHERE g.event_id = $1 || ':' || g.${key} AND ($4::integer[] IS NULL OR g.${key} = ANY($4::integer[]))
         AND COALESCE((${latestBefore}), 'd') = 'd'`,
      params
    )
    const added = await client.query(
      `INSERT INTO ${s}.${fact} (${columns.join(", ")}, ${FACT_METADATA.join(", ")})
       SELECT ${columns.map((c) => `g.${c}`).join(", ")}, $3::integer, 'd', $1 || ':' || g.${key}, $2::pg_lsn, $5::timestamptz
       FROM (
         SELECT DISTINCT ON (f.${key}) f.* FROM ${s}.${fact} f
         WHERE (f.source_lsn, f.source_seq) < ($2::pg_lsn, $3::integer) AND ($4::integer[] IS NULL OR f.${key} = ANY($4::integer[]))
         ORDER BY f.${key}, f.source_lsn DESC, f.source_seq DESC
       ) g
       WHERE g.change_op <> 'd'
       ON CONFLICT (event_id) DO UPDATE SET ${columns.map((c) => `${c} = excluded.${c}`).join(", ")}
       WHERE (${columns.map((c) => `${fact}.${c}`).join(", ")}) IS DISTINCT FROM (${columns.map((c) => `excluded.${c}`).join(", ")})`,
      [...params, t.committed_at]
    )
    changed += (added.rowCount ?? 0) - (withdrawn.rowCount ?? 0)
  }
  return changed
}

const recordShardPosition = async (client: pg.ClientBase, p: string, shard: ShardBatch, heartbeat: HeartbeatMark | null) => {
  // Positions only move forward: a replayed older batch leaves them as they are.
  await client.query(
    `INSERT INTO ${p}.shard_position AS sp (stream, shard_id, sequence_number, heartbeat_lsn, heartbeat_committed_at)
     VALUES ($1, $2, $3::numeric, $4::pg_lsn, $5::timestamptz)
     ON CONFLICT (stream, shard_id) DO UPDATE SET
       sequence_number = GREATEST(sp.sequence_number, excluded.sequence_number),
       heartbeat_lsn = CASE WHEN sp.heartbeat_lsn IS NULL OR excluded.heartbeat_lsn > sp.heartbeat_lsn
                            THEN excluded.heartbeat_lsn ELSE sp.heartbeat_lsn END,
       heartbeat_committed_at = CASE WHEN sp.heartbeat_lsn IS NULL OR excluded.heartbeat_lsn > sp.heartbeat_lsn
                                     THEN excluded.heartbeat_committed_at ELSE sp.heartbeat_committed_at END,
       updated_at = now()`,
    [shard.stream, shard.shardId, shard.lastSequenceNumber ?? null, heartbeat?.lsn ?? null, heartbeat?.committedAt ?? null]
  )
}

/** Declares the shards of a stream, so that freshness waits for a heartbeat from each of them. */
export const registerShards = async (
  client: pg.ClientBase,
  options: WarehouseSchemas & { readonly stream: string; readonly shardIds: ReadonlyArray<string> }
): Promise<void> => {
  const { p } = resolveSchemas(options)
  await client.query(
    `INSERT INTO ${p}.shard_position (stream, shard_id) SELECT $1, unnest($2::text[]) ON CONFLICT (stream, shard_id) DO NOTHING`,
    [options.stream, options.shardIds]
  )
}

/** Retires a shard that is closed and fully applied (after a reshard): it no longer holds freshness back. */
export const endShard = async (client: pg.ClientBase, options: WarehouseSchemas & { readonly stream: string; readonly shardId: string }) => {
  const { p } = resolveSchemas(options)
  await client.query(
    `INSERT INTO ${p}.shard_position (stream, shard_id, ended) VALUES ($1, $2, true)
     ON CONFLICT (stream, shard_id) DO UPDATE SET ended = true, updated_at = now()`,
    [options.stream, options.shardId]
  )
}

export interface ShardPosition {
  readonly shardId: string
  /** Last applied sequence number (decimal text), null before the first batch. */
  readonly sequenceNumber: string | null
  readonly heartbeatLsn: string | null
  readonly heartbeatCommittedAt: Date | null
  readonly ended: boolean
}

/** The applied position of every known shard of a stream (where a poller resumes). */
export const readShardPositions = async (
  client: pg.ClientBase,
  options: WarehouseSchemas & { readonly stream: string }
): Promise<ReadonlyArray<ShardPosition>> => {
  const { p } = resolveSchemas(options)
  const { rows } = await client.query(
    `SELECT shard_id, sequence_number::text, heartbeat_lsn::text, heartbeat_committed_at, ended
     FROM ${p}.shard_position WHERE stream = $1 ORDER BY shard_id`,
    [options.stream]
  )
  return rows.map((row) => ({
    shardId: row.shard_id,
    sequenceNumber: row.sequence_number,
    heartbeatLsn: row.heartbeat_lsn,
    heartbeatCommittedAt: row.heartbeat_committed_at,
    ended: row.ended
  }))
}

/** The warehouse's freshness watermark (view <schema>.pipeline_freshness). */
export const readFreshness = async (
  client: pg.ClientBase,
  options: WarehouseSchemas = {}
): Promise<{ readonly consistentThroughLsn: string | null; readonly consistentThroughAt: Date | null }> => {
  const { s } = resolveSchemas(options)
  const { rows } = await client.query(`SELECT consistent_through_lsn::text, consistent_through_at FROM ${s}.pipeline_freshness`)
  return { consistentThroughLsn: rows[0].consistent_through_lsn, consistentThroughAt: rows[0].consistent_through_at }
}
