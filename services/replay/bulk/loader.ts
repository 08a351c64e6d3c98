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
 * - each batch goes through the consumer's own rules: sortBySchema (pauses a table whose changes no
 *   longer fit and parks its changes from that position on), the projection (project.ts ≡
 *   projectBatch) and completePlan;
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
 * Where the time goes: rows stream into the target while later objects are still being read,
 * each table on its own connection (one COPY per fact table, one for the mirror): a mirror row goes
 * out at once when its key is new to the target; a newer change of a key the target already holds
 * waits in memory (only the newest per key) for the segment's end, then takes the position-guarded
 * upsert through a staging table. A segment commits per connection, in the background while the
 * next one is read; a crash between the commits is harmless because a resumed run reads what the
 * target holds (mirror keys, fact event ids) and writes only what is missing or newer.
 */
import type pg from "pg"
import type { ChangeEvent, Row } from "../../../contracts/change-event.ts"
import { isLsn, type Lsn } from "../../../contracts/lsn.ts"
import { TOTESYS_TABLES, type TotesysTable } from "../../../contracts/totesys.ts"
import { parkAndPauseStatements, positionOf, readSchemaState, sortBySchema, type Pause } from "../../warehouse/apply.ts"
import {
  completePlan,
  DIM_TABLES,
  FACT_COLUMNS,
  FACT_KEYS,
  FACT_SOURCES,
  mirrorNeeds,
  projectSortedBatch,
  mirrorKey,
  type DimTable,
  type FactRow,
  type FactTable,
  type MirrorNeed,
  type Position as ProjectionPosition,
  type MirrorRow,
  type SkippedEvent,
  type Truncation
} from "../../warehouse/projection.ts"
import { resolveSchemas, type WarehouseSchemas } from "../../warehouse/migrate.ts"
import { completedBatchRows, FACT_COPY_COLUMNS, FACT_TABLES, simpleBatchRows, type BatchRows } from "./batch-rows.ts"
import { copyEscape, startCopy, type CopyWriter } from "./copy-text.ts"

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

/** A source position as numbers: the LSN's two 32-bit halves and the index within the transaction. */
interface Position {
  readonly hi: number
  readonly lo: number
  readonly seq: number
}

const isNewer = (hi: number, lo: number, seq: number, than: Position) =>
  hi > than.hi || (hi === than.hi && (lo > than.lo || (lo === than.lo && seq > than.seq)))

/** A position's LSN as pg_lsn prints it (unpadded upper case). */
const lsnText = (at: Position): Lsn => `${at.hi.toString(16).toUpperCase()}/${at.lo.toString(16).toUpperCase()}`

/** An LSN's halves; rows of one transaction share their LSN text, so the last one is remembered. */
const lsnHalves = () => {
  let text = ""
  let halves = { hi: 0, lo: 0 }
  return (lsn: Lsn): { hi: number; lo: number } => {
    if (lsn !== text) {
      if (!isLsn(lsn)) throw new RangeError(`not an LSN: ${JSON.stringify(lsn)}`)
      const slash = lsn.indexOf("/")
      halves = { hi: Number.parseInt(lsn.slice(0, slash), 16), lo: Number.parseInt(lsn.slice(slash + 1), 16) }
      text = lsn
    }
    return halves
  }
}

/**
 * The newest row of a key in the current segment: its position, and, when the target holds an
 * older version of the key (from an earlier segment or streamed earlier in this one), the row as
 * COPY text for the guarded upsert at the segment's end. A row streamed at once keeps no text.
 */
interface MirrorEntry extends Position {
  readonly held: string | undefined
}

/** JSON text holds no raw tab, newline or carriage return: of COPY's special characters only backslashes. */
const jsonField = (json: string) => (json.includes("\\") ? json.replaceAll("\\", "\\\\") : json)

const mirrorLine = (row: MirrorRow) =>
  `${row.table_name}\t${row.key_id}\t${jsonField(JSON.stringify(row.image))}\t${row.source_lsn}\t${row.source_seq}\t${row.deleted ? "t" : "f"}\t${copyEscape(row.event_id)}\n`

/**
 * A connection a segment streams its mirror rows on and commits with. Two alternate, so that a
 * segment streams while the one before it commits; `free` resolves once the lane's last commit ended.
 */
interface MirrorLane {
  readonly client: pg.Client
  free: Promise<void>
}

/** What one segment collects until it is committed. */
interface Segment {
  events: number
  /** The newest row of every key the segment changed, per source table (the guard reads it). */
  readonly mirror: Map<TotesysTable, Map<number, MirrorEntry>>
  /** The mirror lane it streams and commits on (segments alternate). */
  readonly lane: number
  /** Mirror rows of keys new to the target, streamed as they come. */
  mirrorCopy: CopyWriter | undefined
  readonly copies: Partial<Record<FactTable, CopyWriter>>
  /** Fact rows with a value COPY cannot carry as jsonb_populate_recordset reads it (an object or array). */
  readonly otherFacts: Record<FactTable, Array<FactRow>>
  readonly truncations: Array<Truncation>
  readonly skipped: Array<SkippedEvent>
  readonly parked: Array<ChangeEvent>
  /** In batch order: a later pause of a table is an earlier position (sortBySchema), and wins. */
  readonly pauses: Array<Pause>
  readonly placeholders: Record<DimTable, Set<number>>
  dates: { first: string; last: string } | null
}

const newSegment = (lane: number): Segment => ({
  events: 0,
  mirror: new Map(TOTESYS_TABLES.map((table) => [table, new Map<number, MirrorEntry>()])),
  lane,
  mirrorCopy: undefined,
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
  const schema = await readSchemaState((text) => client.query(text), p)
  // The loader pauses tables as it goes: its own copy of the paused tables and where each paused.
  return { known, factIds, schemaState: { decisions: schema.decisions, paused: new Map(schema.paused) } }
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
  /** Reads the committed target (state, fill images) and runs the final derivations. */
  const main = await options.connect()
  /** Stream mirror rows and commit each segment's mirror and small sets (segments alternate). */
  const lanes: Array<MirrorLane> = []
  const factClients: Partial<Record<FactTable, pg.Client>> = {}
  /** The segment commits in flight, in order (resolved when none is); the first failure ends the run. */
  let committing: Promise<void> = Promise.resolve()
  let failure: Error | undefined
  const close = async () => {
    await committing.catch(() => {})
    await Promise.all([main, ...lanes.map((lane) => lane.client), ...Object.values(factClients)].map((client) => client.end().catch(() => {})))
  }
  let state: Awaited<ReturnType<typeof readTargetState>>
  try {
    state = await readTargetState(main, s, p)
    for (let i = 0; i < 2; i++) {
      const client = await options.connect()
      lanes.push({ client, free: Promise.resolve() })
      await client.query(`CREATE TEMP TABLE bulk_mirror_stage (LIKE ${p}.mirror INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`)
    }
  } catch (error) {
    await close()
    throw error
  }
  const { known, factIds, schemaState } = state
  const totals = { mirrorRows: 0, factRows: 0, dimensionRows: 0, skipped: 0, parked: 0 }
  const waits = { factCopyMs: 0, segmentCommitMs: 0, finishMs: 0 }
  const halves = lsnHalves()
  let segment = newSegment(0)

  /** Runs `work` as if awaited, but only timed: the waits a run reports. */
  const timed = async <A>(into: "factCopyMs", work: Promise<A>): Promise<A> => {
    const t0 = performance.now()
    try {
      return await work
    } finally {
      waits[into] += performance.now() - t0
    }
  }

  const factCopy = async (fact: FactTable): Promise<CopyWriter> => {
    const existing = segment.copies[fact]
    if (existing) return existing
    const client = (factClients[fact] ??= await options.connect())
    const copy = startCopy(client, `COPY ${s}.${fact} (${FACT_COPY_COLUMNS[fact].join(", ")}) FROM STDIN`)
    segment.copies[fact] = copy
    return copy
  }

  /** The segment's mirror COPY, in the transaction its commit ends (once its lane's previous commit has ended). */
  const mirrorCopy = async (): Promise<CopyWriter> => {
    const sg = segment
    if (sg.mirrorCopy) return sg.mirrorCopy
    const { client, free } = lanes[sg.lane]!
    await free
    if (sg.mirrorCopy) return sg.mirrorCopy
    client.query("BEGIN").catch(() => {})
    sg.mirrorCopy = startCopy(client, `COPY ${p}.mirror (${MIRROR_COLUMNS}) FROM STDIN`)
    return sg.mirrorCopy
  }

  /**
   * The mirror rows a batch completes its changes from (images, and positions where they stand),
   * as applyRecords reads them: the mirror after every batch before this one. A row changed in the
   * current segment is known here only by its position: when the batch needs no more of it than
   * that (it is older than the batch's earlier change that columns came from, the usual case), the
   * position answers; when its image is needed, the segment is committed first and the committed
   * mirror is read.
   */
  const previousRows = async (needs: ReadonlyArray<MirrorNeed>) => {
    const positions = new Map<string, ProjectionPosition>()
    const read: Array<MirrorNeed> = []
    let commitFirst = false
    for (const need of needs) {
      const held = segment.mirror.get(need.table)!.get(need.key)
      const prior = need.oldestPrior
      const at = prior && halves(prior.lsn)
      if (!held) read.push(need)
      else if (!need.fills && prior && at && isNewer(at.hi, at.lo, prior.seq, held)) {
        positions.set(mirrorKey(need.table, need.key), { lsn: lsnText(held), seq: held.seq })
      } else {
        commitFirst = true
        read.push(need)
      }
    }
    if (commitFirst) void flushSegment()
    const images = new Map<string, Row>()
    if (read.length === 0) return { images, positions }
    await committing
    const { rows } = await main.query(
      `SELECT m.table_name, m.key_id, m.image, m.source_lsn::text AS source_lsn, m.source_seq
       FROM ${p}.mirror m JOIN unnest($1::text[], $2::bigint[]) AS n(table_name, key_id) ON m.table_name = n.table_name AND m.key_id = n.key_id`,
      [read.map((n) => n.table), read.map((n) => n.key)]
    )
    for (const row of rows as Array<{ table_name: string; key_id: string; image: Row; source_lsn: Lsn; source_seq: number }>) {
      const key = mirrorKey(row.table_name, Number(row.key_id))
      images.set(key, row.image)
      positions.set(key, { lsn: row.source_lsn, seq: row.source_seq })
    }
    return { images, positions }
  }

  /** A batch the fast way declines: the consumer's plan, completed from the mirror as applyRecords would. */
  const plannedRows = async (records: ReadonlyArray<ChangeEvent>): Promise<BatchRows> => {
    const plan = projectSortedBatch(records)
    const needs = mirrorNeeds(plan)
    const mirror = needs.length > 0 ? await previousRows(needs) : undefined
    return completedBatchRows(plan, completePlan(plan, mirror?.images ?? new Map(), mirror?.positions))
  }

  const applyBatch = async (events: ReadonlyArray<ChangeEvent>): Promise<void> => {
    if (failure) throw failure
    const sorted = sortBySchema(events, schemaState)
    for (const pause of sorted.pauses) schemaState.paused.set(pause.violation.table, positionOf(pause.event))
    // (The plan may commit the segment first: what this batch writes goes into the segment after.)
    const rows = simpleBatchRows(sorted.applicable) ?? (await plannedRows(sorted.applicable as ReadonlyArray<ChangeEvent>))
    segment.events += events.length
    segment.pauses.push(...sorted.pauses)
    segment.parked.push(...sorted.parked)

    // The mirror under the position guard (a key's newest change wins; an equal position keeps the
    // first): a key new to the target is streamed at once, a newer version of one it holds waits.
    let fresh = ""
    for (const row of rows.mirror) {
      const { hi, lo } = halves(row.source_lsn)
      const keys = segment.mirror.get(row.table_name)!
      const entry = keys.get(row.key_id)
      if (entry && !isNewer(hi, lo, row.source_seq, entry)) continue
      const line = mirrorLine(row)
      if (entry !== undefined || known.get(row.table_name)!.has(row.key_id)) keys.set(row.key_id, { hi, lo, seq: row.source_seq, held: line })
      else {
        keys.set(row.key_id, { hi, lo, seq: row.source_seq, held: undefined })
        fresh += line
      }
    }
    if (fresh.length > 0) await (await mirrorCopy()).write(fresh)

    // Fact rows once per event id: the first batch that carries one wins (ON CONFLICT DO NOTHING).
    for (const fact of FACT_TABLES) {
      let text = ""
      for (const output of rows.facts[fact]) {
        if (factIds.has(output.eventId)) continue
        factIds.add(output.eventId)
        if ("line" in output) text += output.line
        else segment.otherFacts[fact].push(output.row)
      }
      if (text.length > 0) await timed("factCopyMs", (await factCopy(fact)).write(text))
    }

    if (rows.dateRange) {
      const { first, last } = rows.dateRange
      segment.dates = segment.dates ? { first: first < segment.dates.first ? first : segment.dates.first, last: last > segment.dates.last ? last : segment.dates.last } : { first, last }
    }
    for (const dim of DIM_TABLES) {
      const table = DIM_SOURCES[dim]
      for (const key of rows.references[dim]) {
        if (!known.get(table)!.has(key) && !segment.mirror.get(table)!.has(key)) segment.placeholders[dim].add(key)
      }
    }
    segment.truncations.push(...rows.truncations)
    segment.skipped.push(...rows.skipped)
  }

  /** Newer versions of keys the target held before this segment: staged, then the position-guarded upsert. */
  const upsertHeld = async (client: pg.Client, held: ReadonlyArray<string>): Promise<number> => {
    if (held.length === 0) return 0
    const copy = startCopy(client, `COPY bulk_mirror_stage (${MIRROR_COLUMNS}) FROM STDIN`)
    for (let i = 0; i < held.length; i += 2_000) await copy.write(held.slice(i, i + 2_000).join(""))
    await copy.end()
    const upsert = await client.query(
      `INSERT INTO ${p}.mirror AS m (${MIRROR_COLUMNS})
       SELECT ${MIRROR_COLUMNS} FROM bulk_mirror_stage ORDER BY table_name, key_id
       ON CONFLICT (table_name, key_id) DO UPDATE
       SET image = excluded.image, source_lsn = excluded.source_lsn, source_seq = excluded.source_seq,
           deleted = excluded.deleted, event_id = excluded.event_id, updated_at = now()
       WHERE (excluded.source_lsn, excluded.source_seq) > (m.source_lsn, m.source_seq)`
    )
    return upsert.rowCount ?? 0
  }

  /** The segment's small sets, with apply.ts's statements: truncations, skipped and parked events, pauses, placeholders, dates. */
  const writeRest = async (client: pg.Client, sg: Segment): Promise<number> => {
    let factRows = 0
    for (const fact of FACT_TABLES) {
      const rows = sg.otherFacts[fact]
      if (rows.length === 0) continue
      const columns = FACT_COPY_COLUMNS[fact].join(", ")
      const result = await client.query(
        `INSERT INTO ${s}.${fact} (${columns}) SELECT ${columns} FROM jsonb_populate_recordset(NULL::${s}.${fact}, $1::jsonb) ORDER BY event_id ON CONFLICT (event_id) DO NOTHING`,
        [JSON.stringify(rows)]
      )
      factRows += result.rowCount ?? 0
    }
    if (sg.truncations.length > 0) {
      await client.query(
        `INSERT INTO ${p}.truncation (table_name, source_lsn, source_seq, event_id, committed_at)
         SELECT r.table_name, r.source_lsn, r.source_seq, r.event_id, r.committed_at
         FROM jsonb_to_recordset($1::jsonb) AS r(table_name text, source_lsn pg_lsn, source_seq integer, event_id text, committed_at timestamptz)
         ON CONFLICT DO NOTHING`,
        [JSON.stringify(sg.truncations.map((t) => ({ table_name: t.table, source_lsn: t.position.lsn, source_seq: t.position.seq, event_id: t.eventId, committed_at: t.committedAt })))]
      )
    }
    if (sg.skipped.length > 0) {
      await client.query(
        `INSERT INTO ${p}.skipped_event (event_id, table_name, reason, detail, source_lsn, event)
         SELECT r.event_id, r.table_name, r.reason, r.detail, r.source_lsn, r.event
         FROM jsonb_to_recordset($1::jsonb) AS r(event_id text, table_name text, reason text, detail text, source_lsn pg_lsn, event jsonb)
         ON CONFLICT (event_id) DO NOTHING`,
        [JSON.stringify(sg.skipped.map((e) => ({ event_id: e.eventId, table_name: e.table, reason: e.reason, detail: e.detail, source_lsn: e.lsn, event: e.event })))]
      )
    }
    for (const [text, params] of parkAndPauseStatements(p, sg)) await client.query(text, params as Array<unknown>)
    for (const dim of DIM_TABLES) {
      const keys = [...sg.placeholders[dim]].sort((a, b) => a - b)
      if (keys.length === 0) continue
      const key = DIM_KEYS[dim]
      await client.query(`INSERT INTO ${s}.${dim} (${key}) SELECT unnest($1::integer[]) ON CONFLICT (${key}) DO NOTHING`, [keys])
    }
    if (sg.dates) await client.query(`SELECT ${p}.extend_dim_date($1::date, $2::date)`, [sg.dates.first, sg.dates.last])
    return factRows
  }

  /** Commits one segment (after the one before it): its mirror lane's transaction takes the held rows and the small sets. */
  const commitSegment = async (sg: Segment, held: ReadonlyArray<string>, factsDone: Promise<Array<number>>): Promise<void> => {
    const t0 = performance.now()
    // The lane's previous commit ended before the one before this (commits run in order).
    const { client } = lanes[sg.lane]!
    try {
      let mirrorRows = 0
      if (sg.mirrorCopy) mirrorRows += await sg.mirrorCopy.end()
      else await client.query("BEGIN")
      mirrorRows += await upsertHeld(client, held)
      const otherFacts = await writeRest(client, sg)
      const copied = (await factsDone).reduce((a, b) => a + b, 0)
      await client.query("COMMIT")
      totals.mirrorRows += mirrorRows
      totals.factRows += copied + otherFacts
      totals.skipped += sg.skipped.length
      totals.parked += sg.parked.length
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {})
      throw error
    }
    waits.segmentCommitMs += performance.now() - t0
  }

  /**
   * Starts committing the current segment and starts the next one: the fact COPYs end at once (each
   * commits by itself), the rest commits while later objects are read. Resolves once the segment is
   * committed.
   */
  const flushSegment = (): Promise<void> => {
    const sg = segment
    if (sg.events === 0) return committing
    const held: Array<string> = []
    for (const [table, keys] of sg.mirror) {
      const target = known.get(table)!
      for (const [key, entry] of keys) {
        if (entry.held !== undefined) held.push(entry.held)
        target.add(key)
      }
    }
    const factsDone = Promise.all(Object.values(sg.copies).map((copy) => copy.end()))
    factsDone.catch(() => {})
    segment = newSegment((sg.lane + 1) % lanes.length)
    const done = committing.then(() => commitSegment(sg, held, factsDone))
    committing = done
    done.catch((error: Error) => {
      failure ??= error
    })
    // The lane takes another segment once this commit has ended, whichever way.
    lanes[sg.lane]!.free = done.catch(() => {})
    return done
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
