/**
 * The real history, end to end: the February 2024 totesys snapshot is captured by the whole live
 * pipeline (reader with initial snapshot, consumer, archiver), then the source is turned into the
 * November 2024 snapshot with ordinary SQL transactions in the order the application committed
 * them (new designs, one transaction per order, the 07:55 payment job, in-place edits that leave
 * last_updated alone). The source must end equal to the November CSVs row by row; `totes status
 * --wait-caught-up` must exit 0; the warehouse must equal an independent derivation of the source,
 * with one fact history row per committed change and the in-place edits visible as versions.
 * The archiver runs beside the consumer: the lake must hold every change, `totes replay` must
 * rebuild an equal warehouse from it, and `totes verify` must find no difference.
 *
 * Phase timings and counts are printed at the end (docs/real-history.md records a run).
 * TOTES_HISTORY_TPS sets the pace of the source transactions (default 400/s; "max" = unpaced).
 */
import { Effect } from "effect"
import { expandSnapshotChunks } from "../../services/lake/snapshot-chunks.ts"
import type pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../contracts/change-event.ts"
import { TOTESYS_TABLES, type TotesysTable } from "../../contracts/totesys.ts"
import { checksumTotesys, type TotesysChecksum } from "../../tools/source/checksum.ts"
import { initSourceSchema, loadCsvSnapshot } from "../../tools/source/totesys-db.ts"
import { deriveStarSchema, readStarSchema, type Rows } from "../fixtures/derive-star-schema.ts"
import { applyHistory, planHistory, readTableTexts, readTotesysState, type ApplyReport, type HistoryPlan } from "../support/history-transform.ts"
import { dumpOf, lakeOf, readRawLake, startArchiver, type RunningArchiver } from "../support/lake.ts"
import { startPipeline, type RunningPipeline } from "../support/pipeline.ts"
import { runTotes, waitFor } from "../support/processes.ts"
import { connect, freshDatabase, isolatedPipelineEnv, SNAPSHOT_FEB, SNAPSHOT_NOV } from "../support/stack.ts"

const FACTS = [
  ["fact_sales_order", "sales_order", "sales_order_id"],
  ["fact_purchase_order", "purchase_order", "purchase_order_id"],
  ["fact_payment", "payment", "payment_id"]
] as const

/** Source column → fact column where the diagram renames it. */
const FACT_COLUMN: Record<string, string> = { staff_id: "sales_staff_id" }

const pace = process.env.TOTES_HISTORY_TPS === "max" ? Infinity : Number(process.env.TOTES_HISTORY_TPS ?? 400)

describe("real history: February 2024 → November 2024 through the live pipeline", () => {
  let env: Record<string, string>
  let pipeline: RunningPipeline | undefined
  let archiver: RunningArchiver | undefined
  let source: pg.Client
  let november: pg.Client
  let warehouse: pg.Client
  let plan: HistoryPlan
  let applied: ApplyReport
  let caughtUp: { code: number | null; output: string }
  const febRows: Record<string, number> = {}
  const novRows: Record<string, number> = {}
  const phases: Array<[string, number]> = []
  const history: Array<Record<string, string | number>> = []
  /** Seconds the warehouse is behind (null: no consistent position yet, i.e. still applying the snapshot). */
  const lagSamples: Array<number | null> = []
  let replayOutput = ""
  let verifyOutput = ""
  let pipelineStartedAt = 0
  let firstConsistentAt: number | undefined

  const lagSummary = () => {
    const known = lagSamples.filter((s): s is number => s !== null).sort((a, b) => a - b)
    const pending = lagSamples.length - known.length
    if (known.length === 0) return `no consistent position in ${lagSamples.length} samples`
    return `${lagSamples.length} samples, ${pending} before the first consistent position ` +
      `(${((firstConsistentAt! - pipelineStartedAt) / 1000).toFixed(1)} s after the reader started); then median ${known[Math.floor(known.length / 2)]!.toFixed(1)} s, ` +
      `max ${known.at(-1)!.toFixed(1)} s, last ${lagSamples.at(-1)?.toFixed(1) ?? "–"} s`
  }

  const timed = async <A>(phase: string, work: () => Promise<A>): Promise<A> => {
    const started = Date.now()
    try {
      return await work()
    } finally {
      phases.push([phase, Date.now() - started])
    }
  }

  beforeAll(async () => {
    env = await isolatedPipelineEnv({ shards: 2 })
    source = await connect(env.SOURCE_DATABASE_URL!)
    await timed("load February CSVs into the source", async () => {
      await initSourceSchema(source)
      for (const r of await loadCsvSnapshot(source, SNAPSHOT_FEB)) febRows[r.table] = r.rows
    })
    await timed("plan: load November CSVs (scratch db), diff", async () => {
      november = await connect(await freshDatabase("nov"))
      await initSourceSchema(november)
      for (const r of await loadCsvSnapshot(november, SNAPSHOT_NOV)) novRows[r.table] = r.rows
      plan = planHistory(await readTotesysState(source), await readTotesysState(november))
    })
    pipelineStartedAt = Date.now()
    pipeline = await timed("initial snapshot (reader start → snapshot published)", () => startPipeline(env))
    archiver = startArchiver(env, { flushMs: 1_000 })
    warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
    // The warehouse's lag behind the source while the history is committed and caught up (every 500 ms).
    const sampling = setInterval(() => {
      warehouse.query("SELECT extract(epoch FROM now() - consistent_through_at)::float8 AS s FROM pipeline_freshness")
        .then(({ rows }) => {
          const lag = (rows[0]?.s as number | null | undefined) ?? null
          lagSamples.push(lag)
          if (lag !== null) firstConsistentAt ??= Date.now()
        }, () => {})
    }, 500)
    try {
      applied = await timed(`transform: ${plan.steps.length} source transactions`, () =>
        applyHistory(source, plan, { transactionsPerSecond: pace, perRoundTrip: 20 }))
      caughtUp = await timed("catch-up: totes status --wait-caught-up (child process)", () =>
        runTotes(["status", "--wait-caught-up", "--timeout", "300"], env, 330_000))
    } finally {
      clearInterval(sampling)
    }
  }, 600_000)

  afterAll(async () => {
    await archiver?.stop()
    await pipeline?.stop()
    await source?.end()
    await november?.end()
    await warehouse?.end()
    const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`
    const lines = [
      "real history: phases",
      ...phases.map(([name, ms]) => `  ${name.padEnd(58)} ${seconds(ms).padStart(8)}`),
      `  warehouse lag (transform + catch-up): ${lagSummary()}; ` +
        `the CLI waited ${caughtUp?.output.match(/after ([\d.]+) s/)?.[1] ?? "?"} s`,
      `  pace: ${applied ? `${applied.transactions} transactions (${applied.statements} statements) in ${seconds(applied.elapsedMs)} = ${Math.round(applied.transactions / (applied.elapsedMs / 1000))}/s (target ${pace}/s)` : "–"}`,
      "rows per table (Feb → Nov) and changes applied (insert/update/delete)",
      ...TOTESYS_TABLES.map((t) => {
        const c = plan?.counts[t]
        return `  ${t.padEnd(15)} ${String(febRows[t] ?? "?").padStart(6)} → ${String(novRows[t] ?? "?").padStart(6)}   ${c ? `c ${c.insert}  u ${c.update}  d ${c.delete}` : ""}`
      }),
      `source transactions per kind: ${plan ? `${JSON.stringify(plan.transactions)}, moved later for a parent row: ${plan.shifted.join(", ") || "none"}` : "–"}`,
      "fact history rows per change_op",
      ...history.map((h) => `  ${JSON.stringify(h)}`),
      "totes replay:",
      replayOutput || "  –",
      "totes verify:",
      verifyOutput || "  –"
    ]
    console.log(lines.join("\n"))
  })

  it("turns the source into the November snapshot exactly (row by row, every table)", async () => {
    await timed("check: source = November CSVs", async () => {
      const [actual, expected] = await Promise.all([checksumTotesys(source), checksumTotesys(november)])
      const summary = (c: TotesysChecksum) => Object.fromEntries(TOTESYS_TABLES.map((t) => [t, `${c.tables[t].rows}:${c.tables[t].md5}`]))
      if (actual.checksum !== expected.checksum) {
        const [a, e] = await Promise.all([readTableTexts(source), readTableTexts(november)])
        for (const table of TOTESYS_TABLES) expect(a[table], table).toEqual(e[table])
      }
      expect(summary(actual)).toEqual(summary(expected))
      expect(actual.checksum).toBe(expected.checksum)
      // Sequences continue after the explicit ids.
      const { rows } = await source.query("SELECT last_value::int AS n FROM sales_order_sales_order_id_seq")
      expect(rows[0].n).toBe(novRows.sales_order)
    })
  })

  it("replays the real difference: inserts, the daily payment job and in-place edits", () => {
    const counts = (table: TotesysTable) => plan.counts[table]
    // 69 in-place edits of February rows + 2 of new rows (see below).
    expect(counts("sales_order")).toEqual({ insert: 4246, update: 71, delete: 0 })
    expect(counts("purchase_order")).toEqual({ insert: 1691, update: 60, delete: 0 })
    expect(counts("design")).toEqual({ insert: 149, update: 57, delete: 0 })
    expect(counts("transaction")).toEqual({ insert: 5937, update: 0, delete: 0 })
    // Every payment inserted unpaid; 3,597 of the new ones and 30 February ones paid since.
    expect(counts("payment")).toEqual({ insert: 5937, update: 3627, delete: 0 })
    for (const table of ["address", "counterparty", "currency", "department", "payment_type", "staff"] as const) {
      expect(counts(table), table).toEqual({ insert: 0, update: 0, delete: 0 })
    }
    // The README's in-place edits: changed February rows with the same last_updated.
    const editsPer = (table: string) => plan.edits.filter((e) => e.table === table && !e.inferred).length
    expect({ sales_order: editsPer("sales_order"), purchase_order: editsPer("purchase_order"), design: editsPer("design") })
      .toEqual({ sales_order: 69, purchase_order: 60, design: 57 })
    // Two new sales orders reference designs created months after them: inserted with the design of
    // the day, their design_id is edited in place once the design exists.
    expect(plan.edits.filter((e) => e.inferred).map((e) => `${e.table} ${e.key} ${Object.keys(e.columns).join()}`).sort())
      .toEqual(["sales_order 8096 design_id", "sales_order 8161 design_id"])
    expect(plan.transactions.order).toBe(5937)
    expect(plan.transactions.update + plan.transactions.insert + plan.transactions.delete).toBe(0)
    // Commit order is the order of the real timestamps; no order, design or payment batch had to move.
    expect(plan.shifted).toEqual([])
    for (let i = 1; i < plan.steps.length; i++) expect(plan.steps[i]!.at).toBeGreaterThanOrEqual(plan.steps[i - 1]!.at)
  })

  it("`totes status --wait-caught-up` exits 0", () => {
    expect(caughtUp.code, caughtUp.output).toBe(0)
    expect(caughtUp.output).toMatch(/caught up/)
  })

  it("dims equal the derivation of the November source; every fact's current view equals it", async () => {
    await timed("check: dims and current facts = derivation", async () => {
      const [expected, actual] = await Promise.all([deriveStarSchema(env.SOURCE_DATABASE_URL!), readStarSchema(env.WAREHOUSE_DATABASE_URL!)])
      for (const table of Object.keys(expected.dims)) expect(actual.dims[table], table).toEqual(expected.dims[table])
      for (const table of Object.keys(expected.facts)) {
        expect(actual.facts[table]!.length, table).toBe(novRows[FACTS.find(([f]) => f === table)![1]])
        expect(actual.facts[table], table).toEqual(expected.facts[table])
      }
      // Nothing skipped, no placeholder left waiting for its dimension row, no dimension deleted.
      expect((await warehouse.query("SELECT count(*)::int AS n FROM totes.skipped_event")).rows[0].n).toBe(0)
      for (const dim of Object.keys(expected.dims)) {
        const { rows } = await warehouse.query(`SELECT count(*) FILTER (WHERE source_lsn IS NULL)::int AS placeholders, count(*) FILTER (WHERE is_deleted)::int AS deleted FROM ${dim}`)
        expect(rows[0], dim).toEqual({ placeholders: 0, deleted: 0 })
      }
    })
  })

  it("fact history holds exactly one row per committed change", async () => {
    await timed("check: fact history counts", async () => {
      for (const [fact, table] of FACTS) {
        const { rows } = await warehouse.query(`SELECT change_op, count(*)::int AS n FROM ${fact} GROUP BY 1 ORDER BY 1`)
        const counts = Object.fromEntries(rows.map((r) => [r.change_op, r.n]))
        history.push({ fact, ...counts, total: rows.reduce((n, r) => n + r.n, 0) })
        const changes = plan.counts[table]
        expect({ table, r: counts.r ?? 0, c: counts.c ?? 0, u: counts.u ?? 0, d: counts.d ?? 0 }).toEqual({
          table,
          r: febRows[table],
          c: changes.insert,
          u: changes.update,
          d: changes.delete
        })
        const dup = await warehouse.query(`SELECT count(*)::int AS n FROM (SELECT event_id FROM ${fact} GROUP BY 1 HAVING count(*) > 1) d`)
        expect(dup.rows[0].n).toBe(0)
      }
      // The 07:55 job: every payment update turns the previous version's paid=false into true at 07:55.
      const { rows } = await warehouse.query(`
        SELECT count(*)::int AS updates,
               count(*) FILTER (WHERE paid AND NOT previous_paid AND to_char(last_updated_time, 'HH24:MI') = '07:55')::int AS job
        FROM (SELECT change_op, paid, last_updated_time, lag(paid) OVER (PARTITION BY payment_id ORDER BY source_lsn, source_seq) AS previous_paid
              FROM fact_payment) v
        WHERE change_op = 'u'`)
      expect(rows[0]).toEqual({ updates: 3627, job: 3627 })
    })
  })

  it("shows every in-place edit as a new version with the same last_updated", async () => {
    await timed("check: in-place edits in fact history", async () => {
      const edits = plan.edits.filter((e) => e.table === "sales_order" || e.table === "purchase_order")
      expect(edits.length).toBe(69 + 60 + 2)
      for (const edit of edits) {
        const [fact, , key] = FACTS.find(([, t]) => t === edit.table)!
        const columns = Object.keys(edit.columns).map((c) => FACT_COLUMN[c] && edit.table === "sales_order" ? FACT_COLUMN[c]! : c)
        const { rows } = await warehouse.query({
          text: `SELECT change_op, last_updated_date::text, last_updated_time::text, ${columns.join(", ")}
                 FROM ${fact} WHERE ${key} = $1 ORDER BY source_lsn, source_seq`,
          values: [edit.key],
          rowMode: "array",
          types: { getTypeParser: () => (v: string) => v }
        } as pg.QueryConfig)
        const versions = rows as unknown as Array<Array<string | null>>
        const label = `${edit.table} ${edit.key}`
        expect(versions.map((v) => v[0]), label).toEqual([edit.inferred ? "c" : "r", "u"])
        expect(versions[1]!.slice(1, 3), label).toEqual(versions[0]!.slice(1, 3))
        expect(versions[0]!.slice(3), label).toEqual(Object.values(edit.columns).map((c) => c.before))
        expect(versions[1]!.slice(3), label).toEqual(Object.values(edit.columns).map((c) => c.after))
      }
    })
  })

  it("the lake holds every change event the pipeline published (archiver beside the consumer)", async () => {
    await timed("check: lake holds every change", async () => {
      const expected: Record<string, number> = {}
      for (const table of TOTESYS_TABLES) {
        if (febRows[table]) expected[`${table}:r`] = febRows[table]
        for (const [op, n] of [["c", plan.counts[table].insert], ["u", plan.counts[table].update], ["d", plan.counts[table].delete]] as const) {
          if (n > 0) expected[`${table}:${op}`] = n
        }
      }
      let inLake: Record<string, number> = {}
      await waitFor(async () => {
        // The initial snapshot's rows are in chunks under snapshots/: read back as the events they stand for.
        const { records } = await Effect.runPromise(expandSnapshotChunks(lakeOf(env), (await readRawLake(lakeOf(env))).records))
        const seen = new Map<string, ChangeEvent>()
        for (const r of records) if (r.kind === "change") seen.set(r.id, r)
        inLake = {}
        for (const e of seen.values()) inLake[`${e.source.table}:${e.op}`] = (inLake[`${e.source.table}:${e.op}`] ?? 0) + 1
        return JSON.stringify(Object.entries(inLake).sort()) === JSON.stringify(Object.entries(expected).sort())
      }, 60_000, "the lake to hold every change").catch(() => {})
      expect(inLake).toEqual(expected)
      expect(archiver!.archiver.stats.objects).toBeGreaterThan(0)
    })
  })

  it("`totes replay` rebuilds a second warehouse from the lake equal to the live one", async () => {
    await timed("check: totes replay into a fresh warehouse", async () => {
      const target = await freshDatabase("replay")
      const result = await runTotes(["replay", "--target", target, "--name", "real-history"], env, 300_000)
      expect(result.code, result.output).toBe(0)
      replayOutput = result.output.split("\n").filter((line) => /^(applied| {2})/.test(line)).join("\n")
      const [live, rebuilt] = await Promise.all([dumpOf(env.WAREHOUSE_DATABASE_URL!), dumpOf(target)])
      const sizes = (dump: Record<string, Rows>) => Object.fromEntries(Object.entries(dump).map(([t, rows]) => [t, rows.length]))
      expect(sizes(rebuilt)).toEqual(sizes(live))
      for (const table of Object.keys(live)) expect(rebuilt[table], table).toEqual(live[table])
    })
  }, 360_000)

  it("`totes verify` finds no difference between the source and the warehouse (exit 0)", async () => {
    await timed("check: totes verify", async () => {
      const result = await runTotes(["verify", "--wait", "120"], env, 240_000)
      verifyOutput = result.output.split("\n").filter((line) => /^ {2}\S/.test(line)).join("\n")
      expect(result.code, result.output).toBe(0)
      expect(result.output).not.toMatch(/DIFFERENT/)
    })
  }, 300_000)
})
