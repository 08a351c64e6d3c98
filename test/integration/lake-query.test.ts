/**
 * The lake queried locally, as a user does it: a workload through the live pipeline (reader →
 * Kinesis → archiver → lake, consumer → warehouse), then `totes lake compact`, `totes lake pull`
 * (from the local S3 server into a folder) and `totes lake query --named …` (DuckDB, the same SQL
 * as the Athena named queries). The answers are compared with what the pipeline's other half
 * computed independently: the warehouse's fact history (one row per committed change, built by
 * the consumer from the stream) and the raw records.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { CHANGES_PER_TABLE_PER_HOUR, SALES_ORDER_HISTORY, SALES_ORDERS_AT } from "../../services/lake/queries.ts"
import { initSourceSchema } from "../../tools/source/totesys-db.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { lakeOf, readRawLake, startArchiver, waitLakeHolds } from "../support/lake.ts"
import { runMiniWorkload, seedDimensions } from "../support/mini-workload.ts"
import { startPipeline, type RunningPipeline } from "../support/pipeline.ts"
import { runTotes } from "../support/processes.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"

/** `2024-02-26 08:00:02.000426` (DuckDB) or a Date → microseconds since the epoch (Dates carry milliseconds). */
const micros = (value: string | Date): bigint => {
  if (value instanceof Date) return BigInt(value.getTime()) * 1000n
  const [, whole, fraction = ""] = /^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z?$/.exec(value)!
  return BigInt(Date.parse(`${whole!.replace(" ", "T")}Z`)) * 1000n + BigInt(fraction.padEnd(6, "0"))
}

/** Compare rows by these columns in turn (as ORDER BY does). */
const byColumns = (order: ReadonlyArray<number>) => (a: ReadonlyArray<string>, b: ReadonlyArray<string>) => {
  for (const column of order) if (a[column] !== b[column]) return a[column]! < b[column]! ? -1 : 1
  return 0
}

const jsonLines = (output: string) =>
  output
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>)

describe("the lake queried locally with DuckDB", () => {
  let env: Record<string, string>
  let pipeline: RunningPipeline
  let source: pg.Client
  let warehouse: pg.Client
  let dir: string

  beforeAll(async () => {
    env = await isolatedPipelineEnv({ shards: 2 })
    source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    await seedDimensions(source)
    pipeline = await startPipeline(env)
    const archiver = startArchiver(env, { flushMs: 300 })
    await runMiniWorkload(source, { seed: 23, transactions: 160 })
    await pipeline.caughtUp(120_000)
    await waitLakeHolds(lakeOf(env), (await readWholeStream(env, { chunks: true })).map((r) => r.record.id), 120_000)
    await archiver.stop()
    warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
    dir = mkdtempSync(join(tmpdir(), "totes-lake-query-"))
  }, 240_000)

  afterAll(async () => {
    await pipeline?.stop()
    await source?.end()
    await warehouse?.end()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const totes = async (...args: Array<string>) => {
    const result = await runTotes(args, env, 120_000)
    expect(result.code, `totes ${args.join(" ")}\n${result.output}`).toBe(0)
    return result.output
  }
  const named = async (id: string, ...params: Array<string>) => jsonLines(await totes("lake", "query", "--dir", dir, "--json", "--named", id, ...params.flatMap((p) => ["--param", p])))

  it("pulls what is new from the local S3 server, then answers the example queries as the warehouse and the raw lake do", async () => {
    await totes("lake", "compact")
    const raw = await readRawLake(lakeOf(env))
    expect(await totes("lake", "pull", "--dir", dir)).toMatch(/^[1-9]\d* objects \(\d+ bytes\) downloaded to .*, 0 already there$/m)
    expect(await totes("lake", "pull", "--prefix", "raw/", "--dir", dir)).toContain(`${raw.objects.length} objects`)
    // Lake objects never change: a second pull fetches nothing.
    expect(await totes("lake", "pull", "--dir", dir)).toMatch(/^0 objects \(0 bytes\) downloaded to .*, [1-9]\d* already there$/m)

    // History of an order with several versions, against the consumer's fact history.
    const facts = (await warehouse.query<{ sales_order_id: number; versions: string }>(
      "SELECT sales_order_id, count(*) AS versions FROM fact_sales_order GROUP BY sales_order_id HAVING count(*) > 1 ORDER BY count(*) DESC, sales_order_id LIMIT 3"
    )).rows
    expect(facts.length).toBeGreaterThan(0)
    for (const { sales_order_id: id } of facts) {
      const expected = (await warehouse.query(
        "SELECT event_id, change_op, units_sold, unit_price::text AS unit_price, sales_staff_id, source_committed_at FROM fact_sales_order WHERE sales_order_id = $1 ORDER BY source_lsn, source_seq",
        [id]
      )).rows
      const actual = await named(SALES_ORDER_HISTORY.id, String(id))
      expect(actual.map((r) => [r.event_id, r.op]), `order ${id}`).toEqual(expected.map((r) => [r.event_id, r.change_op]))
      for (const [index, row] of actual.entries()) {
        const fact = expected[index]!
        expect(micros(row.committed_at as string) / 1000n).toBe(micros(fact.source_committed_at as Date) / 1000n)
        // A delete carries the key only (REPLICA IDENTITY DEFAULT); the fact row keeps the last values.
        if (row.op !== "d") expect([row.units_sold, row.unit_price, row.staff_id]).toEqual([fact.units_sold, fact.unit_price, fact.sales_staff_id])
      }
    }

    // Sales orders as they were at a moment in the middle of the workload, against the fact history.
    const moments = (await warehouse.query<{ at: string }>(
      "SELECT to_char(source_committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS at FROM fact_sales_order ORDER BY source_lsn OFFSET (SELECT count(*) / 2 FROM fact_sales_order) LIMIT 1"
    )).rows
    for (const moment of [moments[0]!.at, "2100-01-01 00:00:00"]) {
      const expected = (await warehouse.query(
        `SELECT sales_order_id, units_sold, unit_price::text AS unit_price, sales_staff_id FROM (
           SELECT DISTINCT ON (sales_order_id) * FROM fact_sales_order
           WHERE source_committed_at <= ($1::timestamp AT TIME ZONE 'UTC') + interval '999999 microseconds'
           ORDER BY sales_order_id, source_lsn DESC, source_seq DESC) AS latest
         WHERE change_op <> 'd' ORDER BY sales_order_id`,
        [moment]
      )).rows
      // Commit times in the lake have microseconds; the moment is whole seconds, so compare at its second.
      const actual = await named(SALES_ORDERS_AT.id, `${moment}.999999`)
      expect(actual.map((r) => [r.sales_order_id, r.units_sold, r.unit_price, r.staff_id]), moment).toEqual(expected.map((r) => [r.sales_order_id, r.units_sold, r.unit_price, r.sales_staff_id]))
    }
    const current = await warehouse.query("SELECT count(*)::int AS n FROM fact_sales_order_current")
    expect((await named(SALES_ORDERS_AT.id, "2100-01-01 00:00:00")).length).toBe(current.rows[0].n)

    // Changes per table, hour and operation, against the raw records (each event once).
    const groups = new Map<string, Set<string>>()
    for (const record of raw.records) {
      if (record.kind !== "change") continue
      const event = record as ChangeEvent
      const key = JSON.stringify([event.source.table, event.source.committedAt.slice(0, 13), event.op])
      groups.set(key, (groups.get(key) ?? new Set()).add(event.id))
    }
    const expected = [...groups.entries()].map(([key, ids]) => [...(JSON.parse(key) as Array<string>), String(ids.size)]).sort(byColumns([1, 0, 2]))
    const actual = await named(CHANGES_PER_TABLE_PER_HOUR.id)
    expect(actual.map((r) => [r.source_table, r.commit_hour, r.op, r.changes])).toEqual(expected)
  }, 240_000)
})
