/**
 * Compaction on the real local stack: the raw lake written by the archiver is compacted to Parquet,
 * and the files are read back with an independent reader (hyparquet, not the writer's library)
 * and compared with the raw events value by value. Re-running writes nothing; a later run only
 * takes the raw objects that arrived since.
 */
import { expandSnapshotChunks } from "../../services/lake/snapshot-chunks.ts"
import { gunzipSync } from "node:zlib"
import { Effect } from "effect"
import { parquetMetadata, parquetReadObjects, type SchemaElement } from "hyparquet"
import type pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { RAW_PREFIX } from "../../contracts/lake.ts"
import { PRIMARY_KEYS, type TotesysTable } from "../../contracts/totesys.ts"
import { compactLake } from "../../services/lake/compact.ts"
import { readManifests, type CompactionManifest } from "../../services/lake/manifest.ts"
import { initSourceSchema } from "../../tools/source/totesys-db.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { lakeOf, readRawLake, recordingS3, runLakeCli, startArchiver, waitLakeHolds, type RunningArchiver } from "../support/lake.ts"
import { runMiniWorkload, seedDimensions } from "../support/mini-workload.ts"
import { startPipeline, type RunningPipeline } from "../support/pipeline.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"

const gunzip = (input: Uint8Array) => new Uint8Array(gunzipSync(input))

interface ParquetRow {
  readonly table: string
  readonly date: string
  readonly row: Record<string, unknown>
  readonly schema: ReadonlyArray<SchemaElement>
}

const readCompacted = async (env: Record<string, string>, manifests: ReadonlyArray<CompactionManifest>): Promise<Array<ParquetRow>> => {
  const lake = lakeOf(env)
  const out: Array<ParquetRow> = []
  for (const output of manifests.flatMap((m) => m.outputs)) {
    const body = await Effect.runPromise(lake.get(output.key))
    const file = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer
    const schema = parquetMetadata(file).schema
    const rows = (await parquetReadObjects({ file, compressors: { GZIP: gunzip } })) as Array<Record<string, unknown>>
    expect(rows.length, output.key).toBe(output.rows)
    for (const row of rows) out.push({ table: output.table, date: output.date, row, schema })
  }
  return out
}

/** The raw JSON value as the typed Parquet column must hold it (independent of the writer's code). */
const expectColumn = (element: SchemaElement, parquet: unknown, raw: unknown, where: string) => {
  if (raw === null || raw === undefined) return expect(parquet, where).toBeNull()
  if (element.converted_type === "DECIMAL") {
    const [whole, fraction = ""] = String(raw).split(".")
    const unscaled = Number(`${whole}${fraction.padEnd(element.scale ?? 0, "0")}`)
    return expect(Math.round((parquet as number) * 10 ** (element.scale ?? 0)), where).toBe(unscaled)
  }
  if (element.converted_type === "TIMESTAMP_MILLIS") return expect((parquet as Date).getTime(), where).toBe(Date.parse(`${raw as string}Z`))
  return expect(parquet, where).toEqual(raw)
}

describe("compaction to Parquet", () => {
  let env: Record<string, string>
  let pipeline: RunningPipeline
  let archiver: RunningArchiver
  let source: pg.Client

  /** Runs a workload with the archiver on until the lake holds the whole stream, then stops it (so the lake stands still). */
  const archivedWorkload = async (seed: number, transactions: number) => {
    archiver = startArchiver(env, { flushMs: 300 })
    await runMiniWorkload(source, { seed, transactions })
    await pipeline.caughtUp(120_000)
    await waitLakeHolds(lakeOf(env), (await readWholeStream(env, { chunks: true })).map((r) => r.record.id), 120_000)
    await archiver.stop()
  }

  beforeAll(async () => {
    env = await isolatedPipelineEnv({ shards: 2 })
    source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    await seedDimensions(source)
    pipeline = await startPipeline(env)
    await archivedWorkload(51, 200)
  })

  afterAll(async () => {
    await archiver?.stop()
    await pipeline?.stop()
    await source?.end()
  })

  it("writes Parquet per table and day that an independent reader reads back as the raw events", async () => {
    const { client, puts } = recordingS3(env)
    const report = await Effect.runPromise(compactLake({ lake: lakeOf(env, client) }))
    expect(report.runs).toHaveLength(1)
    expect(puts.every((p) => p.ifNoneMatch === "*")).toBe(true)
    expect(new Set(puts.map((p) => p.key)).size).toBe(puts.length)

    const manifests = await Effect.runPromise(readManifests(lakeOf(env)))
    expect(manifests).toHaveLength(1)
    expect(puts.map((p) => p.key).sort()).toEqual([...manifests[0]!.outputs.map((o) => o.key), `parquet/_manifests/${manifests[0]!.run}.json`].sort())
    for (const output of manifests[0]!.outputs) expect(output.key).toMatch(new RegExp(`^parquet/${output.table}/date=${output.date}/[0-9a-f-]{36}\\.parquet$`))

    const raw = await readRawLake(lakeOf(env))
    const events = new Map<string, ChangeEvent>()
    // The initial snapshot's rows are in chunks: compaction writes them as the events they stand for.
    for (const record of (await Effect.runPromise(expandSnapshotChunks(lakeOf(env), raw.records))).records) if (record.kind === "change") events.set(record.id, record)
    expect(manifests[0]!.inputs.map((i) => i.key).sort()).toEqual([...raw.objects].sort())
    const tables = new Set([...events.values()].map((e) => e.source.table))
    expect(tables.size).toBeGreaterThanOrEqual(8)

    const rows = await readCompacted(env, manifests)
    expect(rows.length).toBe(events.size)
    const seen = new Set<string>()
    for (const { table, date, row, schema } of rows) {
      const id = row.event_id as string
      expect(seen.has(id), `${id} written twice`).toBe(false)
      seen.add(id)
      const event = events.get(id)!
      expect(event, id).toBeDefined()
      expect({ table, date }).toEqual({ table: event.source.table, date: event.source.committedAt.slice(0, 10) })
      expect({ op: row.op, lsn: row.commit_lsn, index: row.commit_index, snapshot: row.snapshot }).toEqual({
        op: event.op,
        lsn: event.source.commitLsn,
        index: event.source.index,
        snapshot: event.source.snapshot
      })
      expect((row.committed_at as Date).getTime(), id).toBe(Math.floor(Date.parse(event.source.committedAt)))
      // Every value fits its typed column; only a commit time without microseconds (the snapshot's)
      // is kept as text besides, so the exact event can be rebuilt.
      if (row.overrides !== null) expect(JSON.parse(row.overrides as string), id).toEqual({ $committedAt: event.source.committedAt })
      const image = event.op === "d" ? event.before : event.after
      const columns = schema.slice(1).filter((e) => !["event_id", "op", "commit_lsn", "commit_index", "committed_at", "snapshot"].includes(e.name) && !(e.name in METADATA))
      expect(columns.map((c) => c.name)).toContain(PRIMARY_KEYS[table as TotesysTable])
      for (const element of columns) expectColumn(element, row[element.name], image?.[element.name] ?? null, `${id} ${element.name}`)
    }
    // Types follow the source.
    const sales = rows.find((r) => r.table === "sales_order")!.schema
    const type = (name: string) => sales.find((e) => e.name === name)!
    expect(type("unit_price")).toMatchObject({ type: "INT64", converted_type: "DECIMAL", precision: 10, scale: 2 })
    expect(type("sales_order_id")).toMatchObject({ type: "INT32" })
    expect(type("units_sold")).toMatchObject({ type: "INT32" })
    expect(type("last_updated")).toMatchObject({ type: "INT64", converted_type: "TIMESTAMP_MILLIS" })
    expect(type("agreed_payment_date")).toMatchObject({ type: "BYTE_ARRAY", converted_type: "UTF8" })
  })

  it("the numeric commit_lsn_int column sorts the compacted events in commit order (PostgreSQL's own pg_lsn order)", async () => {
    const compacted = await readCompacted(env, await Effect.runPromise(readManifests(lakeOf(env))))
    expect(compacted[0]!.schema.find((e) => e.name === "commit_lsn_int")).toMatchObject({ type: "INT64", repetition_type: "REQUIRED" })
    const rows = compacted.map((r) => r.row)
    expect(rows.length).toBeGreaterThan(100)
    // As an analyst would: ORDER BY commit_lsn_int, commit_index (event_id only orders the snapshot's rows, which share a position).
    const byNumber = [...rows]
      .sort((a, b) => {
        const [x, y] = [a.commit_lsn_int as bigint, b.commit_lsn_int as bigint]
        if (x !== y) return x < y ? -1 : 1
        if (a.commit_index !== b.commit_index) return (a.commit_index as number) - (b.commit_index as number)
        return (a.event_id as string) < (b.event_id as string) ? -1 : 1
      })
      .map((r) => r.event_id as string)
    // Commit order as PostgreSQL itself orders the text positions (pg_lsn), independent of our LSN code.
    const { rows: ordered } = await source.query<{ event_id: string }>(
      `SELECT event_id FROM jsonb_to_recordset($1::jsonb) AS e(event_id text, commit_lsn text, commit_index int)
       ORDER BY commit_lsn::pg_lsn, commit_index, event_id COLLATE "C"`,
      [JSON.stringify(rows.map((r) => ({ event_id: r.event_id, commit_lsn: r.commit_lsn, commit_index: r.commit_index })))]
    )
    expect(byNumber).toEqual(ordered.map((r) => r.event_id))
    // The number is the text position's value.
    const { rows: values } = await source.query<{ n: string }>(`SELECT (($1::pg_lsn - '0/0'::pg_lsn))::text AS n`, [rows[0]!.commit_lsn])
    expect(String(rows[0]!.commit_lsn_int)).toBe(values[0]!.n)
  })

  it("re-running writes nothing; a later run takes only the raw objects that arrived since", async () => {
    const { client, puts } = recordingS3(env)
    const again = await Effect.runPromise(compactLake({ lake: lakeOf(env, client) }))
    expect(again.runs).toEqual([])
    expect(puts).toEqual([])

    const before = await Effect.runPromise(readManifests(lakeOf(env)))
    await archivedWorkload(52, 60)
    const later = await Effect.runPromise(compactLake({ lake: lakeOf(env, client) }))
    expect(later.runs).toHaveLength(1)
    const manifests = await Effect.runPromise(readManifests(lakeOf(env)))
    const fresh = manifests.find((m) => m.run === later.runs[0])!
    const earlier = new Set(before.flatMap((m) => m.inputs.map((i) => i.key)))
    expect(fresh.inputs.filter((i) => earlier.has(i.key))).toEqual([])
    expect(puts.every((p) => p.ifNoneMatch === "*")).toBe(true)

    // Every change event of the lake is in exactly one compacted row, every raw object compacted.
    const compacted = new Set(manifests.flatMap((m) => m.inputs.map((i) => i.key)))
    const lake = lakeOf(env)
    const changeIds = new Set<string>()
    for (const key of (await Effect.runPromise(lake.list(RAW_PREFIX))).map((o) => o.key)) {
      const lines = gunzipSync(await Effect.runPromise(lake.get(key))).toString("utf8").trimEnd().split("\n")
      // A snapshot chunk's rows are compacted as the events they stand for.
      const records = (await Effect.runPromise(expandSnapshotChunks(lake, lines.map((line) => JSON.parse(line))))).records
      const changes = records.filter((r) => r.kind === "change")
      expect(compacted.has(key), key).toBe(true)
      for (const change of changes) changeIds.add(change.id)
    }
    const ids = (await readCompacted(env, manifests)).map((r) => r.row.event_id as string)
    expect(ids.length).toBe(new Set(ids).size)
    expect(new Set(ids)).toEqual(changeIds)
  })

  it("the lake commands list, print and compact", async () => {
    const ls = await runLakeCli(["lake", "ls", "--prefix", "raw/"], env)
    expect(ls.code, ls.stderr).toBe(0)
    const keys = (await Effect.runPromise(lakeOf(env).list(RAW_PREFIX))).map((o) => o.key)
    expect(ls.stdout).toContain(keys[0]!)
    expect(ls.stdout).toMatch(new RegExp(`${keys.length} objects`))

    const cat = await runLakeCli(["lake", "cat", keys[0]!], env)
    expect(cat.code, cat.stderr).toBe(0)
    const body = gunzipSync(await Effect.runPromise(lakeOf(env).get(keys[0]!))).toString("utf8")
    expect(cat.stdout).toBe(body)

    const parquetKey = (await Effect.runPromise(readManifests(lakeOf(env))))[0]!.outputs[0]!.key
    const catParquet = await runLakeCli(["lake", "cat", parquetKey], env)
    expect(catParquet.code, catParquet.stderr).toBe(0)
    const printed = catParquet.stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as ChangeEvent)
    const raw = new Map((await Effect.runPromise(expandSnapshotChunks(lakeOf(env), (await readRawLake(lakeOf(env))).records))).records.map((r) => [r.id, r]))
    for (const event of printed) expect(event).toEqual(raw.get(event.id))

    const compact = await runLakeCli(["lake", "compact"], env)
    expect(compact.code, compact.stderr).toBe(0)
    expect(compact.stdout).toMatch(/nothing to compact \(\d+ raw objects already compacted\)/)
  })
})

const METADATA = {
  commit_lsn_int: 1,
  row_lsn: 1, xid: 1, source_db: 1, source_schema: 1, event_key: 1, event_before: 1, unchanged: 1, absent: 1, overrides: 1, claim_check: 1
}
