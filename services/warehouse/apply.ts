/**
 * Apply: executes the projection's plan of one batch in ONE warehouse transaction.
 *
 *   const plan = projectBatch(records)                       // pure (projection.ts)
 *   await applyPlan(client, plan, { shard: { stream, shardId, lastSequenceNumber } })
 *   // or both at once: await applyRecords(client, records, { shard })
 *
 * `client` is a dedicated connection not inside a transaction; `schema`/`pipelineSchema` default
 * to "public"/"totes" as in migrateWarehouse. `shard` registers the shard and records the batch's
 * position (last Kinesis sequence number, newest heartbeat) in the same transaction; omit it to
 * apply events that did not come from a shard (lake replay). endShard retires a drained shard.
 *
 * One round trip: on a client created with `pipeline: true` (the consumer's and replay's pools)
 * every statement of the transaction is sent at once, BEGIN to COMMIT, and the answers are read
 * afterwards; a failing statement aborts the transaction, so COMMIT rolls it back and the first
 * error is thrown. (Only a batch whose changes lack columns — unchanged TOAST, key-only deletes —
 * first reads the mirror's images, a second round trip.) On a plain client the same statements
 * run one after the other.
 *
 * Why the result does not depend on duplicates, replays or the interleaving of shards:
 * - the mirror of source rows only takes a change newer than what it holds (position guard);
 * - dimensions are recomputed from the mirror (views <pipeline>.dim_*_source), so they are a
 *   function of the mirror's final state; a key only referenced by a fact gets a placeholder;
 * - fact rows are unique by event id (ON CONFLICT DO NOTHING); a delete repeats the last image;
 * - a truncation is recorded with its position: mirror rows older than it count as deleted, and
 *   its 'd' fact rows are re-derived whenever older changes of that table arrive after it.
 *
 * Why shards can apply in parallel: a source row's changes all travel on one shard, so two
 * concurrent batches never write the same mirror row, fact row or single-source dimension row
 * (dim_location, dim_currency, dim_design, dim_payment_type, dim_transaction) — but another
 * shard's batch may write that row's placeholder (a payment references its transaction). So a
 * batch first locks every dimension key it writes, in one statement in one global order
 * (dimensionKeyLocks): batches sharing a key take turns there and cannot deadlock; dim_date is
 * extended with ON CONFLICT in date order. What must be
 * serialised is a derived dimension read across rows of different shards (dim_counterparty reads
 * an address, dim_staff a department) and truncations: a batch that changes address, department,
 * counterparty or staff rows, or truncates, takes the apply lock exclusively; every other batch
 * takes it shared, so ordinary batches run side by side and wait only for such a rare one.
 */
import type pg from "pg"
import type { ChangeEvent, Row, StreamRecord } from "../../contracts/change-event.ts"
import { compareLsn, normalizeLsn } from "../../contracts/lsn.ts"
import { dimensionAttributes, STAR_SCHEMA } from "../../contracts/star-schema.ts"
import type { Freshness } from "./freshness.ts"
import { resolveSchemas, type WarehouseSchemas } from "./migrate.ts"
import { registerShardsStatement } from "./shard-positions.ts"
import {
  completePlan,
  comparePositions,
  DIM_TABLES,
  FACT_COLUMNS,
  FACT_KEYS,
  FACT_SOURCES,
  mirrorNeeds,
  mirrorKey,
  projectBatch,
  type DimTable,
  type FactTable,
  type HeartbeatMark,
  type MirrorNeed,
  type Plan,
  type Position
} from "./projection.ts"
import { hasRepairedRanges, withRepairDeletes } from "./repair.ts"
import { checkEvent, NO_DECISIONS, type TableDecisions, type Violation } from "./schema-check.ts"

export interface ShardBatch {
  readonly stream: string
  readonly shardId: string
  /** Sequence number of the batch's last record (decimal text); null when unknown. */
  readonly lastSequenceNumber?: string | null
}

export interface ApplyOptions extends WarehouseSchemas {
  readonly shard?: ShardBatch
  /** Also read the warehouse's freshness watermark (in the same round trip, after this batch). */
  readonly readFreshness?: boolean
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
  /** With `readFreshness`: pipeline_freshness after this batch. */
  readonly freshness?: Freshness
  /** Changes set aside because their table is paused (schema changes): how many, and which. */
  readonly parked: number
  readonly parkedIds: ReadonlyArray<string>
  /** Tables this batch paused (not already paused), with what broke. */
  readonly paused: ReadonlyArray<Violation>
  /** Every paused table after this batch. */
  readonly pausedTables: ReadonlyArray<string>
}

/** Advisory lock class for apply (migrations use 74010). */
export const APPLY_LOCK = 74_011

/** Source tables whose rows feed a dimension of other rows (a counterparty's address, a staff member's department). */
const CROSS_ROW_TABLES = new Set(["address", "department", "counterparty", "staff"])

/** Whether a batch must run alone (see the module comment). */
export const needsExclusiveApply = (plan: Plan): boolean =>
  plan.truncations.length > 0 || plan.mirror.some((change) => CROSS_ROW_TABLES.has(change.table)) || DIM_TABLES.some((dim) => plan.dims[dim].all)

/** Each dimension's key and diagram columns (contracts/star-schema.ts); the values come from <pipeline>.<dim>_source. */
const DIMENSIONS = Object.fromEntries(
  DIM_TABLES.map((dim) => [dim, { key: STAR_SCHEMA[dim].key, columns: dimensionAttributes(dim) }])
) as Record<DimTable, { readonly key: string; readonly columns: ReadonlyArray<string> }>

const FACT_METADATA = ["source_seq", "change_op", "event_id", "source_lsn", "source_committed_at"] as const

/**
 * The statements of one transaction. On a pipelining client each is sent at once; the answers
 * are collected at the end (every promise observed, so a failure never goes unhandled).
 */
class Statements {
  private readonly pending: Array<Promise<pg.QueryResult>> = []
  private readonly pipelined: boolean
  private tail: Promise<unknown> = Promise.resolve()

  constructor(private readonly client: pg.ClientBase) {
    this.pipelined = Boolean((client as unknown as { pipeline?: boolean }).pipeline)
  }

  /** Sends a statement (on a plain client: once the previous one has answered); resolves to its result. */
  add(sql: string, params?: ReadonlyArray<unknown>): Promise<pg.QueryResult> {
    const run = () => this.client.query(sql, params as Array<unknown>)
    const result = this.pipelined ? run() : this.tail.then(run, run)
    this.tail = result.catch(() => undefined)
    this.pending.push(result)
    result.catch(() => {})
    return result
  }

  /** Waits for every statement; throws the first failure. */
  async settle(): Promise<void> {
    const outcomes = await Promise.allSettled(this.pending)
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected")
    if (failed) throw failed.reason
  }
}

const rowCount = async (result: Promise<pg.QueryResult>) => (await result).rowCount ?? 0

/** A promise derived from a statement's: its failure is the statement's, reported by `settle`, never unhandled. */
const observed = <A>(promise: Promise<A>): Promise<A> => {
  promise.catch(() => {})
  return promise
}

/** The apply lock: shared for ordinary batches, exclusive for the rare ones that must run alone. */
const lockStatement = (exclusive: boolean) =>
  exclusive ? "SELECT pg_advisory_xact_lock($1, hashtext($2))" : "SELECT pg_advisory_xact_lock_shared($1, hashtext($2))"

/** Advisory lock classes of dimension keys: DIMENSION_KEY_LOCK + the dimension's index in DIM_TABLES. */
export const DIMENSION_KEY_LOCK = 74_100

/**
 * The dimension keys a batch writes, as advisory lock (class, key) pairs in one global order (by
 * dimension, then key): exclusive for a row it recomputes, shared for a placeholder only (most
 * batches reference the same few currencies, designs and staff: they must not queue for those).
 */
export const dimensionKeyLocks = (plan: Plan, references: Readonly<Record<DimTable, ReadonlyArray<number>>>) => {
  const classes: Array<number> = []
  const keys: Array<number> = []
  const exclusive: Array<boolean> = []
  DIM_TABLES.forEach((dim, index) => {
    const recomputed = new Set<number>(plan.dims[dim].all ? [] : plan.dims[dim].keys)
    const written = new Set<number>([...references[dim], ...recomputed])
    for (const key of [...written].sort((a, b) => a - b)) {
      classes.push(DIMENSION_KEY_LOCK + index)
      keys.push(key)
      exclusive.push(recomputed.has(key))
    }
  })
  return { classes, keys, exclusive }
}

/** What a plan's statements return once the transaction has committed. */
type Collect = () => Promise<ApplyResult>

/**
 * Adds the statements that apply `plan` to an open transaction (after BEGIN and the lock), in
 * the order that keeps every reference whole; returns how to read the result after COMMIT.
 */
const sendPlan = async (sql: Statements, plan: Plan, options: ApplyOptions): Promise<Collect> => {
  const { s, p } = resolveSchemas(options)
  const counts: Array<Promise<number>> = []
  /** Sends a statement when `when` holds; returns the index of its row count in `counts` (-1: not sent). */
  const counted = (when: boolean, text: string, params: ReadonlyArray<unknown>) => {
    if (!when) return -1
    counts.push(observed(rowCount(sql.add(text, params))))
    return counts.length - 1
  }
  // Rare: changes that lack columns are completed from the mirror (a second round trip).
  const needs = mirrorNeeds(plan)
  const mirror = needs.length > 0 ? await readImages(sql, p, needs) : undefined
  const completed = completePlan(plan, mirror?.images ?? new Map<string, Row>(), mirror?.positions)

  // Dimension rows are the only rows batches of different shards both write (a payment's shard
  // writes the placeholder of its transaction, the transaction's shard its dimension row). Each
  // batch first takes a lock per dimension key it will write, all in one statement in one global
  // order (dimension, key): exclusive where it recomputes the row, shared for a placeholder. A
  // recompute and a placeholder of one key then take turns, and every wait follows that one
  // order, so none is a circle. (Key order inside each statement is not enough: batch A's
  // placeholder of key 9 and row of key 5 against batch B's placeholder of 5 and row of 9 is a
  // deadlock, measured by bench/appliers.ts.) A batch that recomputes by parent key or all keys
  // runs alone (needsExclusiveApply).
  const keyLocks = dimensionKeyLocks(plan, completed.references)
  if (keyLocks.classes.length > 0) {
    void sql.add(
      `SELECT count(*)::int AS locked FROM (
         SELECT CASE WHEN l.exclusive THEN pg_advisory_xact_lock(l.class, l.key) ELSE pg_advisory_xact_lock_shared(l.class, l.key) END
         FROM unnest($1::integer[], $2::integer[], $3::boolean[]) WITH ORDINALITY AS l(class, key, exclusive, n) ORDER BY l.n
       ) AS taken`,
      [keyLocks.classes, keyLocks.keys, keyLocks.exclusive]
    )
  }

  // Every date and dimension key a fact row references exists before the fact row: this order,
  // not a foreign-key trigger per row, is what keeps the facts' references whole.
  const datesAdded = completed.dateRange
    ? observed(
        sql
          .add(`SELECT ${p}.extend_dim_date($1::date, $2::date) AS added`, [completed.dateRange.first, completed.dateRange.last])
          .then((r) => Number(r.rows[0].added))
      )
    : Promise.resolve(0)
  const placeholderCounts: Array<number> = []
  for (const dim of DIM_TABLES) {
    const keys = completed.references[dim]
    const { key } = DIMENSIONS[dim]
    placeholderCounts.push(counted(keys.length > 0, `INSERT INTO ${s}.${dim} (${key}) SELECT unnest($1::integer[]) ON CONFLICT (${key}) DO NOTHING`, [keys]))
  }

  const mirrorRows = counted(
    completed.mirror.length > 0,
    `INSERT INTO ${p}.mirror AS m (table_name, key_id, image, source_lsn, source_seq, deleted, event_id)
     SELECT r.table_name, r.key_id, r.image, r.source_lsn, r.source_seq, r.deleted, r.event_id
     FROM jsonb_to_recordset($1::jsonb)
       AS r(table_name text, key_id bigint, image jsonb, source_lsn pg_lsn, source_seq integer, deleted boolean, event_id text)
     ORDER BY r.table_name, r.key_id
     ON CONFLICT (table_name, key_id) DO UPDATE
     SET image = excluded.image, source_lsn = excluded.source_lsn, source_seq = excluded.source_seq,
         deleted = excluded.deleted, event_id = excluded.event_id, updated_at = now()
     WHERE (excluded.source_lsn, excluded.source_seq) > (m.source_lsn, m.source_seq)`,
    [JSON.stringify(completed.mirror)]
  )

  counted(
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

  counted(
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
  const dimensionCounts: Array<number> = []
  for (const dim of DIM_TABLES) {
    const { all, keys, parentKeys } = plan.dims[dim]
    if (!all && keys.length === 0 && parentKeys.length === 0) continue
    const { key, columns } = DIMENSIONS[dim]
    const tracked = [...columns, "source_lsn", "is_deleted"]
    dimensionCounts.push(
      counted(
        true,
        `INSERT INTO ${s}.${dim} AS d (${key}, ${tracked.join(", ")}, updated_at)
         SELECT v.${key}, ${tracked.map((c) => `v.${c}`).join(", ")}, now()
         FROM ${p}.${dim}_source v
         WHERE ${all ? "true" : `v.${key} = ANY($1::bigint[]) OR v.parent_id = ANY($2::bigint[])`}
         ORDER BY v.${key}
         ON CONFLICT (${key}) DO UPDATE
         SET ${tracked.map((c) => `${c} = excluded.${c}`).join(", ")}, updated_at = excluded.updated_at
         WHERE (${tracked.map((c) => `d.${c}`).join(", ")}) IS DISTINCT FROM (${tracked.map((c) => `excluded.${c}`).join(", ")})`,
        all ? [] : [keys, parentKeys]
      )
    )
  }

  const factCounts: Array<number> = []
  const truncationCounts: Array<Promise<number>> = []
  for (const fact of Object.keys(FACT_SOURCES) as Array<FactTable>) {
    const rows = completed.facts[fact]
    const columns = [...FACT_COLUMNS[fact], ...FACT_METADATA].join(", ")
    factCounts.push(
      counted(
        rows.length > 0,
        `INSERT INTO ${s}.${fact} (${columns})
         SELECT ${columns} FROM jsonb_populate_recordset(NULL::${s}.${fact}, $1::jsonb)
         ORDER BY event_id
         ON CONFLICT (event_id) DO NOTHING`,
        [JSON.stringify(rows)]
      )
    )
    const reconcile = reconcileTruncations(p, fact, plan)
    if (reconcile) truncationCounts.push(observed(sql.add(reconcile.sql, reconcile.params).then((r) => Number(r.rows[0].changed))))
  }

  if (options.shard) void sql.add(...recordShardPosition(p, options.shard, plan.heartbeat))
  const freshness = options.readFreshness
    ? observed(
        sql
          .add(`SELECT consistent_through_lsn::text, consistent_through_at FROM ${s}.pipeline_freshness`)
          .then((r): Freshness => ({ consistentThroughLsn: r.rows[0].consistent_through_lsn, consistentThroughAt: r.rows[0].consistent_through_at }))
      )
    : undefined
  return async () => {
    const total = async (indexes: ReadonlyArray<number>) => (await Promise.all(indexes.filter((i) => i >= 0).map((i) => counts[i]!))).reduce((a, b) => a + b, 0)
    return {
      mirrorRows: mirrorRows >= 0 ? await counts[mirrorRows]! : 0,
      dimensionRows: await total(dimensionCounts),
      placeholders: await total(placeholderCounts),
      datesAdded: await datesAdded,
      factRows: await total(factCounts),
      truncationFactRows: (await Promise.all(truncationCounts)).reduce((a, b) => a + b, 0),
      skipped: plan.skipped.length,
      heartbeat: plan.heartbeat,
      ...(freshness ? { freshness: await freshness } : {}),
      parked: 0,
      parkedIds: [],
      paused: [],
      pausedTables: []
    }
  }
}

/** Source tables whose rows feed a dimension of other rows, and truncations: see needsExclusiveApply. */
const needsExclusiveForRecords = (records: ReadonlyArray<StreamRecord>) =>
  records.some((r) => r.kind === "change" && (r.op === "t" || CROSS_ROW_TABLES.has(r.source.table))) || hasRepairedRanges(records) // [repair]

/**
 * Projects and applies one batch of decoded stream records in one transaction, checking every
 * change against the warehouse catalogue first (schema-check.ts): a change that breaks a column
 * the warehouse uses pauses its table — that change and every later one of the table (by source
 * position: an older change still applies, see sortBySchema) are parked in
 * <pipeline>.parked_event, in order, until an operator resumes it (resumeTable) — while the other
 * tables go on. Pausing runs under the exclusive lock, so no batch applies a change of a table
 * while another is pausing it.
 */
export const applyRecords = async (client: pg.ClientBase, records: ReadonlyArray<StreamRecord>, options: ApplyOptions = {}): Promise<ApplyResult> => {
  const { pipelineSchema, p } = resolveSchemas(options)
  let exclusive = needsExclusiveForRecords(records)
  for (;;) {
    const sql = new Statements(client)
    try {
      // The shards a heartbeat lists are registered so freshness waits for each (also one whose
      // first batch is still coming). Before BEGIN, in a transaction of its own: inside the batch's,
      // two shards' first batches would each wait for the other's uncommitted row (a deadlock).
      const listed = options.shard ? listedShards(records) : []
      if (options.shard && listed.length > 0) void sql.add(...registerShardsStatement(p, options.shard.stream, listed))
      void sql.add("BEGIN")
      void sql.add(lockStatement(exclusive), [APPLY_LOCK, pipelineSchema])
      if (options.shard) void sql.add(...registerShard(p, options.shard))
      const state = await readSchemaState((text) => sql.add(text), p)
      const sorted = sortBySchema(await withRepairDeletes(sql, p, records), state) // [repair] ranges → deletes (repair.ts)
      if (sorted.pauses.length > 0 && !exclusive) {
        // Pausing a table must not race a batch applying it: start over, alone.
        await settleQuietly(sql)
        await client.query("ROLLBACK")
        exclusive = true
        continue
      }
      const collect = await sendPlan(sql, projectBatch(sorted.applicable), options)
      parkAndPause(sql, p, sorted)
      void sql.add("COMMIT")
      await sql.settle()
      const result = await collect()
      return {
        ...result,
        parked: sorted.parked.length,
        parkedIds: sorted.parked.map((event) => event.id),
        // Newly paused tables only: an older break moving an existing pause back is not a new pause (one warning, one count per pause).
        paused: sorted.pauses.filter((pause) => !state.paused.has(pause.violation.table)).map((pause) => pause.violation),
        pausedTables: [...new Set([...state.paused.keys(), ...sorted.pauses.map((pause) => pause.violation.table)])].sort()
      }
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {})
      throw error
    }
  }
}

/** What the warehouse holds about schema changes: paused tables and the operator's decisions. */
export interface SchemaState {
  /** Each paused table and the position of the change that paused it: its changes from there on are parked. */
  readonly paused: ReadonlyMap<string, Position>
  readonly decisions: ReadonlyMap<string, TableDecisions>
}

/** Reads the schema state with `query` (a pipelined Statements' add, or a plain client's query). */
export const readSchemaState = async (query: (text: string) => Promise<{ readonly rows: ReadonlyArray<unknown> }>, p: string): Promise<SchemaState> => {
  const { rows } = await query(
    `SELECT 'paused' AS kind, table_name, NULL AS column_name, NULL AS decision, NULL AS source_column, first_lsn::text AS first_lsn, first_seq FROM ${p}.paused_table
     UNION ALL
     SELECT 'decision', table_name, column_name, decision, source_column, NULL, NULL FROM ${p}.column_decision`
  )
  const paused = new Map<string, Position>()
  const decisions = new Map<string, { renamed: Record<string, string>; missingAccepted: Array<string>; typeAccepted: Array<string> }>()
  type StateRow = { kind: string; table_name: string; column_name: string; decision: string; source_column: string | null; first_lsn: string; first_seq: number }
  for (const row of rows as Array<StateRow>) {
    if (row.kind === "paused") {
      paused.set(row.table_name, { lsn: normalizeLsn(row.first_lsn), seq: row.first_seq })
      continue
    }
    const d = decisions.get(row.table_name) ?? { renamed: {}, missingAccepted: [], typeAccepted: [] }
    if (row.decision === "renamed") d.renamed[row.column_name] = row.source_column!
    else if (row.decision === "missing") d.missingAccepted.push(row.column_name)
    else d.typeAccepted.push(row.column_name)
    decisions.set(row.table_name, d)
  }
  return { paused, decisions }
}

export interface Pause {
  readonly violation: Violation
  /** The change that broke: the table is paused from its position on. */
  readonly event: ChangeEvent
}

export interface SortedRecords {
  /** What applies now (normalised where a value needed it). */
  readonly applicable: ReadonlyArray<StreamRecord>
  /** Changes of paused tables at or after the position that paused them, set aside in order. */
  readonly parked: ReadonlyArray<ChangeEvent>
  /** Tables this batch pauses, or pauses from an earlier position: the earliest change that broke each. */
  readonly pauses: ReadonlyArray<Pause>
}

/** A change's source position (commit LSN, index in the transaction). */
export const positionOf = (event: ChangeEvent): Position => ({ lsn: normalizeLsn(event.source.commitLsn), seq: event.source.index })

/**
 * Pure: which records apply, which are parked, which tables pause (`resuming`: a table being
 * drained is not paused for it).
 *
 * A table pauses at the position of the earliest change that breaks it; a change of a paused
 * table is parked when its position is at or after that one, whatever batch it comes in. An older
 * change (a redelivery, a late delivery, another shard's change not applied yet) was written
 * under the schema before the pause: it is checked and applied like any other, and if it breaks
 * too, the table pauses from there instead. The result does not depend on the records' order.
 */
export const sortBySchema = (records: ReadonlyArray<StreamRecord>, state: SchemaState, resuming?: string): SortedRecords => {
  const pausedFrom = new Map([...state.paused].filter(([table]) => table !== resuming))
  const before = (event: ChangeEvent, from: Position | undefined) =>
    from === undefined || comparePositions({ lsn: event.source.commitLsn, seq: event.source.index }, from) < 0
  // First pass: check every change older than its table's pause; the earliest that breaks pauses it.
  const checked: Array<StreamRecord | undefined> = []
  const pauses = new Map<string, Pause>()
  for (const record of records) {
    if (record.kind !== "change") {
      checked.push(record)
      continue
    }
    const table = record.source.table
    if (!before(record, pausedFrom.get(table))) {
      checked.push(undefined)
      continue
    }
    const result = checkEvent(record, state.decisions.get(table) ?? NO_DECISIONS)
    if (result._tag === "Fits") {
      checked.push(result.event)
      continue
    }
    checked.push(undefined)
    const earliest = pauses.get(table)
    if (!earliest || before(record, positionOf(earliest.event))) pauses.set(table, { violation: result.violation, event: record })
  }
  if (pausedFrom.size === 0 && pauses.size === 0) return { applicable: checked as Array<StreamRecord>, parked: [], pauses: [] }
  for (const [table, pause] of pauses) pausedFrom.set(table, positionOf(pause.event))
  // Second pass: a change before its table's pause applies (it fits: whatever broke is at or after the pause); the rest is parked.
  const applicable: Array<StreamRecord> = []
  const parked: Array<ChangeEvent> = []
  records.forEach((record, i) => {
    if (record.kind === "change" && !before(record, pausedFrom.get(record.source.table))) parked.push(record)
    else applicable.push(checked[i]!)
  })
  return { applicable, parked, pauses: [...pauses.values()] }
}

/** The statements that record a batch's new pauses and park its changes of paused tables (apply and bulk replay). */
export const parkAndPauseStatements = (p: string, sorted: Pick<SortedRecords, "pauses" | "parked">): Array<readonly [string, ReadonlyArray<unknown>]> => {
  const statements: Array<readonly [string, ReadonlyArray<unknown>]> = []
  // One row per table (an upsert may not touch a row twice): the last pause of a table wins, as
  // it would have in separate statements (bulk replay collects several batches' pauses).
  const pauses = [...new Map(sorted.pauses.map((pause) => [pause.violation.table, pause])).values()]
  if (pauses.length > 0) {
    statements.push([
      `INSERT INTO ${p}.paused_table (table_name, column_name, problem, detail, first_event_id, first_lsn, first_seq, first_committed_at)
       SELECT r.table_name, r.column_name, r.problem, r.detail, r.event_id, r.lsn, r.seq, r.committed_at
       FROM jsonb_to_recordset($1::jsonb) AS r(table_name text, column_name text, problem text, detail text, event_id text, lsn pg_lsn, seq integer, committed_at timestamptz)
       ON CONFLICT (table_name) DO UPDATE SET column_name = excluded.column_name, problem = excluded.problem, detail = excluded.detail,
         first_event_id = excluded.first_event_id, first_lsn = excluded.first_lsn, first_seq = excluded.first_seq,
         first_committed_at = excluded.first_committed_at, paused_at = now()`,
      [
        JSON.stringify(
          pauses.map(({ violation, event }) => ({
            table_name: violation.table,
            column_name: violation.column,
            problem: violation.problem,
            detail: violation.detail,
            event_id: event.id,
            lsn: event.source.commitLsn,
            seq: event.source.index,
            committed_at: event.source.committedAt
          }))
        )
      ]
    ])
  }
  if (sorted.parked.length > 0) {
    statements.push([
      `INSERT INTO ${p}.parked_event (event_id, table_name, source_lsn, source_seq, event)
       SELECT r.event ->> 'id', r.event -> 'source' ->> 'table', (r.event -> 'source' ->> 'commitLsn')::pg_lsn, (r.event -> 'source' ->> 'index')::integer, r.event
       FROM jsonb_array_elements($1::jsonb) AS r(event)
       ON CONFLICT (event_id) DO NOTHING`,
      [JSON.stringify(sorted.parked)]
    ])
  }
  return statements
}

const parkAndPause = (sql: Statements, p: string, sorted: SortedRecords) => {
  for (const [text, params] of parkAndPauseStatements(p, sorted)) void sql.add(text, params)
}

export interface ResumeDecisions {
  /** Catalogue column → the source column that now holds it. */
  readonly renamed?: Readonly<Record<string, string>>
  /** Columns accepted as gone: NULL from the pause on. */
  readonly missingAccepted?: ReadonlyArray<string>
  /** Columns whose values are accepted as they come (the warehouse column was adapted). */
  readonly typeAccepted?: ReadonlyArray<string>
  /** Fact columns to widen first (column → type, e.g. units_sold → numeric(12,2)); implies typeAccepted. */
  readonly widen?: Readonly<Record<string, string>>
}

/** Types a fact column may be widened to (the operator's text goes into DDL: nothing else passes). */
const WIDENING = /^(?:numeric(?:\(\d{1,3}(?:,\d{1,3})?\))?|bigint|integer|double precision|text)$/

/** The fact table built from a source table, if any. */
const factOf = (table: string): FactTable | undefined => (Object.keys(FACT_SOURCES) as Array<FactTable>).find((fact) => FACT_SOURCES[fact] === table)

/**
 * Widens a fact column (its *_current view depends on it: recreated around the change, as it was).
 * Runs inside the caller's transaction.
 */
const widenFactColumn = async (client: pg.ClientBase, s: string, table: string, column: string, type: string) => {
  const fact = factOf(table)
  if (!fact || !FACT_COLUMNS[fact].includes(column)) throw new ResumeRefused(`--widen ${column}: ${table} has no fact column ${column} (only fact columns can be widened)`)
  if (!WIDENING.test(type)) throw new ResumeRefused(`--widen ${column}=${type}: expected numeric, numeric(p), numeric(p,s), bigint, integer, double precision or text`)
  const view = `${s}.${fact}_current`
  const { rows } = await client.query<{ def: string }>("SELECT pg_get_viewdef($1::regclass, true) AS def", [view])
  await client.query(`DROP VIEW ${view}`)
  await client.query(`ALTER TABLE ${s}.${fact} ALTER COLUMN ${column} TYPE ${type}`)
  await client.query(`CREATE VIEW ${view} AS ${rows[0]!.def}`)
}

export interface ResumeReport {
  readonly table: string
  /** Parked changes applied. */
  readonly applied: number
  /** Set when a parked change still breaks: the table stays paused from it, with this reason. */
  readonly stillBreaks: Violation | undefined
  readonly remaining: number
}

export class ResumeRefused extends Error {
  override readonly name = "ResumeRefused"
}

/**
 * Resumes a paused table after the operator's decision: records the decisions, then applies the
 * parked changes in source order, chunk by chunk, each chunk in one transaction under the
 * exclusive lock (nothing is parked meanwhile), deleting what it applied; the last chunk also
 * lifts the pause. A parked change that still breaks keeps the table paused from there.
 */
export const resumeTable = async (
  client: pg.ClientBase,
  table: string,
  decisions: ResumeDecisions,
  options: WarehouseSchemas & { readonly chunk?: number; readonly onProgress?: (applied: number, remaining: number) => void } = {}
): Promise<ResumeReport> => {
  const { pipelineSchema, p } = resolveSchemas(options)
  const chunk = options.chunk ?? 5_000
  const { s } = resolveSchemas(options)
  const typeAccepted = [...new Set([...(decisions.typeAccepted ?? []), ...Object.keys(decisions.widen ?? {})])]
  const rows = [
    ...Object.entries(decisions.renamed ?? {}).map(([column, source]) => ({ table_name: table, column_name: column, decision: "renamed", source_column: source })),
    ...(decisions.missingAccepted ?? []).map((column) => ({ table_name: table, column_name: column, decision: "missing", source_column: null })),
    ...typeAccepted.map((column) => ({ table_name: table, column_name: column, decision: "type", source_column: null }))
  ]
  await client.query("BEGIN")
  try {
    await client.query(lockStatement(true), [APPLY_LOCK, pipelineSchema])
    const paused = await client.query(`SELECT 1 FROM ${p}.paused_table WHERE table_name = $1`, [table])
    if (paused.rowCount === 0) throw new ResumeRefused(`table ${table} is not paused`)
    for (const [column, type] of Object.entries(decisions.widen ?? {})) await widenFactColumn(client, s, table, column, type)
    if (rows.length > 0) {
      await client.query(
        `INSERT INTO ${p}.column_decision (table_name, column_name, decision, source_column)
         SELECT r.table_name, r.column_name, r.decision, r.source_column FROM jsonb_to_recordset($1::jsonb) AS r(table_name text, column_name text, decision text, source_column text)
         ON CONFLICT (table_name, column_name) DO UPDATE SET decision = excluded.decision, source_column = excluded.source_column, decided_at = now()`,
        [JSON.stringify(rows)]
      )
    }
    await client.query("COMMIT")
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {})
    throw error
  }

  let applied = 0
  for (;;) {
    const sql = new Statements(client)
    try {
      void sql.add("BEGIN")
      void sql.add(lockStatement(true), [APPLY_LOCK, pipelineSchema])
      const state = await readSchemaState((text) => sql.add(text), p)
      const { rows: parkedRows } = await sql.add(
        `SELECT event FROM ${p}.parked_event WHERE table_name = $1 ORDER BY source_lsn, source_seq, event_id LIMIT $2`,
        [table, chunk + 1]
      )
      const last = parkedRows.length <= chunk
      const events = (parkedRows as Array<{ event: ChangeEvent }>).slice(0, chunk).map((r) => r.event)
      const sorted = sortBySchema(events, state, table)
      const applicable = sorted.applicable.filter((r): r is ChangeEvent => r.kind === "change")
      const collect = await sendPlan(sql, projectBatch(sorted.applicable), options)
      void sql.add(`DELETE FROM ${p}.parked_event WHERE event_id = ANY($1::text[])`, [applicable.map((e) => e.id)])
      if (sorted.pauses.length > 0) parkAndPause(sql, p, { applicable: [], parked: [], pauses: sorted.pauses })
      else if (last) void sql.add(`DELETE FROM ${p}.paused_table WHERE table_name = $1`, [table])
      const remaining = observed(sql.add(`SELECT count(*)::int AS n FROM ${p}.parked_event WHERE table_name = $1`, [table]).then((r) => Number(r.rows[0].n)))
      void sql.add("COMMIT")
      await sql.settle()
      await collect()
      applied += applicable.length
      const left = await remaining
      options.onProgress?.(applied, left)
      if (sorted.pauses.length > 0) return { table, applied, stillBreaks: sorted.pauses[0]!.violation, remaining: left }
      if (last) return { table, applied, stillBreaks: undefined, remaining: left }
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {})
      throw error
    }
  }
}

/** Waits for what was sent so far (before a rollback), ignoring failures. */
const settleQuietly = (sql: Statements) => sql.settle().catch(() => {})

/** Applies a projected plan in one transaction (no schema check: use applyRecords for events). */
export const applyPlan = async (client: pg.ClientBase, plan: Plan, options: ApplyOptions = {}): Promise<ApplyResult> => {
  const { pipelineSchema, p } = resolveSchemas(options)
  const sql = new Statements(client)
  try {
    void sql.add("BEGIN")
    void sql.add(lockStatement(needsExclusiveApply(plan)), [APPLY_LOCK, pipelineSchema])
    if (options.shard) void sql.add(...registerShard(p, options.shard))
    const collect = await sendPlan(sql, plan, options)
    void sql.add("COMMIT")
    await sql.settle()
    return await collect()
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {})
    throw error
  }
}

/** The mirror's current images of the rows the plan completes its changes from, and where each stands. */
/**
 * The mirror rows completing the plan needs (mirrorNeeds): a row whose image fills missing
 * columns, and a row needed only to know whether it is newer than the batch's earlier change the
 * columns came from, returned only when it is (a duplicate or late delivery in the batch): a row
 * not returned counts as older, and the batch's own change supplies.
 */
const readImages = async (sql: Statements, p: string, needs: ReadonlyArray<MirrorNeed>): Promise<{ images: ReadonlyMap<string, Row>; positions: ReadonlyMap<string, Position> }> => {
  const images = new Map<string, Row>()
  const positions = new Map<string, Position>()
  const { rows } = await sql.add(
    `SELECT m.table_name, m.key_id, m.image, m.source_lsn::text AS source_lsn, m.source_seq
     FROM ${p}.mirror m
     JOIN unnest($1::text[], $2::bigint[], $3::boolean[], $4::pg_lsn[], $5::integer[]) AS n(table_name, key_id, fills, prior_lsn, prior_seq)
       ON m.table_name = n.table_name AND m.key_id = n.key_id
     WHERE n.fills OR (m.source_lsn, m.source_seq) >= (n.prior_lsn, n.prior_seq)`,
    [
      needs.map((n) => n.table),
      needs.map((n) => n.key),
      needs.map((n) => n.fills),
      needs.map((n) => n.oldestPrior?.lsn ?? null),
      needs.map((n) => n.oldestPrior?.seq ?? null)
    ]
  )
  for (const row of rows as Array<{ table_name: string; key_id: string; image: Row; source_lsn: string; source_seq: number }>) {
    const key = mirrorKey(row.table_name, Number(row.key_id))
    images.set(key, row.image)
    positions.set(key, { lsn: normalizeLsn(row.source_lsn), seq: row.source_seq })
  }
  return { images, positions }
}

/**
 * The call that re-derives a fact's truncation rows (<pipeline>.reconcile_truncations, migration
 * 005) when the batch brings a truncation of its table or changes of it (which may be older than a
 * truncation already applied); undefined when it has neither. A new truncation re-derives every
 * key; older changes only their own keys.
 */
const reconcileTruncations = (p: string, fact: FactTable, plan: Plan): { sql: string; params: ReadonlyArray<unknown> } | undefined => {
  const table = FACT_SOURCES[fact]
  const ownTruncations = plan.truncations.filter((t) => t.table === table)
  const changes = plan.facts.filter((c) => c.table === table)
  if (ownTruncations.length === 0 && changes.length === 0) return undefined
  const earliest = [...ownTruncations.map((t) => t.position), ...changes.map((c) => c.position)].reduce((a: Position, b: Position) =>
    comparePositions(a, b) <= 0 ? a : b
  )
  const keys = ownTruncations.length > 0 ? null : [...new Set(changes.map((c) => c.key))]
  return {
    sql: `SELECT ${p}.reconcile_truncations($1, $2, $3, $4::text[], $5::pg_lsn, $6::integer, $7::integer[]) AS changed`,
    params: [fact, table, FACT_KEYS[fact], FACT_COLUMNS[fact], earliest.lsn, earliest.seq, keys]
  }
}

/** The open shards the batch's newest heartbeat lists (services/reader/side-tasks.ts streamHeartbeats). */
const listedShards = (records: ReadonlyArray<StreamRecord>): ReadonlyArray<string> => {
  let newest: Extract<StreamRecord, { kind: "heartbeat" }> | undefined
  for (const record of records) {
    if (record.kind === "heartbeat" && record.shards && (!newest || compareLsn(record.commitLsn, newest.commitLsn) > 0)) newest = record
  }
  return newest?.shards ?? []
}

const registerShard = (p: string, shard: ShardBatch): [string, ReadonlyArray<unknown>] => [
  `INSERT INTO ${p}.shard_position (stream, shard_id) VALUES ($1, $2) ON CONFLICT (stream, shard_id) DO NOTHING`,
  [shard.stream, shard.shardId]
]

const recordShardPosition = (p: string, shard: ShardBatch, heartbeat: HeartbeatMark | null): [string, ReadonlyArray<unknown>] => [
  // Positions only move forward: a replayed older batch leaves them as they are.
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
]
