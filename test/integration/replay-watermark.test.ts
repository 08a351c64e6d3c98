/**
 * The lake watermark on the real local stack (February snapshot, reader → Kinesis → consumer and
 * archiver, 3 shards):
 * - a replay while a workload keeps writing rebuilds up to the lake watermark it reports, and the
 *   rebuilt fact history equals the live warehouse's fact history before that position;
 * - `--to` past the watermark is refused naming the watermark, and with a wait it waits for the
 *   lake (here: an archiver stopped, then restarted) and then equals the live warehouse;
 * - `totes verify` reconciles a replayed warehouse (and says what a stale one misses);
 * - `totes status` shows the lake watermark beside consistent_through.
 */
import type pg from "pg"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { compareLsn, lsnFromBigInt, lsnToBigInt } from "../../contracts/lsn.ts"
import { makeLakeWatermarkReader } from "../../services/lake/watermark-read.ts"
import { replay, type ReplayOptions } from "../../services/replay/replay.ts"
import { verify, VerifyNotCaughtUpError } from "../../services/replay/verify.ts"
import { CheckpointStore } from "../../services/shared/checkpoint-store.ts"
import { DEFAULT_MIX, simulate } from "../../tools/source/simulate.ts"
import { STAR_COLUMNS } from "../fixtures/derive-star-schema.ts"
import { dumpOf, lakeOf, startArchiver, type RunningArchiver } from "../support/lake.ts"
import { startPipeline, type RunningPipeline } from "../support/pipeline.ts"
import { runTotes, waitFor } from "../support/processes.ts"
import { connect, februaryEnv, freshDatabase } from "../support/stack.ts"

/** Every fact-history row (one per change) committed before `below`, or all of them, as text. */
const factHistory = async (url: string, below?: string): Promise<Record<string, Array<string>>> => {
  const client = await connect(url)
  try {
    const out: Record<string, Array<string>> = {}
    for (const [table, columns] of Object.entries(STAR_COLUMNS).filter(([name]) => name.startsWith("fact_"))) {
      const { rows } = await client.query(
        `SELECT q::text AS row FROM (
           SELECT event_id, ${columns.join(", ")}, source_seq, change_op, source_lsn, source_committed_at FROM ${table}
           ${below ? "WHERE source_lsn < $1::pg_lsn" : ""}
         ) q ORDER BY 1`,
        below ? [below] : []
      )
      out[table] = rows.map((r) => r.row as string)
    }
    return out
  } finally {
    await client.end()
  }
}

/** How many fact-history rows were committed at or after `from`. */
const factRowsFrom = async (url: string, from: string): Promise<number> => {
  const client = await connect(url)
  try {
    const tables = Object.keys(STAR_COLUMNS).filter((name) => name.startsWith("fact_"))
    const { rows } = await client.query(`SELECT ${tables.map((t) => `(SELECT count(*) FROM ${t} WHERE source_lsn >= $1::pg_lsn)`).join(" + ")} AS n`, [from])
    return Number(rows[0].n)
  } finally {
    await client.end()
  }
}

const freshness = async (url: string) => {
  const client = await connect(url)
  try {
    return (await client.query("SELECT consistent_through_lsn::text AS lsn, consistent_through_at AS at, consistent_through_source AS source FROM pipeline_freshness")).rows[0] as {
      lsn: string | null
      at: Date | null
      source: string | null
    }
  } finally {
    await client.end()
  }
}

describe("replay against the lake watermark, with the pipeline running", { timeout: 600_000 }, () => {
  let env: Record<string, string>
  let pipeline: RunningPipeline
  let archiver: RunningArchiver
  let source: pg.Client
  /** A second connection for positions, while the workload uses `source`. */
  let positions: pg.Client
  let underLoad: string
  let underLoadWatermark: string
  const options = (targetUrl: string, name: string, more: Partial<ReplayOptions> = {}): ReplayOptions => ({
    lake: lakeOf(env),
    targetUrl,
    checkpoints: Effect.runSync(CheckpointStore.make(env)),
    name,
    batchSize: 2_000,
    ...more
  })
  const lakeWatermark = async () => (await Effect.runPromise(makeLakeWatermarkReader(lakeOf(env)).read())).watermark
  const sourceLsn = async () => (await positions.query("SELECT pg_current_wal_lsn()::text AS lsn")).rows[0].lsn as string

  beforeAll(async () => {
    ;({ env, source } = await februaryEnv({ shards: 3 }))
    positions = await connect(env.SOURCE_DATABASE_URL!)
    pipeline = await startPipeline(env)
    archiver = startArchiver(env, { flushMs: 500 })
    await waitFor(async () => (await lakeWatermark()) !== null, 120_000, "a first lake watermark")
  }, 300_000)

  afterAll(async () => {
    await archiver?.stop()
    await pipeline?.stop()
    await source?.end()
    await positions?.end()
  })

  it("rebuilds up to the lake watermark while the workload writes: equal to the live fact history before it", async () => {
    const controller = new AbortController()
    const workload = simulate(source, { seed: 61, rate: 15, durationMs: 300_000, mix: DEFAULT_MIX, signal: controller.signal })
    try {
      // The workload is under way and the lake has archived some of it.
      const started = await sourceLsn()
      await waitFor(async () => {
        const w = await lakeWatermark()
        return w !== null && compareLsn(w.lsn, started) > 0
      }, 60_000, "the lake watermark to pass the workload's start")
      underLoad = await freshDatabase("wmload")
      const report = await Effect.runPromise(replay(options(underLoad, "under-load")))
      expect(report.lakeWatermark).not.toBeNull()
      underLoadWatermark = report.lakeWatermark!.lsn
      expect(compareLsn(underLoadWatermark, started)).toBeGreaterThan(0)
      expect(report.upTo).toEqual({ kind: "watermark", ...report.lakeWatermark })
      expect(report.consistentThrough!.lsn).toBe(underLoadWatermark)
      expect(Date.parse(report.consistentThrough!.committedAt!)).toBe(Date.parse(report.lakeWatermark!.committedAt))
      expect(report.events).toBeGreaterThan(5_000)
      // Keep writing past the replay, until the live history goes on beyond the watermark.
      await waitFor(async () => (await factRowsFrom(env.WAREHOUSE_DATABASE_URL!, underLoadWatermark)) > 0, 60_000, `the live warehouse holding fact changes committed at or after ${underLoadWatermark}`)
    } finally {
      controller.abort()
      await workload
    }
    await pipeline.caughtUp(180_000)

    const live = await factHistory(env.WAREHOUSE_DATABASE_URL!)
    const liveBefore = await factHistory(env.WAREHOUSE_DATABASE_URL!, underLoadWatermark)
    const rebuilt = await factHistory(underLoad)
    const total = (h: Record<string, Array<string>>) => Object.values(h).reduce((n, rows) => n + rows.length, 0)
    // The workload went on past the watermark, and none of that is in the rebuilt warehouse.
    expect(total(live)).toBeGreaterThan(total(liveBefore))
    for (const table of Object.keys(live)) {
      expect(rebuilt[table]!.length, `${table} rows`).toBe(liveBefore[table]!.length)
      expect(rebuilt[table], table).toEqual(liveBefore[table])
    }
    expect(await freshness(underLoad)).toMatchObject({ lsn: underLoadWatermark, source: "replay" })
  })

  it("--to past the lake watermark is refused naming it; with a wait it waits for the lake, then equals the live warehouse", async () => {
    // The lake stops growing: its watermark stays before everything committed from now on.
    await archiver.stop()
    await simulate(source, { seed: 62, rate: Infinity, maxTransactions: 60, mix: DEFAULT_MIX })
    await pipeline.caughtUp(120_000)
    const to = await sourceLsn()
    const stuck = (await lakeWatermark())!
    expect(compareLsn(stuck.lsn, to)).toBeLessThan(0)

    const refused = await runTotes(["replay", "--to", to, "--target", await freshDatabase("wmrefused"), "--name", "refused"], env, 120_000)
    expect(refused.code, refused.output).not.toBe(0)
    expect(refused.output).toContain(`--to ${to} is beyond the lake watermark ${stuck.lsn}`)
    expect(refused.output).toMatch(/--wait SECONDS/)

    const target = await freshDatabase("wmwait")
    let waiting!: () => void
    const waited = new Promise<void>((resolve) => (waiting = resolve))
    const replaying = Effect.runPromise(replay(options(target, "waits", { to: { kind: "lsn", lsn: to }, waitMs: 180_000, onWait: () => waiting() })))
    replaying.catch(() => {})
    await waited
    archiver = startArchiver(env, { flushMs: 500 })
    const report = await replaying
    expect(report.waitedMs).toBeGreaterThan(0)
    expect(compareLsn(report.lakeWatermark!.lsn, to)).toBeGreaterThan(0)
    expect(report.upTo).toEqual({ kind: "to", bound: to })
    // Consistent through just after the bound (every change committed at or before it is in).
    expect(report.consistentThrough!.lsn).toBe(lsnFromBigInt(lsnToBigInt(to) + 1n))

    const [rebuilt, live] = [await dumpOf(target), await dumpOf(env.WAREHOUSE_DATABASE_URL!)]
    expect(Object.keys(rebuilt).sort()).toEqual(Object.keys(live).sort())
    for (const table of Object.keys(live)) expect(rebuilt[table], table).toEqual(live[table])

    // `totes verify` reconciles it with the source: it is consistent through the source's position
    // because the lake holds no change after its own.
    const verified = await runTotes(["verify", "--wait", "120"], { ...env, WAREHOUSE_DATABASE_URL: target }, 300_000)
    expect(verified.code, verified.output).toBe(0)
    expect(verified.output).toMatch(/warehouse consistent through [0-9A-F]+\/[0-9A-F]+ \(.*, rebuilt by replay\)/)
    expect(verified.output).toMatch(/dim_staff +source +\d+ +warehouse +\d+ +ok/)
  })

  it("verify says what a replayed warehouse misses; after a catch-up replay it passes", async () => {
    const reader = makeLakeWatermarkReader(lakeOf(env))
    const check = () => Effect.runPromise(verify({ sourceUrl: env.SOURCE_DATABASE_URL!, warehouseUrl: underLoad, lakeWatermarks: reader, waitMs: 120_000, bucketWidth: 256 }))
    const stale = await check().catch((error: unknown) => error)
    expect(stale).toBeInstanceOf(VerifyNotCaughtUpError)
    expect((stale as Error).message).toMatch(new RegExp(`consistent through ${underLoadWatermark.replace("/", "\\/")} .*the lake holds \\d+ change\\(s\\) committed after it`))

    const caughtUp = await Effect.runPromise(replay(options(underLoad, "under-load-catch-up", { catchUp: true })))
    expect(compareLsn(caughtUp.consistentThrough!.lsn, underLoadWatermark)).toBeGreaterThan(0)
    const report = await check()
    expect(report.ok).toBe(true)
    expect(report.consistentThroughSource).toBe("replay")
    for (const t of report.tables) expect(t.sourceRows, t.table).toBe(t.warehouseRows)
  })

  it("totes status shows the lake watermark beside consistent_through", async () => {
    await pipeline.caughtUp(120_000)
    const text = await runTotes(["status"], env, 120_000)
    expect(text.code, text.output).toBe(0)
    const lines = text.output.split("\n")
    const consumer = lines.findIndex((l) => l.startsWith("consumer   consistent through "))
    expect(lines[consumer + 1]).toMatch(/^lake {7}complete through [0-9A-F]+\/[0-9A-F]+ \(\d{4}-.*\) · lag [\d,]+ B, [\d.]+ s · 3 shards$/)
    const json = await runTotes(["status", "--json"], env, 120_000)
    const status = JSON.parse(json.output.slice(json.output.indexOf("{\n"), json.output.lastIndexOf("}") + 1))
    expect(status.lake.shards).toHaveLength(3)
    expect(status.lake.shards.every((s: { counted: boolean }) => s.counted)).toBe(true)
    expect(compareLsn(status.lake.watermarkLsn, status.source.walLsn)).toBeLessThanOrEqual(0)
    expect(status.consumer.consistentThroughSource).toBe("stream")
  })
})
