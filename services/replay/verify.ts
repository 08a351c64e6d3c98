/**
 * Verify: reconciles the warehouse with the source, read-only and with bounded work.
 *
 *   const report = await verify({ sourceUrl, warehouseUrl })      // report.ok, report.tables[].differences
 *
 * For every dimension and every fact's *_current view (verify-spec.ts):
 *  1. In one source snapshot (REPEATABLE READ, READ ONLY) read S = pg_current_wal_insert_lsn() and, per
 *     key bucket (key / bucketWidth), the row count and an md5 over the bucket's rows.
 *  2. Wait until the warehouse's consistent_through (pipeline_freshness) is at or past S: every
 *     source change visible in that snapshot is then in the warehouse. This needs a running
 *     pipeline; verify says so when it cannot get there within `waitMs`.
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
import { compareLsn } from "../../contracts/lsn.ts"
import { readFreshness } from "../consumer/apply.ts"
import { connectClient } from "../shared/database-connection.ts"
import type { WarehouseSchemas } from "../warehouse/migrate.ts"
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
  readonly rounds: number
  readonly tables: ReadonlyArray<TableVerification>
}

export class VerifyNotCaughtUpError extends Error {
  override readonly name = "VerifyNotCaughtUpError"
}

const ISO_NAMES = JSON.stringify(Object.fromEntries(iso4217.map((record) => [record.code, record.currency])))

/** The source query's parameters: only the currency derivation takes the ISO 4217 names. */
const sourceParams = (spec: VerifySpec): ReadonlyArray<unknown> => (spec.source.includes("$1") ? [ISO_NAMES] : [])

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const connect = async (database: "source" | "warehouse", url: string, statementTimeoutMs: number, name: string) => {
  const client = await connectClient(database, url, { application_name: name, statement_timeout: statementTimeoutMs })
  // Belt and braces: even a statement outside the explicit transactions cannot write.
  await client.query("SET default_transaction_read_only = on")
  return client
}

/** Runs `body` in a REPEATABLE READ, READ ONLY transaction: one snapshot for all its reads. */
const snapshot = async <A>(client: pg.Client, body: () => Promise<A>): Promise<A> => {
  await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ")
  try {
    await client.query("SET TRANSACTION READ ONLY")
    return await body()
  } finally {
    await client.query("ROLLBACK")
  }
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

export const verify = async (options: VerifyOptions): Promise<VerifyReport> => {
  const width = options.bucketWidth ?? 1024
  const timeout = options.statementTimeoutMs ?? 60_000
  const waitMs = options.waitMs ?? 60_000
  const maxRounds = Math.max(2, options.maxRounds ?? 4)
  const say = options.onProgress ?? (() => {})
  const schemas = { schema: options.schema, pipelineSchema: options.pipelineSchema }
  const specs = options.tables && options.tables.length > 0 ? VERIFY_SPECS.filter((s) => options.tables!.includes(s.table)) : VERIFY_SPECS
  const unknown = (options.tables ?? []).filter((t) => !VERIFY_SPECS.some((s) => s.table === t))
  if (unknown.length > 0) throw new Error(`unknown table(s) ${unknown.join(", ")}; choose from ${VERIFY_SPECS.map((s) => s.table).join(", ")}`)

  const source = await connect("source", options.sourceUrl, timeout, "totes-verify")
  const warehouse = await connect("warehouse", options.warehouseUrl, timeout, "totes-verify").catch(async (error) => {
    await source.end().catch(() => {})
    throw error
  })
  try {
    let freshness = await readFreshness(warehouse, schemas)
    /** Waits until the warehouse is consistent through `lsn`. */
    const reach = async (lsn: string) => {
      const deadline = Date.now() + waitMs
      for (;;) {
        freshness = await readFreshness(warehouse, schemas)
        if (freshness.consistentThroughLsn && compareLsn(freshness.consistentThroughLsn, lsn) >= 0) return
        if (Date.now() >= deadline) {
          throw new VerifyNotCaughtUpError(
            freshness.consistentThroughLsn === null
              ? `the warehouse has no consistent_through position (no heartbeat applied on every shard): verify needs the pipeline (reader and consumer) running`
              : `the warehouse is consistent through ${freshness.consistentThroughLsn} but the source is at ${lsn} (waited ${Math.round(waitMs / 1000)} s): ` +
                  `verify compares at a position both have reached, so the pipeline must be running and catching up`
          )
        }
        await sleep(200)
      }
    }
    const sourceLsn = async () => (await source.query("SELECT pg_current_wal_insert_lsn()::text AS lsn")).rows[0].lsn as string

    // Round 1: bucket checksums, then per-key rows of the buckets that differ.
    const results = new Map<string, { sourceRows: number; warehouseRows: number; buckets: number; differingBuckets: number }>()
    let suspects = new Map<string, Array<Suspect>>()
    let roundLsn = ""
    await snapshot(source, async () => {
      roundLsn = await sourceLsn()
      const sourceSums = new Map<string, Map<number, Bucket>>()
      for (const spec of specs) sourceSums.set(spec.table, await bucketSums(source, spec.source, width, sourceParams(spec)))
      say(`source snapshot at ${roundLsn}: checksums of ${specs.length} tables`)
      await reach(roundLsn)
      await snapshot(warehouse, async () => {
        for (const spec of specs) {
          const ours = sourceSums.get(spec.table)!
          const theirs = await bucketSums(warehouse, spec.warehouse(schemas), width, [])
          const all = new Set([...ours.keys(), ...theirs.keys()])
          const differing = [...all].filter((b) => ours.get(b)?.h !== theirs.get(b)?.h || ours.get(b)?.n !== theirs.get(b)?.n)
          results.set(spec.table, {
            sourceRows: [...ours.values()].reduce((n, b) => n + b.n, 0),
            warehouseRows: [...theirs.values()].reduce((n, b) => n + b.n, 0),
            buckets: all.size,
            differingBuckets: differing.length
          })
          if (differing.length === 0) continue
          const sourceRows = await keyRows(source, spec.source, sourceParams(spec), { buckets: differing, width }, false)
          const warehouseRows = await keyRows(warehouse, spec.warehouse(schemas), [], { buckets: differing, width }, true)
          suspects.set(spec.table, await compareKeys(warehouse, spec, schemas, sourceRows, warehouseRows, roundLsn))
        }
      })
    })
    say(`round 1 at ${roundLsn}: ${[...suspects.values()].reduce((n, s) => n + s.length, 0)} suspect keys`)

    // Further rounds: only the suspect keys, in fresh snapshots.
    const confirmed = new Map<string, Array<Suspect>>()
    let rounds = 1
    while ([...suspects.values()].some((s) => s.length > 0) && rounds < maxRounds) {
      rounds++
      const next = new Map<string, Array<Suspect>>()
      await snapshot(source, async () => {
        roundLsn = await sourceLsn()
        const sourceRows = new Map<string, Map<number, KeyRow>>()
        for (const spec of specs) {
          const keys = (suspects.get(spec.table) ?? []).map((s) => s.key)
          if (keys.length > 0) sourceRows.set(spec.table, await keyRows(source, spec.source, sourceParams(spec), { keys }, false))
        }
        await reach(roundLsn)
        await snapshot(warehouse, async () => {
          for (const spec of specs) {
            const previous = suspects.get(spec.table) ?? []
            if (previous.length === 0) continue
            const keys = previous.map((s) => s.key)
            const warehouseRows = await keyRows(warehouse, spec.warehouse(schemas), [], { keys }, true)
            const now = await compareKeys(warehouse, spec, schemas, sourceRows.get(spec.table)!, warehouseRows, roundLsn, keys)
            const stillSuspect: Array<Suspect> = []
            for (const suspect of now) {
              const before = previous.find((p) => p.key === suspect.key)!
              if (suspect.settled && before.settled && suspect.lsn === before.lsn) {
                confirmed.set(spec.table, [...(confirmed.get(spec.table) ?? []), suspect])
              } else stillSuspect.push(suspect)
            }
            next.set(spec.table, stillSuspect)
          }
        })
      })
      suspects = next
      say(`round ${rounds} at ${roundLsn}: ${[...confirmed.values()].reduce((n, s) => n + s.length, 0)} confirmed, ${[...suspects.values()].reduce((n, s) => n + s.length, 0)} still suspect`)
    }

    const detailLimit = options.detailLimit ?? 20
    const tables: Array<TableVerification> = specs.map((spec) => {
      const found = (confirmed.get(spec.table) ?? []).sort((a, b) => a.key - b.key)
      return {
        table: spec.table,
        ...results.get(spec.table)!,
        differences: found.map((d, i) => ({
          key: d.key,
          kind: d.kind,
          ...(d.kind === "different" && i < detailLimit ? { columns: columnDifferences(spec, d.source!, d.warehouse!) } : {})
        })),
        unsettled: (suspects.get(spec.table) ?? []).map((s) => s.key).sort((a, b) => a - b)
      }
    })
    return {
      ok: tables.every((t) => t.differences.length === 0),
      sourceLsn: roundLsn,
      consistentThroughLsn: freshness.consistentThroughLsn,
      consistentThroughAt: freshness.consistentThroughAt?.toISOString() ?? null,
      rounds,
      tables
    }
  } finally {
    await source.end().catch(() => {})
    await warehouse.end().catch(() => {})
  }
}

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
