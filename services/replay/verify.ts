/**
 * Verify: reconciles the warehouse with the source, read-only and with bounded work.
 *
 *   const report = yield* verify({ sourceUrl, warehouseUrl })      // report.ok, report.tables[].differences
 *
 * For every dimension and every fact's *_current view (verify-spec.ts):
 *  1. In one source snapshot (REPEATABLE READ, READ ONLY) read S = pg_current_wal_insert_lsn() and, per
 *     key bucket (key / bucketWidth), the row count and an md5 over the bucket's rows.
 *  2. Wait until the warehouse's consistent_through (pipeline_freshness) is at or past S: every
 *     source change visible in that snapshot is then in the warehouse. This needs a running
 *     pipeline; verify says so when it cannot get there within `waitMs`. A warehouse rebuilt by
 *     replay does not move: its consistent_through C is the replay's. It is consistent through S
 *     too when the lake is complete past S (its watermark) and holds no change committed in
 *     [C, S); otherwise verify says how many changes the replay misses (replay --catch-up).
 *  3. The same checksums in one warehouse snapshot; buckets that differ are drilled into per key
 *     (both sides, in the same snapshots). A key whose rows differ is only a *suspect*: the
 *     source keeps moving, so the warehouse may already hold a later change of it (its row's
 *     source_lsn > S), or a transaction committing at the very moment of the snapshot may be
 *     ordered differently on the two sides.
 *  4. Suspects are compared again in fresh snapshots (steps 1–2 for just those keys). A difference
 *     is confirmed when it is seen in two consecutive rounds with the warehouse row at the same
 *     position, at or before that round's S (so the warehouse had applied everything the source
 *     showed, yet the rows disagree). Keys that keep changing for `maxRounds` rounds are reported
 *     as unsettled, not as differences.
 *
 * Safe for production: every transaction is READ ONLY, statement_timeout bounds each statement,
 * per-key rows are only read for buckets whose checksums differ.
 */
import { data as iso4217 } from "currency-codes"
import pg from "pg"
import { Effect, Result, Schema, type Scope } from "effect"
import { compareLsn } from "../../contracts/lsn.ts"
import type { LakeWatermarkReader } from "../lake/watermark-read.ts"
import { connectClient } from "../shared/database-connection.ts"
import type { LakeError } from "../shared/lake-store.ts"
import { fromPromise } from "../shared/promise-effect.ts"
import type { WarehouseSchemas } from "../warehouse/migrate.ts"
import { readWarehouseFreshness, type WarehouseFreshness } from "../warehouse/freshness.ts"
import { resolveSchemas } from "../warehouse/migrate.ts"
import { VERIFY_SPECS, type VerifySpec } from "./verify-spec.ts"

export interface VerifyOptions extends WarehouseSchemas {
  readonly sourceUrl: string
  readonly warehouseUrl: string
  /** Warehouse tables to check (default all ten). */
  readonly tables?: ReadonlyArray<string>
  readonly bucketWidth?: number
  readonly statementTimeoutMs?: number
  /** How long to wait for the warehouse to reach a source snapshot's position. */
  readonly waitMs?: number
  readonly maxRounds?: number
  /** How many differing keys per table get a column-by-column listing. */
  readonly detailLimit?: number
  /** The lake's watermark, to verify a warehouse rebuilt by replay (whose position does not move). */
  readonly lakeWatermarks?: LakeWatermarkReader
  readonly onProgress?: (message: string) => void
}

export interface ColumnDifference {
  readonly column: string
  readonly source: string | null
  readonly warehouse: string | null
}

export interface KeyDifference {
  readonly key: number
  /** missing: in the source, not in the warehouse; extra: the other way round. */
  readonly kind: "missing" | "extra" | "different"
  readonly columns?: ReadonlyArray<ColumnDifference>
}

export interface TableVerification {
  readonly table: string
  /** A source table it derives from is paused by a schema change: not compared (the warehouse holds it as of the pause). */
  readonly paused?: ReadonlyArray<string>
  /** A side could not be read as the contract says (a column renamed, dropped or retyped): not compared. */
  readonly schemaMismatch?: { readonly side: "source" | "warehouse"; readonly message: string }
  readonly sourceRows: number
  readonly warehouseRows: number
  readonly buckets: number
  readonly differingBuckets: number
  readonly differences: ReadonlyArray<KeyDifference>
  readonly unsettled: ReadonlyArray<number>
}

export interface VerifyReport {
  readonly ok: boolean
  readonly sourceLsn: string
  readonly consistentThroughLsn: string | null
  readonly consistentThroughAt: string | null
  /** Where the warehouse's position comes from: the live stream, or the replay that built it. */
  readonly consistentThroughSource: "stream" | "replay" | null
  readonly rounds: number
  readonly tables: ReadonlyArray<TableVerification>
}

/** The warehouse (or, for a replayed one, the lake) did not reach the source's position in time. */
export class VerifyNotCaughtUpError extends Schema.TaggedError<VerifyNotCaughtUpError>()("VerifyNotCaughtUpError", {
  message: Schema.String
}) {}

const ISO_NAMES = JSON.stringify(Object.fromEntries(iso4217.map((record) => [record.code, record.currency])))

/** The source query's parameters: only the currency derivation takes the ISO 4217 names. */
const sourceParams = (spec: VerifySpec): ReadonlyArray<unknown> => (spec.source.includes("$1") ? [ISO_NAMES] : [])

/** A read-only connection, closed when the verification's scope ends. */
const connect = (database: "source" | "warehouse", url: string, statementTimeoutMs: number, name: string) =>
  Effect.acquireRelease(
    fromPromise(async () => {
      const client = await connectClient(database, url, { application_name: name, statement_timeout: statementTimeoutMs })
      try {
        // Belt and braces: even a statement outside the explicit transactions cannot write.
        await client.query("SET default_transaction_read_only = on")
      } catch (error) {
        await client.end().catch(() => {})
        throw error
      }
      return client
    }),
    (client) => Effect.promise(() => client.end().catch(() => {})),
    // Ctrl-C while a database does not answer ends the verification at once (the process exits).
    { interruptible: true }
  )

const query = (client: pg.Client, sql: string) => fromPromise(() => client.query(sql))

/** Runs `body` in a REPEATABLE READ, READ ONLY transaction: one snapshot for all its reads. */
const snapshot = <A, E>(client: pg.Client, body: Effect.Effect<A, E>): Effect.Effect<A, E | Error> =>
  Effect.gen(function* () {
    yield* query(client, "BEGIN ISOLATION LEVEL REPEATABLE READ")
    const result = yield* Effect.exit(Effect.andThen(query(client, "SET TRANSACTION READ ONLY"), body))
    yield* query(client, "ROLLBACK")
    return yield* result
  })

/** SQLSTATEs of a query that no longer fits the schema: undefined column, table or function, a cast that fails. */
const SCHEMA_ERRORS = new Set(["42703", "42P01", "42883", "22P02", "42804"])

/** The operator's column decisions and the paused tables (none on a warehouse without them). */
const readSchemaDecisions = async (warehouse: pg.Client, schemas: WarehouseSchemas) => {
  const { p } = resolveSchemas(schemas)
  const decisions = new Map<string, { renamed: Record<string, string>; missingAccepted: Array<string> }>()
  const paused = new Set<string>()
  const rows = await warehouse
    .query(`SELECT table_name, column_name, decision, source_column FROM ${p}.column_decision`)
    .then((r) => r.rows, (error) => ((error as { code?: string }).code === "42P01" ? [] : Promise.reject(error)))
  for (const row of rows) {
    const d = decisions.get(row.table_name) ?? { renamed: {}, missingAccepted: [] }
    if (row.decision === "renamed") d.renamed[row.column_name] = row.source_column
    else if (row.decision === "missing") d.missingAccepted.push(row.column_name)
    decisions.set(row.table_name, d)
  }
  const pausedRows = await warehouse
    .query(`SELECT table_name FROM ${p}.paused_table`)
    .then((r) => r.rows, (error) => ((error as { code?: string }).code === "42P01" ? [] : Promise.reject(error)))
  for (const row of pausedRows) paused.add(row.table_name)
  return { decisions, paused }
}

interface Bucket {
  readonly n: number
  readonly h: string
}

const bucketSums = async (client: pg.Client, sql: string, width: number, params: ReadonlyArray<unknown>): Promise<Map<number, Bucket>> => {
  const p = params.length + 1
  const { rows } = await client.query(
    `SELECT (k / $${p})::bigint AS b, count(*)::int AS n, md5(string_agg(md5(r), '' ORDER BY k)) AS h FROM (${sql}) q GROUP BY 1`,
    [...params, width]
  )
  return new Map(rows.map((row) => [Number(row.b), { n: row.n as number, h: row.h as string }]))
}

interface KeyRow {
  readonly r: string
  readonly lsn: string | null
}

/** Rows of the given buckets (ranges of keys, so an index on the key can be used) or of the given keys. */
const keyRows = async (
  client: pg.Client,
  sql: string,
  params: ReadonlyArray<unknown>,
  select: { readonly buckets: ReadonlyArray<number>; readonly width: number } | { readonly keys: ReadonlyArray<number> },
  withLsn: boolean
): Promise<Map<number, KeyRow>> => {
  const out = new Map<number, KeyRow>()
  const columns = `k, r${withLsn ? ", lsn::text AS lsn" : ""}`
  if ("keys" in select) {
    if (select.keys.length === 0) return out
    const { rows } = await client.query(`SELECT ${columns} FROM (${sql}) q WHERE k = ANY($${params.length + 1}::bigint[])`, [...params, select.keys])
    for (const row of rows) out.set(Number(row.k), { r: row.r, lsn: row.lsn ?? null })
    return out
  }
  for (let i = 0; i < select.buckets.length; i += 50) {
    const part = select.buckets.slice(i, i + 50)
    const conditions = part.map((_, j) => `(k >= $${params.length + 2 * j + 1} AND k < $${params.length + 2 * j + 2})`).join(" OR ")
    const bounds = part.flatMap((b) => [b * select.width, (b + 1) * select.width])
    const { rows } = await client.query(`SELECT ${columns} FROM (${sql}) q WHERE ${conditions}`, [...params, ...bounds])
    for (const row of rows) out.set(Number(row.k), { r: row.r, lsn: row.lsn ?? null })
  }
  return out
}

interface Suspect {
  readonly key: number
  readonly kind: KeyDifference["kind"]
  /** The warehouse row's position ('0/0' when it has none), and whether it was within the round's snapshot. */
  readonly lsn: string
  readonly settled: boolean
  readonly source: string | null
  readonly warehouse: string | null
}

export const verify = Effect.fn("verify")(function* (options: VerifyOptions): Effect.fn.Return<VerifyReport, VerifyNotCaughtUpError | LakeError | Error, Scope.Scope> {
  const width = options.bucketWidth ?? 1024
  const timeout = options.statementTimeoutMs ?? 60_000
  const waitMs = options.waitMs ?? 60_000
  const maxRounds = Math.max(2, options.maxRounds ?? 4)
  const say = options.onProgress ?? (() => {})
  const schemas = { schema: options.schema, pipelineSchema: options.pipelineSchema }
  const specs = options.tables && options.tables.length > 0 ? VERIFY_SPECS.filter((s) => options.tables!.includes(s.table)) : VERIFY_SPECS
  const unknown = (options.tables ?? []).filter((t) => !VERIFY_SPECS.some((s) => s.table === t))
  if (unknown.length > 0) return yield* Effect.fail(new Error(`unknown table(s) ${unknown.join(", ")}; choose from ${VERIFY_SPECS.map((s) => s.table).join(", ")}`))

  const source = yield* connect("source", options.sourceUrl, timeout, "totes-verify")
  const warehouse = yield* connect("warehouse", options.warehouseUrl, timeout, "totes-verify")

  // The operator's decisions for schema changes read the source as the consumer does; paused tables are not compared.
  const { decisions, paused } = yield* fromPromise(() => readSchemaDecisions(warehouse, schemas))
  const pausedBy = new Map(specs.map((spec) => [spec.table, spec.sourceTables.filter((t) => paused.has(t))]))
  const mismatches = new Map<string, { side: "source" | "warehouse"; message: string }>()
  const compared = specs.filter((spec) => pausedBy.get(spec.table)!.length === 0).map((spec) => spec.adapt(decisions))
  /** A side's checksums, or a schema mismatch recorded for the table (in a savepoint: the snapshot goes on). */
  const sums = (client: pg.Client, side: "source" | "warehouse", spec: VerifySpec, sql: string, params: ReadonlyArray<unknown>) =>
    Effect.gen(function* () {
      yield* query(client, "SAVEPOINT verify_table")
      const result = yield* Effect.result(
        fromPromise(async () => {
          const found = await bucketSums(client, sql, width, params)
          await client.query("RELEASE SAVEPOINT verify_table")
          return found
        })
      )
      if (Result.isSuccess(result)) return result.success
      yield* query(client, "ROLLBACK TO SAVEPOINT verify_table")
      const error = result.failure
      const code = (error as { code?: string }).code ?? ""
      if (!SCHEMA_ERRORS.has(code)) return yield* Effect.fail(error)
      mismatches.set(spec.table, { side, message: `${error.message} (${side} side of ${spec.table}: a column renamed, dropped or retyped? see totes status)` })
      return undefined
    })
  let freshness: WarehouseFreshness = yield* fromPromise(() => readWarehouseFreshness(warehouse, schemas))
  /** Waits until the warehouse is consistent through `lsn`. */
  const reach = Effect.fn("verify.reach")(function* (lsn: string) {
    const deadline = Date.now() + waitMs
    for (;;) {
      freshness = yield* fromPromise(() => readWarehouseFreshness(warehouse, schemas))
      if (freshness.consistentThroughLsn && compareLsn(freshness.consistentThroughLsn, lsn) >= 0) return
      if (freshness.source === "replay") return yield* replayedReaches(freshness, lsn, deadline)
      if (Date.now() >= deadline) {
        return yield* new VerifyNotCaughtUpError({
          message:
            freshness.consistentThroughLsn === null
              ? `the warehouse has no consistent_through position (no heartbeat applied on every shard, and not rebuilt by replay): verify needs the pipeline (reader and consumer) running`
              : `the warehouse is consistent through ${freshness.consistentThroughLsn} but the source is at ${lsn} (waited ${Math.round(waitMs / 1000)} s): ` +
                `verify compares at a position both have reached, so the pipeline must be running and catching up`
        })
      }
      yield* Effect.sleep(200)
    }
  })
  /** A replayed warehouse (consistent through C) is consistent through `lsn` when the lake shows no change in [C, lsn). */
  const replayedReaches = Effect.fn("verify.replayedReaches")(function* (replayed: WarehouseFreshness, lsn: string, deadline: number) {
    const through = replayed.consistentThroughLsn!
    const lake = options.lakeWatermarks
    if (!lake) {
      return yield* new VerifyNotCaughtUpError({
        message: `the warehouse was rebuilt by replay and is consistent through ${through}, the source is at ${lsn}: verify needs the lake to tell whether anything changed in between`
      })
    }
    for (;;) {
      const { watermark } = yield* lake.read()
      if (watermark && compareLsn(watermark.lsn, lsn) >= 0) break
      if (Date.now() >= deadline) {
        return yield* new VerifyNotCaughtUpError({
          message:
            `the warehouse was rebuilt by replay and is consistent through ${through}; the source is at ${lsn} but the lake watermark is ` +
            `${watermark ? watermark.lsn : "missing"} (waited ${Math.round(waitMs / 1000)} s): verify needs the lake to reach the source's position, give it longer with --wait`
        })
      }
      yield* Effect.sleep(500)
    }
    const since = replayed.consistentThroughAt ?? new Date(0)
    const { count } = yield* lake.changesBetween(since, through, lsn)
    if (count > 0) {
      return yield* new VerifyNotCaughtUpError({
        message:
          `the warehouse was rebuilt by replay and is consistent through ${through} (${replayed.consistentThroughAt?.toISOString() ?? "–"}); ` +
          `the source has moved on: the lake holds ${count} change(s) committed after it. Bring the warehouse forward with ` +
          `totes replay --catch-up --name <a new name> --target <this warehouse> (or rebuild a fresh one), then verify again`
      })
    }
  })
  const sourceLsn = fromPromise(async () => (await source.query("SELECT pg_current_wal_insert_lsn()::text AS lsn")).rows[0].lsn as string)

  // Round 1: bucket checksums, then per-key rows of the buckets that differ.
  const results = new Map<string, { sourceRows: number; warehouseRows: number; buckets: number; differingBuckets: number }>()
  let suspects = new Map<string, Array<Suspect>>()
  let roundLsn = ""
  yield* snapshot(source, Effect.gen(function* () {
    roundLsn = yield* sourceLsn
    const sourceSums = new Map<string, Map<number, Bucket>>()
    for (const spec of compared) {
      const sums_ = yield* sums(source, "source", spec, spec.source, sourceParams(spec))
      if (sums_) sourceSums.set(spec.table, sums_)
    }
    say(`source snapshot at ${roundLsn}: checksums of ${compared.length} tables`)
    yield* reach(roundLsn)
    yield* snapshot(warehouse, Effect.gen(function* () {
      for (const spec of compared) {
        const ours = sourceSums.get(spec.table)
        if (!ours) continue
        const theirs = yield* sums(warehouse, "warehouse", spec, spec.warehouse(schemas), [])
        if (!theirs) continue
        const all = new Set([...ours.keys(), ...theirs.keys()])
        const differing = [...all].filter((b) => ours.get(b)?.h !== theirs.get(b)?.h || ours.get(b)?.n !== theirs.get(b)?.n)
        results.set(spec.table, {
          sourceRows: [...ours.values()].reduce((n, b) => n + b.n, 0),
          warehouseRows: [...theirs.values()].reduce((n, b) => n + b.n, 0),
          buckets: all.size,
          differingBuckets: differing.length
        })
        if (differing.length === 0) continue
        const sourceRows = yield* fromPromise(() => keyRows(source, spec.source, sourceParams(spec), { buckets: differing, width }, false))
        const warehouseRows = yield* fromPromise(() => keyRows(warehouse, spec.warehouse(schemas), [], { buckets: differing, width }, true))
        suspects.set(spec.table, yield* fromPromise(() => compareKeys(warehouse, spec, schemas, sourceRows, warehouseRows, roundLsn)))
      }
    }))
  }))
  say(`round 1 at ${roundLsn}: ${[...suspects.values()].reduce((n, s) => n + s.length, 0)} suspect keys`)

  // Further rounds: only the suspect keys, in fresh snapshots.
  const confirmed = new Map<string, Array<Suspect>>()
  let rounds = 1
  while ([...suspects.values()].some((s) => s.length > 0) && rounds < maxRounds) {
    rounds++
    const next = new Map<string, Array<Suspect>>()
    yield* snapshot(source, Effect.gen(function* () {
      roundLsn = yield* sourceLsn
      const sourceRows = new Map<string, Map<number, KeyRow>>()
      for (const spec of compared) {
        const keys = (suspects.get(spec.table) ?? []).map((s) => s.key)
        if (keys.length > 0) sourceRows.set(spec.table, yield* fromPromise(() => keyRows(source, spec.source, sourceParams(spec), { keys }, false)))
      }
      yield* reach(roundLsn)
      yield* snapshot(warehouse, Effect.gen(function* () {
        for (const spec of compared) {
          const previous = suspects.get(spec.table) ?? []
          if (previous.length === 0) continue
          const keys = previous.map((s) => s.key)
          const warehouseRows = yield* fromPromise(() => keyRows(warehouse, spec.warehouse(schemas), [], { keys }, true))
          const now = yield* fromPromise(() => compareKeys(warehouse, spec, schemas, sourceRows.get(spec.table)!, warehouseRows, roundLsn, keys))
          const stillSuspect: Array<Suspect> = []
          for (const suspect of now) {
            const before = previous.find((p) => p.key === suspect.key)!
            if (suspect.settled && before.settled && suspect.lsn === before.lsn) {
              confirmed.set(spec.table, [...(confirmed.get(spec.table) ?? []), suspect])
            } else stillSuspect.push(suspect)
          }
          next.set(spec.table, stillSuspect)
        }
      }))
    }))
    suspects = next
    say(`round ${rounds} at ${roundLsn}: ${[...confirmed.values()].reduce((n, s) => n + s.length, 0)} confirmed, ${[...suspects.values()].reduce((n, s) => n + s.length, 0)} still suspect`)
  }

  const detailLimit = options.detailLimit ?? 20
  const tables: Array<TableVerification> = specs.map((spec) => {
    const found = (confirmed.get(spec.table) ?? []).sort((a, b) => a.key - b.key)
    const blocked = pausedBy.get(spec.table)!
    const mismatch = mismatches.get(spec.table)
    return {
      table: spec.table,
      ...(results.get(spec.table) ?? { sourceRows: 0, warehouseRows: 0, buckets: 0, differingBuckets: 0 }),
      ...(blocked.length > 0 ? { paused: blocked } : {}),
      ...(mismatch ? { schemaMismatch: mismatch } : {}),
      differences: found.map((d, i) => ({
        key: d.key,
        kind: d.kind,
        ...(d.kind === "different" && i < detailLimit ? { columns: columnDifferences(spec, d.source!, d.warehouse!) } : {})
      })),
      unsettled: (suspects.get(spec.table) ?? []).map((s) => s.key).sort((a, b) => a - b)
    }
  })
  return {
    ok: tables.every((t) => t.differences.length === 0 && !t.paused && !t.schemaMismatch),
    sourceLsn: roundLsn,
    consistentThroughLsn: freshness.consistentThroughLsn,
    consistentThroughAt: freshness.consistentThroughAt?.toISOString() ?? null,
    consistentThroughSource: freshness.source,
    rounds,
    tables
  }
}, Effect.scoped)

/** Keys whose rows differ (of `keys`, or of every key either side returned). */
const compareKeys = async (
  warehouse: pg.Client,
  spec: VerifySpec,
  schemas: WarehouseSchemas,
  sourceRows: ReadonlyMap<number, KeyRow>,
  warehouseRows: ReadonlyMap<number, KeyRow>,
  roundLsn: string,
  keys?: ReadonlyArray<number>
): Promise<Array<Suspect>> => {
  const candidates = keys ?? [...new Set([...sourceRows.keys(), ...warehouseRows.keys()])]
  const differing = candidates.filter((k) => sourceRows.get(k)?.r !== warehouseRows.get(k)?.r)
  // Position of the warehouse's row for keys without a live row (deleted, or never seen).
  const withoutLive = differing.filter((k) => !warehouseRows.has(k))
  const positions = new Map<number, string | null>()
  if (withoutLive.length > 0) {
    const { rows } = await warehouse.query(spec.positions(schemas), [withoutLive])
    for (const row of rows) positions.set(Number(row.k), row.lsn)
  }
  return differing.map((key) => {
    const ours = sourceRows.get(key)
    const theirs = warehouseRows.get(key)
    const lsn = (theirs ? theirs.lsn : positions.get(key)) ?? "0/0"
    return {
      key,
      kind: !theirs ? "missing" : !ours ? "extra" : "different",
      lsn,
      settled: compareLsn(lsn, roundLsn) <= 0,
      source: ours?.r ?? null,
      warehouse: theirs?.r ?? null
    }
  })
}

const columnDifferences = (spec: VerifySpec, source: string, warehouse: string): Array<ColumnDifference> => {
  const ours = JSON.parse(source) as Array<string | null>
  const theirs = JSON.parse(warehouse) as Array<string | null>
  return spec.columns.flatMap((column, i) => (ours[i] === theirs[i] ? [] : [{ column, source: ours[i] ?? null, warehouse: theirs[i] ?? null }]))
}
