/**
 * Online repair of tables (`totes resnapshot --tables design,sales_order`) on the real stack, under
 * a concurrent writing workload, after the two things it is for:
 *   - a lost slot: the slot is dropped while the reader is down, designs are deleted in the gap,
 *     and the reader starts over with --resnapshot; the warehouse still holds the deleted designs;
 *   - a warehouse damaged by hand: dimension rows changed and deleted, mirror rows deleted, fact
 *     rows changed and deleted, a sales order that the source never had.
 * Afterwards the warehouse equals the independent derivation of the source, no other table was
 * re-read (no 'r' event of another table on the stream after the request), the fact history has
 * no duplicate, and the CLI and `totes status` showed the progress.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { Effect, Option } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ChangeEvent, RepairedRange, StreamRecord } from "../../contracts/change-event.ts"
import { compareLsn } from "../../contracts/lsn.ts"
import { repairRequestKey, type RepairRequest } from "../../contracts/repair.ts"
import { readerFromEnv } from "../../services/reader/main.ts"
import type { Reader } from "../../services/reader/reader.ts"
import { currentWalLsn, dropSlot } from "../../services/reader/source-admin.ts"
import { CheckpointStore } from "../../services/shared/checkpoint-store.ts"
import { simulate } from "../../tools/source/simulate.ts"
import { deriveStarSchema, readStarSchema, STAR_COLUMNS, type StarState } from "../fixtures/derive-star-schema.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { runTotes, waitFor } from "../support/processes.ts"
import { startPipeline, type RunningPipeline } from "../support/pipeline.ts"
import { connect, februaryEnv } from "../support/stack.ts"

const REPAIRED = ["design", "sales_order"]
const GHOST = 900_001

/** The tables of a star state that differ from another's (names only). */
const differing = (a: StarState, b: StarState) =>
  [...Object.keys(a.dims).filter((t) => JSON.stringify(a.dims[t]) !== JSON.stringify(b.dims[t])), ...Object.keys(a.facts).filter((t) => JSON.stringify(a.facts[t]) !== JSON.stringify(b.facts[t]))].sort()

describe("totes resnapshot: online repair of chosen tables", () => {
  let env: Record<string, string>
  let pipeline: RunningPipeline
  let source: pg.Client
  let warehouse: pg.Client
  const readers: Array<Reader> = []
  const messages: Array<string> = []

  const startReader = async (options: { resnapshot?: boolean } = {}) => {
    const reader = readerFromEnv(env, {
      heartbeatIntervalMs: 200,
      statusIntervalMs: 1_000,
      repairPollMs: 250,
      onProgress: (p) => (p.phase === "info" || p.phase === "warning") && messages.push(p.message),
      ...options
    })
    readers.push(reader)
    reader.start().catch(() => {})
    await waitFor(() => {
      if (reader.error) throw reader.error
      return reader.stats.durableLsn !== null
    }, 120_000, "the reader streaming")
    return reader
  }

  beforeAll(async () => {
    ;({ env, source } = await februaryEnv({ shards: 2 }))
    pipeline = await startPipeline(env, { reader: false })
    warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
  }, 120_000)

  afterAll(async () => {
    for (const reader of readers) await reader.stop()
    await pipeline?.stop()
    await source?.end()
    await warehouse?.end()
  })

  it("repairs a lost slot's gap and a warehouse damaged by hand under a writing workload, re-reading nothing else", async () => {
    const first = await startReader()
    await pipeline.caughtUp(120_000)

    // The slot is lost while the reader is down; designs are deleted and changed in the gap.
    await first.stop()
    await dropSlot(source, env.TOTES_SLOT!)
    const gone = await source.query(
      `DELETE FROM design WHERE design_id IN (
         SELECT design_id FROM design d WHERE NOT EXISTS (SELECT 1 FROM sales_order s WHERE s.design_id = d.design_id) ORDER BY design_id LIMIT 3)
       RETURNING design_id`
    )
    expect(gone.rowCount).toBe(3)
    await source.query("UPDATE design SET design_name = design_name || ' (gap)' WHERE design_id IN (SELECT design_id FROM design ORDER BY design_id DESC LIMIT 2)")
    const second = await startReader({ resnapshot: true })
    await pipeline.caughtUp(120_000)
    expect(differing(await deriveStarSchema(env.SOURCE_DATABASE_URL!), await readStarSchema(env.WAREHOUSE_DATABASE_URL!))).toEqual(["dim_design"])

    // Damage by hand.
    const designs = (await source.query("SELECT design_id FROM design ORDER BY design_id LIMIT 9")).rows.map((r) => r.design_id as number)
    await warehouse.query("UPDATE dim_design SET design_name = 'damaged' WHERE design_id = ANY($1)", [designs.slice(0, 3)])
    await warehouse.query("DELETE FROM dim_design WHERE design_id = ANY($1)", [designs.slice(3, 6)])
    await warehouse.query("DELETE FROM totes.mirror WHERE table_name = 'design' AND key_id = ANY($1)", [designs.slice(4, 9)])
    const orders = (await source.query("SELECT sales_order_id FROM sales_order ORDER BY sales_order_id LIMIT 10 OFFSET 100")).rows.map((r) => r.sales_order_id as number)
    await warehouse.query("DELETE FROM fact_sales_order WHERE sales_order_id = ANY($1)", [orders.slice(0, 5)])
    await warehouse.query("UPDATE fact_sales_order SET units_sold = units_sold + 1000 WHERE sales_order_id = ANY($1)", [orders.slice(5)])
    await warehouse.query(
      `INSERT INTO totes.mirror (table_name, key_id, image, source_lsn, source_seq, deleted, event_id)
       SELECT table_name, $2::bigint, jsonb_set(image, '{sales_order_id}', to_jsonb($2::int)), source_lsn, source_seq, false, 'ghost'
       FROM totes.mirror WHERE table_name = 'sales_order' AND key_id = $1`,
      [orders[9], GHOST]
    )
    const columns = STAR_COLUMNS.fact_sales_order!.filter((c) => c !== "sales_order_id")
    await warehouse.query(
      `INSERT INTO fact_sales_order (sales_order_id, ${columns.join(", ")}, source_seq, change_op, event_id, source_lsn, source_committed_at)
       SELECT $2::int, ${columns.join(", ")}, source_seq, 'c', 'ghost', source_lsn, source_committed_at FROM fact_sales_order_current WHERE sales_order_id = $1`,
      [orders[9], GHOST]
    )
    expect(differing(await deriveStarSchema(env.SOURCE_DATABASE_URL!), await readStarSchema(env.WAREHOUSE_DATABASE_URL!))).toEqual(["dim_design", "fact_sales_order"])

    // A workload that writes the repaired tables (and others) while the repair runs.
    const workloadClient = await connect(env.SOURCE_DATABASE_URL!)
    const stopWorkload = new AbortController()
    let committed = 0
    const workload = simulate(workloadClient, {
      seed: 12,
      rate: 40,
      mix: { sale: 4, design: 3, design_and_sale: 1, edit_design: 4, edit_sales_order: 6, delete_order: 1, purchase: 2, update_address: 1 },
      signal: stopWorkload.signal,
      onCommit: () => committed++
    })
    await waitFor(() => committed >= 20, 30_000, () => `the workload under way (${committed} transactions committed)`)
    const requestedAt = await currentWalLsn(source)

    const run = await runTotes(["resnapshot", "--tables", REPAIRED.join(","), "--chunk", "200"], env, 240_000)
    stopWorkload.abort()
    const report = await workload
    await workloadClient.end()
    expect(run.output, run.output).toMatch(/^repair \S+ of design, sales_order done .*: published through \d+\/[0-9A-F]+$/m)
    expect(run.code, run.output).toBe(0)
    // Progress while it ran: rows, rate and ETA per table.
    expect(run.output).toMatch(/^sales_order: [\d,]+ of ~[\d,]+ rows \(\d+ chunks?, [\d,]+ superseded by concurrent changes\), [\d,]+ rows\/s, ETA [\d.]+ s$/m)
    expect(run.output).toMatch(/^ {2}design: done, [\d,]+ rows \(\d+ chunks, [\d,]+ superseded by concurrent changes\)/m)
    expect(report.transactions).toBeGreaterThan(20)

    const status = await runTotes(["status"], env)
    expect(status.code, status.output).toBe(0)
    expect(status.output).toMatch(/^repair {5}\S+ of design, sales_order done /m)

    await pipeline.caughtUp(120_000)
    // The repaired tables equal the source, and so does everything else.
    const expected = await deriveStarSchema(env.SOURCE_DATABASE_URL!)
    const actual = await readStarSchema(env.WAREHOUSE_DATABASE_URL!)
    for (const table of Object.keys(expected.dims)) expect(actual.dims[table], table).toEqual(expected.dims[table])
    for (const table of Object.keys(expected.facts)) expect(actual.facts[table], table).toEqual(expected.facts[table])
    const ghost = await warehouse.query("SELECT change_op, event_id FROM fact_sales_order WHERE sales_order_id = $1 ORDER BY source_lsn, source_seq", [GHOST])
    expect(ghost.rows.map((r) => r.change_op)).toEqual(["c", "d"])
    expect(ghost.rows[1].event_id).toMatch(new RegExp(`^\\d+/[0-9A-F]+:repair-range:sales_order:\\d*\\.\\.:${GHOST}$`))
    const duplicates = await warehouse.query("SELECT count(*)::int AS n FROM (SELECT event_id FROM fact_sales_order GROUP BY 1 HAVING count(*) > 1) d")
    expect(duplicates.rows[0].n).toBe(0)

    // The stream: after the request, 'r' events of the repaired tables only, each row of a chunk either published or superseded.
    const stream = (await readWholeStream(env)).map((r) => r.record)
    const afterRequest = stream.filter((r): r is ChangeEvent => r.kind === "change" && r.op === "r" && compareLsn(r.source.commitLsn, requestedAt) > 0)
    expect([...new Set(afterRequest.map((e) => e.source.table))].sort()).toEqual(REPAIRED)
    expect(afterRequest.every((e) => e.id === `${e.source.commitLsn}:repair:${e.source.table}:${Object.values(e.key!)[0]}` && e.source.index === -1)).toBe(true)
    const ranges = stream.filter((r: StreamRecord): r is RepairedRange => r.kind === "repair")
    const checkpoints = Effect.runSync(CheckpointStore.make(env))
    const request = Option.getOrThrow(await Effect.runPromise(checkpoints.get<RepairRequest>(repairRequestKey(env.TOTES_SLOT!)))).data
    for (const table of REPAIRED) {
      const own = [...new Map(ranges.filter((r) => r.source.table === table).map((r) => [r.id, r])).values()].sort((a, b) => (a.afterKey ?? -Infinity) - (b.afterKey ?? -Infinity))
      const progress = request.progress.find((p) => p.table === table)!
      // One range per chunk, and one above the largest key at the start (at the start marker, before every chunk).
      expect(own.length, table).toBe(progress.chunks + 1)
      expect(own.at(-1)!.afterKey).toBe(progress.upperKey)
      expect(own.at(-1)!.source.commitLsn).toBe(progress.startLsn)
      expect(own.slice(0, -1).every((r) => compareLsn(r.source.commitLsn, progress.startLsn!) > 0)).toBe(true)
      // The ranges tile the key space: from the smallest key to beyond the largest.
      expect(own.map((r) => [r.afterKey, r.throughKey])).toEqual(own.map((r, i) => [i === 0 ? null : own[i - 1]!.throughKey, i === own.length - 1 ? null : r.throughKey]))
      const published = afterRequest.filter((e) => e.source.table === table)
      expect(new Set(published.map((e) => e.id)).size, table).toBe(progress.published)
      expect(progress.published + progress.superseded, table).toBe(progress.rows)
    }
    expect(second.error).toBeUndefined()
  }, 420_000)

  it("a hot table: rows changed while their chunk is read are superseded by the stream, never overwritten by the chunk", async () => {
    // Writers that keep changing designs (most of them among the first chunks), inserting and deleting some.
    const stop = new AbortController()
    const writesBy = [0, 0, 0]
    const hot = async (seed: number) => {
      const client = await connect(env.SOURCE_DATABASE_URL!)
      let random = seed
      const next = () => ((random = (random * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648)
      const ids = (await client.query("SELECT design_id FROM design ORDER BY design_id")).rows.map((r) => r.design_id as number)
      const mine: Array<number> = []
      let writes = 0
      while (!stop.signal.aborted) {
        const dice = next()
        if (dice < 0.1) {
          mine.push((await client.query("INSERT INTO design (design_name, file_location, file_name, last_updated) VALUES ('hot', '/hot', 'h.json', now()) RETURNING design_id")).rows[0].design_id)
        } else if (dice < 0.15 && mine.length > 0) {
          await client.query("DELETE FROM design WHERE design_id = $1", [mine.shift()])
        } else {
          const id = dice < 0.8 ? ids[Math.floor(next() * 60)]! : ids[Math.floor(next() * ids.length)]!
          await client.query("UPDATE design SET file_name = $2, last_updated = now() WHERE design_id = $1", [id, `hot-${seed}-${writes}.json`])
        }
        writes++
        writesBy[seed - 1] = writes
      }
      await client.end()
      return writes
    }
    const writers = [hot(1), hot(2), hot(3)]
    await waitFor(() => writesBy.every((n) => n >= 20), 30_000, () => `every hot writer under way (writes: ${writesBy.join(", ")})`)
    const run = await runTotes(["resnapshot", "--tables", "design", "--chunk", "20", "--json"], env, 240_000)
    stop.abort()
    const writes = (await Promise.all(writers)).reduce((a, b) => a + b, 0)
    expect(run.code, run.output).toBe(0)
    const request = JSON.parse(run.output.slice(run.output.indexOf("{"))) as RepairRequest
    const design = request.progress[0]!
    expect(design).toMatchObject({ table: "design", state: "done" })
    expect(writes).toBeGreaterThan(100)
    expect(design.superseded, JSON.stringify(design)).toBeGreaterThan(0)
    expect(design.published + design.superseded).toBe(design.rows)

    await pipeline.caughtUp(120_000)
    const expected = await deriveStarSchema(env.SOURCE_DATABASE_URL!)
    const actual = await readStarSchema(env.WAREHOUSE_DATABASE_URL!)
    expect(actual.dims.dim_design).toEqual(expected.dims.dim_design)
    expect(differing(expected, actual)).toEqual([])
  }, 300_000)

  it("--no-wait, one repair at a time, progress in totes status, --cancel", async () => {
    const requested = await runTotes(["resnapshot", "--tables", "sales_order", "--chunk", "10", "--no-wait"], env)
    expect(requested.code, requested.output).toBe(0)
    expect(requested.output).toMatch(/^requested repair \S+ of sales_order \(chunks of 10 rows\): the reader picks it up within a second; totes status shows its progress$/m)

    const second = await runTotes(["resnapshot", "--tables", "design"], env)
    expect(second.code, second.output).toBe(1)
    expect(second.output).toMatch(/^totes resnapshot: a repair is in progress: repair \S+ of sales_order (requested|running) .*; wait for it \(totes status shows its progress\) or stop it with totes resnapshot --cancel$/m)

    const checkpoints = Effect.runSync(CheckpointStore.make(env))
    const key = repairRequestKey(env.TOTES_SLOT!)
    const current = async () => Option.getOrThrow(await Effect.runPromise(checkpoints.get<RepairRequest>(key))).data
    await waitFor(async () => (await current()).progress[0]!.chunks >= 3, 60_000, "three chunks repaired")
    const status = await runTotes(["status"], env)
    expect(status.output).toMatch(/^repair {5}\S+ of sales_order running since \S+, published through \d+\/[0-9A-F]+$/m)
    expect(status.output).toMatch(/^ {2}sales_order: [\d,]+ of ~[\d,]+ rows \(\d+ chunks, \d+ superseded by concurrent changes\), [\d,]+ rows\/s, ETA [\d.]+ s$/m)

    const cancelled = await runTotes(["resnapshot", "--cancel"], env)
    expect(cancelled.code, cancelled.output).toBe(0)
    expect(cancelled.output).toMatch(/^cancelled repair \S+ of sales_order: the reader stops it after the chunk in hand/m)
    await waitFor(() => messages.some((m) => /^repair \S+ was replaced or cancelled: stopped working on it$/.test(m)), 30_000, "the reader stopping the repair")
    const after = await current()
    expect(after.state).toBe("cancelled")
    const chunks = after.progress[0]!.chunks
    // A negative check needs a window: a second is four of the reader's repair polls (repairPollMs 250).
    await sleep(1_000)
    expect((await current()).progress[0]!.chunks).toBe(chunks) // nothing written after the cancel

    const again = await runTotes(["resnapshot", "--cancel"], env)
    expect(again.output).toMatch(/^no repair in progress \(the last one: repair \S+ of sales_order cancelled /m)
    expect((await runTotes(["status"], env)).output).toMatch(/^repair {5}\S+ of sales_order cancelled /m)

    // Half a repair changes nothing that is right.
    await pipeline.caughtUp(120_000)
    expect(differing(await deriveStarSchema(env.SOURCE_DATABASE_URL!), await readStarSchema(env.WAREHOUSE_DATABASE_URL!))).toEqual([])
  }, 300_000)

  it("waits for a transaction that was open when the table's repair began, says so, and goes on when it ends", async () => {
    const held = await connect(env.SOURCE_DATABASE_URL!)
    await held.query("BEGIN")
    await held.query("UPDATE design SET design_name = 'held back' WHERE design_id = (SELECT min(design_id) FROM design)")
    const xid = (await held.query("SELECT pg_current_xact_id()::text AS xid")).rows[0].xid as string

    const requested = await runTotes(["resnapshot", "--tables", "design", "--no-wait"], env)
    expect(requested.code, requested.output).toBe(0)
    const checkpoints = Effect.runSync(CheckpointStore.make(env))
    const current = async () => Option.getOrThrow(await Effect.runPromise(checkpoints.get<RepairRequest>(repairRequestKey(env.TOTES_SLOT!)))).data
    await waitFor(async () => (await current()).progress[0]!.waitingFor !== undefined, 30_000, "the repair reporting what it waits for")
    expect((await current()).progress[0]!.waitingFor).toBe(`transaction(s) ${xid}, open since the table's repair began`)
    const status = await runTotes(["status"], env)
    expect(status.output).toMatch(new RegExp(`^ {2}design: waiting for transaction\\(s\\) ${xid}, open since the table's repair began$`, "m"))
    expect((await current()).progress[0]!.chunks).toBe(0)

    await held.query("COMMIT")
    await held.end()
    await waitFor(async () => (await current()).state === "done", 60_000, "the repair done")
    const done = (await current()).progress[0]!
    expect(done.state).toBe("done")
    expect(done.waitingFor).toBeUndefined()
    await pipeline.caughtUp(120_000)
    const expected = await deriveStarSchema(env.SOURCE_DATABASE_URL!)
    expect(expected.dims.dim_design!.some((row) => row.design_name === "held back")).toBe(true)
    expect(differing(expected, await readStarSchema(env.WAREHOUSE_DATABASE_URL!))).toEqual([])
  }, 300_000)
})
