/**
 * Bulk replay into an empty warehouse: the same batches as the row-by-row replay (apply.ts's
 * applyRecords), decided the same way in memory, written with COPY and set-based statements.
 *
 *   const loader = await openBulkLoader({ connect, schema, pipelineSchema })
 *   await loader.applyBatch(eventsInSourceOrder)     // per batch, as applyRecords would apply it
 *   await loader.flushSegment()                        // commit what the batches so far wrote
 *   await loader.finish()                              // truncations' 'd' rows, every dimension
 *
 * Why the result is what applyRecords builds batch after batch:
 * - each batch goes through the consumer's own rules: sortBySchema (pauses and parks a table whose
 *   changes no longer fit), the projection (project.ts ≡ projectBatch) and completePlan;
 * - the mirror a batch completes its changes from (unsent TOAST columns, key-only deletes) is the
 *   mirror as applyRecords would have left it: this segment's rows kept in memory under the same
 *   position guard, then the committed mirror of earlier segments;
 * - fact rows are written once per event id (the first batch that carries it wins, as
 *   ON CONFLICT DO NOTHING does), values as jsonb_populate_recordset reads them (copy-text.ts);
 * - what is a function of the final state is derived once from it at the end: every dimension from
 *   the mirror (the same <pipeline>.dim_*_source views), placeholders for keys facts reference
 *   without a source row, and the truncations' 'd' rows (<pipeline>.reconcile_truncations);
 * - dim_date is extended over every date a fact row references (contiguous, as extend_dim_date).
 *
 * Where the time goes: fact rows stream into their tables (one connection and one COPY per fact
 * table) while later objects are still being read; a segment's mirror rows are written at its end,
 * by COPY for keys the target does not hold yet, otherwise through a staging table and the
 * position-guarded upsert. A segment commits as a whole per connection; a crash between the
 * commits is harmless because a resumed run reads what the target holds (mirror keys, fact event
 * ids) and writes only what is missing or newer.
 */
import type pg from "pg"
import type { ChangeEvent, Row } from "../../../contracts/change-event.ts"
import { lsnToBigInt, type Lsn } from "../../../contracts/lsn.ts"
import { TOTESYS_TABLES, type TotesysTable } from "../../../contracts/totesys.ts"
import { sortBySchema } from "../../consumer/apply.ts"
import {
  completePlan,
  DIM_TABLES,
  FACT_COLUMNS,
  FACT_KEYS,
  FACT_SOURCES,
  imagesNeeded,
  mirrorKey,
  type DimTable,
  type FactRow,
  type FactTable,
  type MirrorRow,
  type SkippedEvent,
  type Truncation
} from "../../consumer/projection.ts"
import type { TableDecisions, Violation } from "../../consumer/schema-check.ts"
import { resolveSchemas, type WarehouseSchemas } from "../../warehouse/migrate.ts"
import { completedBatchRows, FACT_COPY_COLUMNS, FACT_TABLES, simpleBatchRows, type BatchRows } from "./batch-rows.ts"
import { copyEscape, startCopy, type CopyWriter } from "./copy-text.ts"
import { projectSortedBatch } from "./project.ts"

export interface BulkLoaderOptions extends WarehouseSchemas {
  /** A new plain (not pipelining) connection to the target. */
  readonly connect: () => Promise<pg.Client>
}

export interface BulkCounts {
  readonly mirrorRows: number
  readonly factRows: number
  readonly dimensionRows: number
  readonly skipped: number
  readonly parked: number
  /** Where the time went: waiting for the fact COPYs to take more rows, committing segments, the final derivations. */
  readonly waits: { readonly factCopyMs: number; readonly segmentCommitMs: number; readonly finishMs: number }
}

export interface BulkLoader {
  /** Events of one batch in source order, as applyRecords would receive them. */
  readonly applyBatch: (events: ReadonlyArray<ChangeEvent>) => Promise<void>
  /** Events applied since the last flush (0: nothing waits to be committed). */
  readonly pendingEvents: () => number
  /** Commits everything applied so far. */
  readonly flushSegment: () => Promise<void>
  /** Derives what depends on the final state (after the last flush). */
  readonly finish: () => Promise<void>
  readonly counts: () => BulkCounts
  readonly close: () => Promise<void>
}

/** The source table each dimension's rows come from (its placeholders are keys without such a row). */
const DIM_SOURCES: Record<DimTable, TotesysTable> = {
  dim_staff: "staff",
  dim_location: "address",
  dim_currency: "currency",
  dim_design: "design",
  dim_counterparty: "counterparty",
  dim_payment_type: "payment_type",
  dim_transaction: "transaction"
}

/** The key column of each dimension (placeholders are inserted by key only). */
const DIM_KEYS: Record<DimTable, string> = {
  dim_staff: "staff_id",
  dim_location: "location_id",
  dim_currency: "currency_id",
  dim_design: "design_id",
  dim_counterparty: "counterparty_id",
  dim_payment_type: "payment_type_id",
  dim_transaction: "transaction_id"
}

const MIRROR_COLUMNS = "table_name, key_id, image, source_lsn, source_seq, deleted, event_id"

/** A mirror row of the current segment, its image already as JSON text. */
interface MirrorEntry {
  readonly row: Omit<MirrorRow, "image">
  readonly json: string
  readonly lsnValue: bigint
}

const isNewer = (lsnValue: bigint, seq: number, than: { readonly lsnValue: bigint; readonly seq: number }) =>
  lsnValue > than.lsnValue || (lsnValue === than.lsnValue && seq > than.seq)

const mirrorLine = (entry: MirrorEntry) =>
  `${entry.row.table_name}\t${entry.row.key_id}\t${copyEscape(entry.json)}\t${entry.row.source_lsn}\t${entry.row.source_seq}\t${entry.row.deleted ? "t" : "f"}\t${copyEscape(entry.row.event_id)}\n`

/** What one segment collects until it is committed. */
interface Segment {
  events: number
  readonly mirror: Map<string, MirrorEntry>
  readonly copies: Partial<Record<FactTable, CopyWriter>>
  /** Fact rows with a value COPY cannot carry as jsonb_populate_recordset reads it (an object or array). */
  readonly otherFacts: Record<FactTable, Array<FactRow>>
  readonly truncations: Array<Truncation>
  readonly skipped: Array<SkippedEvent>
  readonly parked: Array<ChangeEvent>
  readonly pauses: Array<{ readonly violation: Violation; readonly event: ChangeEvent }>
  readonly placeholders: Record<DimTable, Set<number>>
  dates: { first: string; last: string } | null
}

const newSegment = (): Segment => ({
  events: 0,
  mirror: new Map(),
  copies: {},
  otherFacts: { fact_sales_order: [], fact_purchase_order: [], fact_payment: [] },
  truncations: [],
  skipped: [],
  parked: [],
  pauses: [],
  placeholders: Object.fromEntries(DIM_TABLES.map((dim) => [dim, new Set<number>()])) as Record<DimTable, Set<number>>,
  dates: null
})

/** What the target already holds: its mirror keys, fact event ids, paused tables and decisions (empty for an empty target). */
const readTargetState = async (client: pg.ClientBase, s: string, p: string) => {
  const known = new Map<TotesysTable, Set<number>>(TOTESYS_TABLES.map((table) => [table, new Set<number>()]))
  const keys = await client.query({ text: `SELECT table_name, key_id FROM ${p}.mirror`, rowMode: "array" })
  for (const [table, key] of keys.rows as Array<[string, string]>) known.get(table as TotesysTable)?.add(Number(key))
  const factIds = new Set<string>()
  for (const fact of FACT_TABLES) {
    const ids = await client.query({ text: `SELECT event_id FROM ${s}.${fact}`, rowMode: "array" })
    for (const [id] of ids.rows as Array<[string]>) factIds.add(id)
  }
  const { rows } = await client.query(
    `SELECT 'paused' AS kind, table_name, NULL AS column_name, NULL AS decision, NULL AS source_column FROM ${p}.paused_table
     UNION ALL
     SELECT 'decision', table_name, column_name, decision, source_column FROM ${p}.column_decision`
  )
  const paused = new Set<string>()
  const decisions = new Map<string, { renamed: Record<string, string>; missingAccepted: Array<string>; typeAccepted: Array<string> }>()
  for (const row of rows as Array<{ kind: string; table_name: string; column_name: string; decision: string; source_column: string | null }>) {
    if (row.kind === "paused") {
      paused.add(row.table_name)
      continue
    }
    const d = decisions.get(row.table_name) ?? { renamed: {}, missingAccepted: [], typeAccepted: [] }
    if (row.decision === "renamed") d.renamed[row.column_name] = row.source_column!
    else if (row.decision === "missing") d.missingAccepted.push(row.column_name)
    else d.typeAccepted.push(row.column_name)
    decisions.set(row.table_name, d)
  }
  return { known, factIds, schemaState: { paused, decisions: decisions as Map<string, TableDecisions> } }
}

/** The upsert of each dimension from its source view, every key (apply.ts's recompute with `all`). */
const dimensionUpsert = async (client: pg.ClientBase, s: string, p: string, dim: DimTable, pipelineSchema: string): Promise<string> => {
  // The view's columns in order: the key, the diagram's columns, source_lsn, is_deleted, parent_id.
  const { rows } = await client.query(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
    [pipelineSchema, `${dim}_source`]
  )
  const columns = (rows as Array<{ column_name: string }>).map((r) => r.column_name).filter((c) => c !== "parent_id")
  const [key, ...tracked] = columns as [string, ...Array<string>]
  return `INSERT INTO ${s}.${dim} AS d (${key}, ${tracked.join(", ")}, updated_at)
          SELECT v.${key}, ${tracked.map((c) => `v.${c}`).join(", ")}, now()
          FROM ${p}.${dim}_source v
          ORDER BY v.${key}
          ON CONFLICT (${key}) DO UPDATE
          SET ${tracked.map((c) => `${c} = excluded.${c}`).join(", ")}, updated_at = excluded.updated_at
          WHERE (${tracked.map((c) => `d.${c}`).join(", ")}) IS DISTINCT FROM (${tracked.map((c) => `excluded.${c}`).join(", ")})`
}

export const openBulkLoader = async (options: BulkLoaderOptions): Promise<BulkLoader> => {
  const { s, p, pipelineSchema } = resolveSchemas(options)
  const main = await options.connect()
  const factClients: Partial<Record<FactTable, pg.Client>> = {}
  /** The segment commits in flight, in order (resolved when none is); the first failure ends the run. */
  let committing: Promise<void> = Promise.resolve()
  let failure: Error | undefined
  const close = async () => {
    await committing.catch(() => {})
    await Promise.all([main, ...Object.values(factClients)].map((client) => client.end().catch(() => {})))
  }
  let state: Awaited<ReturnType<typeof readTargetState>>
  try {
    state = await readTargetState(main, s, p)
    await main.query(`CREATE TEMP TABLE IF NOT EXISTS bulk_mirror_stage (LIKE ${p}.mirror INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`)
  } catch (error) {
    await close()
    throw error
  }
  const { known, factIds, schemaState } = state
  const totals = { mirrorRows: 0, factRows: 0, dimensionRows: 0, skipped: 0, parked: 0 }
  const waits = { factCopyMs: 0, segmentCommitMs: 0, finishMs: 0 }
  let segment = newSegment()

  const factCopy = async (fact: FactTable): Promise<CopyWriter> => {
    const existing = segment.copies[fact]
    if (existing) return existing
    const client = (factClients[fact] ??= await options.connect())
    const copy = startCopy(client, `COPY ${s}.${fact} (${FACT_COPY_COLUMNS[fact].join(", ")}) FROM STDIN`)
    segment.copies[fact] = copy
    return copy
  }

  /**
   * The mirror images a batch completes its changes from, as applyRecords reads them: the newest
   * row of each key, from this segment's rows or the committed mirror.
   */
  const previousImages = async (needed: ReadonlyArray<{ readonly table: TotesysTable; readonly key: number }>): Promise<Map<string, Row>> => {
    const images = new Map<string, Row>()
    const committed: Array<{ readonly table: TotesysTable; readonly key: number }> = []
    for (const { table, key } of needed) {
      const entry = segment.mirror.get(mirrorKey(table, key))
      if (known.get(table)!.has(key)) committed.push({ table, key })
      else if (entry) images.set(mirrorKey(table, key), JSON.parse(entry.json) as Row)
    }
    if (committed.length === 0) return images
    await committing
    const { rows } = await main.query(
      `SELECT m.table_name, m.key_id, m.image, m.source_lsn::text AS lsn, m.source_seq
       FROM ${p}.mirror m JOIN unnest($1::text[], $2::bigint[]) AS n(table_name, key_id) ON m.table_name = n.table_name AND m.key_id = n.key_id`,
      [committed.map((n) => n.table), committed.map((n) => n.key)]
    )
    for (const row of rows as Array<{ table_name: string; key_id: string; image: Row; lsn: Lsn; source_seq: number }>) {
      const key = mirrorKey(row.table_name, Number(row.key_id))
      const entry = segment.mirror.get(key)
      const newerHere = entry !== undefined && isNewer(entry.lsnValue, entry.row.source_seq, { lsnValue: lsnToBigInt(row.lsn), seq: row.source_seq })
      images.set(key, newerHere ? (JSON.parse(entry.json) as Row) : row.image)
    }
    return images
  }

  /** A batch the fast way declines: the consumer's plan, completed from the mirror as applyRecords would. */
  const plannedRows = async (records: ReadonlyArray<ChangeEvent>): Promise<BatchRows> => {
    const plan = projectSortedBatch(records)
    const needed = imagesNeeded(plan)
    return completedBatchRows(plan, completePlan(plan, needed.length > 0 ? await previousImages(needed) : new Map()))
  }

  const applyBatch = async (events: ReadonlyArray<ChangeEvent>): Promise<void> => {
    if (failure) throw failure
    segment.events += events.length
    const sorted = sortBySchema(events, schemaState)
    for (const pause of sorted.pauses) schemaState.paused.add(pause.violation.table)
    segment.pauses.push(...sorted.pauses)
    segment.parked.push(...sorted.parked)
    const rows = simpleBatchRows(sorted.applicable) ?? (await plannedRows(sorted.applicable as ReadonlyArray<ChangeEvent>))

    // The mirror under the position guard (a key's newest change wins; an equal position keeps the first).
    for (const row of rows.mirror) {
      const key = mirrorKey(row.table_name, row.key_id)
      const lsnValue = lsnToBigInt(row.source_lsn)
      const entry = segment.mirror.get(key)
      if (entry && !isNewer(lsnValue, row.source_seq, { lsnValue: entry.lsnValue, seq: entry.row.source_seq })) continue
      const { image, ...rest } = row
      segment.mirror.set(key, { row: rest, json: JSON.stringify(image), lsnValue })
    }

    // Fact rows once per event id: the first batch that carries one wins (ON CONFLICT DO NOTHING).
    for (const fact of FACT_TABLES) {
      let text = ""
      for (const output of rows.facts[fact]) {
        if (factIds.has(output.eventId)) continue
        factIds.add(output.eventId)
        if ("line" in output) text += output.line
        else segment.otherFacts[fact].push(output.row)
      }
      if (text.length > 0) {
        const t0 = performance.now()
        await (await factCopy(fact)).write(text)
        waits.factCopyMs += performance.now() - t0
      }
    }

    if (rows.dateRange) {
      const { first, last } = rows.dateRange
      segment.dates = segment.dates ? { first: first < segment.dates.first ? first : segment.dates.first, last: last > segment.dates.last ? last : segment.dates.last } : { first, last }
    }
    for (const dim of DIM_TABLES) {
      const table = DIM_SOURCES[dim]
      for (const key of rows.references[dim]) {
        if (!known.get(table)!.has(key) && !segment.mirror.has(mirrorKey(table, key))) segment.placeholders[dim].add(key)
      }
    }
    segment.truncations.push(...rows.truncations)
    segment.skipped.push(...rows.skipped)
  }

  /** Writes a segment's mirror rows: COPY for keys the target does not hold (`fresh`), the guarded upsert for the others. */
  const writeMirror = async (fresh: Array<MirrorEntry>, held: ReadonlyArray<MirrorEntry>): Promise<number> => {
    let written = 0
    if (fresh.length > 0) {
      // Key order: the primary key's index is filled from left to right.
      fresh.sort((a, b) => (a.row.table_name < b.row.table_name ? -1 : a.row.table_name > b.row.table_name ? 1 : a.row.key_id - b.row.key_id))
      const copy = startCopy(main, `COPY ${p}.mirror (${MIRROR_COLUMNS}) FROM STDIN`)
      for (let i = 0; i < fresh.length; i += 2_000) await copy.write(fresh.slice(i, i + 2_000).map(mirrorLine).join(""))
      written += await copy.end()
    }
    if (held.length > 0) {
      const copy = startCopy(main, `COPY bulk_mirror_stage (${MIRROR_COLUMNS}) FROM STDIN`)
      for (let i = 0; i < held.length; i += 2_000) await copy.write(held.slice(i, i + 2_000).map(mirrorLine).join(""))
      await copy.end()
      const upsert = await main.query(
        `INSERT INTO ${p}.mirror AS m (${MIRROR_COLUMNS})
         SELECT ${MIRROR_COLUMNS} FROM bulk_mirror_stage ORDER BY table_name, key_id
         ON CONFLICT (table_name, key_id) DO UPDATE
         SET image = excluded.image, source_lsn = excluded.source_lsn, source_seq = excluded.source_seq,
             deleted = excluded.deleted, event_id = excluded.event_id, updated_at = now()
         WHERE (excluded.source_lsn, excluded.source_seq) > (m.source_lsn, m.source_seq)`
      )
      written += upsert.rowCount ?? 0
    }
    return written
  }

  /** The segment's small sets, with apply.ts's statements: truncations, skipped and parked events, pauses, placeholders, dates. */
  const writeRest = async (sg: Segment): Promise<number> => {
    let factRows = 0
    for (const fact of FACT_TABLES) {
      const rows = sg.otherFacts[fact]
      if (rows.length === 0) continue
      const columns = FACT_COPY_COLUMNS[fact].join(", ")
      const result = await main.query(
        `INSERT INTO ${s}.${fact} (${columns}) SELECT ${columns} FROM jsonb_populate_recordset(NULL::${s}.${fact}, $1::jsonb) ORDER BY event_id ON CONFLICT (event_id) DO NOTHING`,
        [JSON.stringify(rows)]
      )
      factRows += result.rowCount ?? 0
    }
    if (sg.truncations.length > 0) {
      await main.query(
        `INSERT INTO ${p}.truncation (table_name, source_lsn, source_seq, event_id, committed_at)
         SELECT r.table_name, r.source_lsn, r.source_seq, r.event_id, r.committed_at
         FROM jsonb_to_recordset($1::jsonb) AS r(table_name text, source_lsn pg_lsn, source_seq integer, event_id text, committed_at timestamptz)
         ON CONFLICT DO NOTHING`,
        [JSON.stringify(sg.truncations.map((t) => ({ table_name: t.table, source_lsn: t.position.lsn, source_seq: t.position.seq, event_id: t.eventId, committed_at: t.committedAt })))]
      )
    }
    if (sg.skipped.length > 0) {
      await main.query(
        `INSERT INTO ${p}.skipped_event (event_id, table_name, reason, detail, source_lsn, event)
         SELECT r.event_id, r.table_name, r.reason, r.detail, r.source_lsn, r.event
         FROM jsonb_to_recordset($1::jsonb) AS r(event_id text, table_name text, reason text, detail text, source_lsn pg_lsn, event jsonb)
         ON CONFLICT (event_id) DO NOTHING`,
        [JSON.stringify(sg.skipped.map((e) => ({ event_id: e.eventId, table_name: e.table, reason: e.reason, detail: e.detail, source_lsn: e.lsn, event: e.event })))]
      )
    }
    if (sg.pauses.length > 0) {
      await main.query(
        `INSERT INTO ${p}.paused_table (table_name, column_name, problem, detail, first_event_id, first_lsn, first_seq, first_committed_at)
         SELECT r.table_name, r.column_name, r.problem, r.detail, r.event_id, r.lsn, r.seq, r.committed_at
         FROM jsonb_to_recordset($1::jsonb) AS r(table_name text, column_name text, problem text, detail text, event_id text, lsn pg_lsn, seq integer, committed_at timestamptz)
         ON CONFLICT (table_name) DO UPDATE SET column_name = excluded.column_name, problem = excluded.problem, detail = excluded.detail,
           first_event_id = excluded.first_event_id, first_lsn = excluded.first_lsn, first_seq = excluded.first_seq,
           first_committed_at = excluded.first_committed_at, paused_at = now()`,
        [
          JSON.stringify(
            sg.pauses.map(({ violation, event }) => ({
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
      )
    }
    if (sg.parked.length > 0) {
      await main.query(
        `INSERT INTO ${p}.parked_event (event_id, table_name, source_lsn, source_seq, event)
         SELECT r.event ->> 'id', r.event -> 'source' ->> 'table', (r.event -> 'source' ->> 'commitLsn')::pg_lsn, (r.event -> 'source' ->> 'index')::integer, r.event
         FROM jsonb_array_elements($1::jsonb) AS r(event)
         ON CONFLICT (event_id) DO NOTHING`,
        [JSON.stringify(sg.parked)]
      )
    }
    for (const dim of DIM_TABLES) {
      const keys = [...sg.placeholders[dim]].sort((a, b) => a - b)
      if (keys.length === 0) continue
      const key = DIM_KEYS[dim]
      await main.query(`INSERT INTO ${s}.${dim} (${key}) SELECT unnest($1::integer[]) ON CONFLICT (${key}) DO NOTHING`, [keys])
    }
    if (sg.dates) await main.query(`SELECT ${p}.extend_dim_date($1::date, $2::date)`, [sg.dates.first, sg.dates.last])
    return factRows
  }

  /** Commits one segment (after the one before it). */
  const commitSegment = async (sg: Segment, fresh: Array<MirrorEntry>, held: ReadonlyArray<MirrorEntry>): Promise<void> => {
    const t0 = performance.now()
    // The fact COPYs run on their own connections: each commits as it ends, meanwhile the mirror is written.
    const factsDone = Promise.all(Object.values(sg.copies).map((copy) => copy.end()))
    factsDone.catch(() => {})
    await main.query("BEGIN")
    try {
      const mirrorRows = await writeMirror(fresh, held)
      const otherFacts = await writeRest(sg)
      const copied = (await factsDone).reduce((a, b) => a + b, 0)
      await main.query("COMMIT")
      totals.mirrorRows += mirrorRows
      totals.factRows += copied + otherFacts
      totals.skipped += sg.skipped.length
      totals.parked += sg.parked.length
    } catch (error) {
      await main.query("ROLLBACK").catch(() => {})
      throw error
    }
    waits.segmentCommitMs += performance.now() - t0
  }

  /**
   * Starts committing the current segment and starts the next one: the commit runs while later
   * objects are read (the next segment's fact COPYs queue behind this one's on their connections).
   * Resolves once the segment is committed.
   */
  const flushSegment = (): Promise<void> => {
    const sg = segment
    if (sg.events === 0) return committing
    const fresh: Array<MirrorEntry> = []
    const held: Array<MirrorEntry> = []
    for (const entry of sg.mirror.values()) {
      const keys = known.get(entry.row.table_name)!
      if (keys.has(entry.row.key_id)) held.push(entry)
      else {
        fresh.push(entry)
        keys.add(entry.row.key_id)
      }
    }
    segment = newSegment()
    const before = committing
    committing = before.then(() => commitSegment(sg, fresh, held))
    committing.catch((error: Error) => {
      failure ??= error
    })
    return committing
  }

  const finish = async (): Promise<void> => {
    await committing
    const t0 = performance.now()
    await main.query("BEGIN")
    try {
      const { rows } = await main.query(`SELECT DISTINCT table_name FROM ${p}.truncation`)
      const truncated = new Set((rows as Array<{ table_name: string }>).map((r) => r.table_name))
      for (const fact of FACT_TABLES) {
        const table = FACT_SOURCES[fact]
        if (!truncated.has(table)) continue
        await main.query(`SELECT ${p}.reconcile_truncations($1, $2, $3, $4::text[], '0/0'::pg_lsn, -1, NULL)`, [fact, table, FACT_KEYS[fact], FACT_COLUMNS[fact]])
      }
      for (const dim of DIM_TABLES) {
        const result = await main.query(await dimensionUpsert(main, s, p, dim, pipelineSchema))
        totals.dimensionRows += result.rowCount ?? 0
      }
      await main.query("COMMIT")
    } catch (error) {
      await main.query("ROLLBACK").catch(() => {})
      throw error
    }
    waits.finishMs += performance.now() - t0
  }

  return {
    applyBatch,
    pendingEvents: () => segment.events,
    flushSegment,
    finish,
    counts: () => ({ ...totals, waits: { ...waits } }),
    close
  }
}
