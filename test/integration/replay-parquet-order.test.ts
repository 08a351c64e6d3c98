/**
 * Replay from Parquet applies each row's changes in the order replay from raw does, however the
 * lake was compacted: raw objects left before a `compact --from` window, runs compacted newest hour
 * first with file keys sorting against commit order, a run enclosing an earlier run's hour. What a
 * change does not carry (a key-only delete's image, an update's unsent TOAST column) comes from
 * the row's previous image, so an order that puts a change before its row's earlier change writes
 * NULLs into its fact row. The warehouse must equal the raw replay's, table for table, bulk and row
 * by row; and a replay interrupted and resumed (with a compaction run in between, or without: then
 * no event is applied twice) too.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import type { ChangeEvent, Row } from "../../contracts/change-event.ts"
import { parquetManifestKey, parquetObjectKey, rawObjectKey } from "../../contracts/lake.ts"
import { lsnFromBigInt } from "../../contracts/lsn.ts"
import { compactLake } from "../../services/lake/compact.ts"
import { readManifests, type CompactionManifest } from "../../services/lake/manifest.ts"
import { encodeRawObject } from "../../services/lake/raw.ts"
import { replay, type ReplayOptions, type ReplayReport } from "../../services/replay/replay.ts"
import type { Rows } from "../fixtures/derive-star-schema.ts"
import { changeEvent } from "../fixtures/events.ts"
import { dumpOf } from "../support/lake.ts"
import { memoryCheckpoints, memoryLake } from "../support/lake-memory.ts"
import { freshDatabase } from "../support/stack.ts"

type Lake = ReturnType<typeof memoryLake>

const BATCH = 15
const FILLER = 20

const order = (id: number, at: string, units = 10): Row => ({
  sales_order_id: id,
  created_at: at,
  last_updated: at,
  design_id: 1,
  staff_id: 1,
  counterparty_id: 1,
  units_sold: units,
  unit_price: "2.50",
  currency_id: 1,
  agreed_delivery_date: "2024-03-01",
  agreed_payment_date: "2024-03-05",
  agreed_delivery_location_id: 1
})
const design = (at: string, name: string): Row => ({ design_id: 1, created_at: at, last_updated: at, design_name: name, file_location: "/designs", file_name: "d.json" })

/**
 * Three hours, two shards (a row's changes on one shard, by key), one raw object per shard and
 * hour. 08: design 1 and orders 1, 2 inserted; 09: order 1 deleted (key only), order 2 updated
 * without its TOAST column; 10: design 1 updated without its TOAST column, an order of 09 deleted
 * (key only). Filler orders in every hour, so the changes of a row fall into different batches.
 */
const buildLake = async (): Promise<Lake> => {
  const lake = memoryLake()
  let lsn = 0x3000000n
  for (const hour of ["08", "09", "10"]) {
    const at = `2024-02-26T${hour}:00:00`
    const shards: [Array<ChangeEvent>, Array<ChangeEvent>] = [[], []]
    const change = (op: "c" | "u" | "d", table: string, key: number, images: Parameters<typeof changeEvent>[3]) => {
      lsn += 0x100n
      const second = String(shards[0].length + shards[1].length).padStart(2, "0")
      shards[key % 2]!.push(changeEvent(op, table, { commitLsn: lsnFromBigInt(lsn), index: 0, committedAt: `2024-02-26T${hour}:00:${second}.000000Z` }, images))
    }
    if (hour === "08") {
      change("c", "design", 1, { after: design(at, "first") })
      change("c", "sales_order", 1, { after: order(1, at) })
      change("c", "sales_order", 2, { after: order(2, at) })
    }
    for (let i = 0; i < FILLER; i++) {
      const id = Number(hour) * 1000 + i
      change("c", "sales_order", id, { after: order(id, at) })
      if (hour === "09" && i === 3) {
        change("d", "sales_order", 1, { before: { sales_order_id: 1 } })
        change("u", "sales_order", 2, { after: order(2, at, 99), unchanged: ["agreed_delivery_date"] })
      }
      if (hour === "10" && i === 3) {
        change("u", "design", 1, { after: design(at, "second"), unchanged: ["file_location"] })
        change("d", "sales_order", 9005, { before: { sales_order_id: 9005 } })
      }
    }
    for (const [shard, events] of shards.entries()) {
      const key = rawObjectKey(new Date(`2024-02-26T${hour}:59:30Z`), "test", `4959${hour}${shard}`, `0000000${shard}-0000-4000-8000-000000000000`)
      await Effect.runPromise(lake.putNew(key, encodeRawObject(events.map((e) => JSON.stringify(e))), "application/x-ndjson"))
    }
  }
  await new Promise((r) => setTimeout(r, 5)) // objects strictly older than any replay's listing
  return lake
}

const hour = (h: string) => new Date(`2024-02-26T${h}:00:00Z`)

const replayInto = async (lake: Lake, more: Partial<ReplayOptions> & { name: string }): Promise<{ dump: Record<string, Rows>; report: ReplayReport }> => {
  const url = await freshDatabase("parquet_order")
  const report = await Effect.runPromise(replay({ lake, targetUrl: url, checkpoints: memoryCheckpoints(), batchSize: BATCH, ...more }))
  return { dump: await dumpOf(url), report }
}

const expectSameWarehouse = (actual: Record<string, Rows>, expected: Record<string, Rows>) => {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort())
  for (const table of Object.keys(expected)) expect(actual[table], table).toEqual(expected[table])
}

/** The fact rows of the changes that take columns from their row's previous image (updates, deletes), as text. */
const completedRows = (dump: Record<string, Rows>) => dump.fact_sales_order!.map((r) => String(r.row)).filter((row) => /,(d|u),/.test(row))

/** Replays from raw (the reference), then from Parquet in bulk and row by row: the same warehouse. */
const expectParquetEqualsRaw = async (lake: Lake, name: string) => {
  const raw = await replayInto(lake, { name: `${name}-raw` })
  // The reference has every image: the delete's and update's fact rows carry the whole row.
  const deletes = raw.dump.fact_sales_order!.map((r) => String(r.row)).filter((row) => row.includes(",d,"))
  expect(deletes).toHaveLength(2)
  for (const row of deletes) expect(row, "a complete delete image").toMatch(/,2024-02-26,0\d:00:00,2024-02-26,0\d:00:00,1,1,10,2\.50,/)
  expect(raw.dump.dim_design!.map((r) => String(r.row)).join()).toContain("second,/designs,d.json")
  for (const rowByRow of [false, true]) {
    const parquet = await replayInto(lake, { name: `${name}-parquet-${rowByRow}`, source: "parquet", rowByRow })
    expect(parquet.report.mode).toBe(rowByRow ? "row-by-row" : "bulk")
    expect(completedRows(parquet.dump)).toEqual(completedRows(raw.dump))
    expectSameWarehouse(parquet.dump, raw.dump)
    expect(parquet.report.events).toBe(raw.report.events)
  }
}

/** Rewrites the manifests so that file keys (and run ids) sort in the given order of runs. */
const renameFiles = async (lake: Lake, runs: ReadonlyArray<CompactionManifest>) => {
  for (const [index, manifest] of runs.entries()) {
    const outputs = manifest.outputs.map((output) => {
      const key = parquetObjectKey(output.table, output.date, `${index}0000000-0000-4000-8000-000000000000`)
      lake.objects.set(key, lake.objects.get(output.key)!)
      lake.objects.delete(output.key)
      return { ...output, key }
    })
    lake.objects.delete(parquetManifestKey(manifest.run))
    const run = `2024022${index}T000000000Z-renamed`
    lake.objects.set(parquetManifestKey(run), Buffer.from(JSON.stringify({ ...manifest, run, outputs })))
  }
}

describe("replay from Parquet: commit order per row", { timeout: 300_000 }, () => {
  it("raw objects left before a `compact --from` window are applied before the newer compacted changes", async () => {
    const lake = await buildLake()
    const report = await Effect.runPromise(compactLake({ lake, from: hour("09") }))
    expect(report.inputs).toBe(4) // 08's two objects stay raw
    await expectParquetEqualsRaw(lake, "from-window")
  })

  it("runs compacted newest hour first, their file keys and run ids sorting against commit order", async () => {
    const lake = await buildLake()
    for (const h of ["10", "09", "08"]) await Effect.runPromise(compactLake({ lake, from: hour(h), to: hour(h) }))
    const manifests = (await Effect.runPromise(readManifests(lake))).sort((a, b) => (a.run < b.run ? -1 : 1))
    expect(manifests.map((m) => m.inputs[0]!.key.slice(15, 17))).toEqual(["10", "09", "08"])
    // Give the newest hour's files and run the smallest keys and ids too.
    await renameFiles(lake, manifests)
    const files = (await Effect.runPromise(readManifests(lake))).flatMap((m) => m.outputs.filter((o) => o.table === "sales_order").map((o) => [o.key, m.inputs[0]!.key.slice(15, 17)]))
    expect(files.sort().map(([, h]) => h)).toEqual(["10", "09", "08"])
    await expectParquetEqualsRaw(lake, "reversed-runs")
  })

  it("a run enclosing an earlier run's hour (compact --from 09 --to 09, then everything) is merged with it in commit order", async () => {
    const lake = await buildLake()
    await Effect.runPromise(compactLake({ lake, from: hour("09"), to: hour("09") }))
    const rest = await Effect.runPromise(compactLake({ lake }))
    expect(rest.inputs).toBe(4) // 08 and 10 in one run, around 09
    expect(rest.runs).toHaveLength(1)
    await expectParquetEqualsRaw(lake, "enclosing-run")
  })
})

describe("replay from Parquet: resumed", { timeout: 300_000 }, () => {
  /** A replay stopped after its first batch: it finishes the unit it is in, commits and checkpoints. */
  const interrupted = (lake: Lake, options: Partial<ReplayOptions> & { name: string; targetUrl: string; checkpoints: ReplayOptions["checkpoints"] }) => {
    const stop = new AbortController()
    return Effect.runPromise(
      replay({
        lake,
        batchSize: BATCH,
        source: "parquet",
        listingMarginMs: 0,
        signal: stop.signal,
        progressIntervalMs: 0,
        onProgress: (p) => p.events > 0 && stop.abort(),
        ...options
      })
    )
  }

  for (const rowByRow of [false, true]) {
    it(`${rowByRow ? "row by row" : "bulk"}: skips exactly what the interrupted run applied, applies the rest; with a compaction run in between too`, async () => {
      for (const compactBetween of [false, true]) {
        const lake = await buildLake()
        await Effect.runPromise(compactLake({ lake, from: hour("09"), to: hour("09") })) // 09 compacted; 08 and 10 raw
        const expected = await replayInto(lake, { name: "reference" })
        const targetUrl = await freshDatabase("parquet_resume")
        const checkpoints = memoryCheckpoints()
        const options = { name: "resume", targetUrl, checkpoints, rowByRow }
        const first = await interrupted(lake, options)
        expect(first.aborted).toBe(true)
        expect(first.objectsDone).toBeLessThan(first.objectsTotal)
        expect(first.events).toBeGreaterThan(0)
        if (compactBetween) {
          // 08 and 10 now compacted by a run around 09's: files the first run's listing did not have, of objects it applied raw (08) or not.
          expect((await Effect.runPromise(compactLake({ lake }))).inputs).toBe(4)
        }
        await new Promise((r) => setTimeout(r, 5))
        const second = await Effect.runPromise(replay({ lake, batchSize: BATCH, source: "parquet", listingMarginMs: 0, ...options }))
        expect(second.resumed).toBe(true)
        expect(second.mode).toBe(rowByRow ? "row-by-row" : "bulk")
        if (!compactBetween) {
          expect(second.objectsSkipped).toBe(first.objectsDone)
          expect(first.events + second.events, "events applied once each").toBe(expected.report.events)
        }
        const dump = await dumpOf(targetUrl)
        expect(completedRows(dump)).toEqual(completedRows(expected.dump))
        expectSameWarehouse(dump, expected.dump)
      }
    })
  }
})
