/**
 * `totes console` against a configured stage (here an isolated environment on the local stack,
 * read through the same variables as `totes status`): the figures come from successive status
 * readings and the warehouse's own counts, not from metrics. Checked against what really
 * happened: the events the consumer applied while the console watched, the WAL the reader made
 * durable, the fact rows' commit → warehouse latency. A dead letter appears with its reason;
 * Ctrl-C stops it (130) and frees its port.
 */
import { PutRecordsCommand } from "@aws-sdk/client-kinesis"
import { describe, expect, it } from "vitest"
import { lsnToBigInt } from "../../contracts/lsn.ts"
import { kinesisClient } from "../../services/shared/aws-clients.ts"
import type { ConsoleSnapshot } from "../../tools/console/server.ts"
import { initSourceSchema } from "../../tools/source/totesys-db.ts"
import { runMiniWorkload, seedDimensions } from "../support/mini-workload.ts"
import { readWholeStream } from "../support/kinesis.ts"
import { portOpen } from "../support/net.ts"
import { startPipeline } from "../support/pipeline.ts"
import { spawnTotes, waitFor } from "../support/processes.ts"
import { connect, isolatedPipelineEnv } from "../support/stack.ts"

const snapshotOf = async (url: string): Promise<ConsoleSnapshot> => (await fetch(new URL("api/console", url))).json() as Promise<ConsoleSnapshot>
const sum = (values: ReadonlyArray<number | null>, weights: ReadonlyArray<number>) => values.reduce<number>((total, v, i) => total + (v ?? 0) * weights[i]!, 0)

describe("totes console against a stage", () => {
  it("derives events/s, WAL rates and latency from status readings and the warehouse, and shows dead letters", async () => {
    const env = await isolatedPipelineEnv({ shards: 2 })
    const source = await connect(env.SOURCE_DATABASE_URL!)
    await initSourceSchema(source)
    await seedDimensions(source)
    const pipeline = await startPipeline(env)
    await pipeline.caughtUp()
    // Quiet before the console starts: its first reading is the baseline of the counters, so the
    // warehouse's statistics (flushed by the writing sessions about every second) must already
    // count every mirror row the snapshot wrote.
    const warehouse = await connect(env.WAREHOUSE_DATABASE_URL!)
    const mirrorWrites = async () => Number((await warehouse.query("SELECT (n_tup_ins + n_tup_upd + n_tup_del)::float8 AS n FROM pg_stat_user_tables WHERE schemaname = 'totes' AND relname = 'mirror'")).rows[0].n)
    const mirrorRows = Number((await warehouse.query("SELECT count(*)::float8 AS n FROM totes.mirror")).rows[0].n)
    let counted = 0
    await waitFor(async () => (counted = await mirrorWrites()) >= mirrorRows, 30_000, () => `the warehouse statistics counting the snapshot's ${mirrorRows} mirror rows (at ${counted})`)

    const consoleRun = spawnTotes(["console", "--port", "0"], { ...env, TOTES_STAGE: "itest", TOTES_METRICS: "off" })
    try {
      await waitFor(() => /totes console: http:\/\/127\.0\.0\.1:\d+\//.test(consoleRun.output()), 30_000, () => `the console's address:\n${consoleRun.output()}`)
      const url = /totes console: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(consoleRun.output())![1]!
      await waitFor(async () => (await snapshotOf(url)).history.t.length >= 2, 15_000, "two readings")
      const first = await snapshotOf(url)
      expect(first.mode).toBe("stage")
      expect(first.title).toBe("totes console · stage itest")
      const readerFrom = lsnToBigInt(first.status!.reader.checkpointLsn!)

      const writesBefore = await mirrorWrites()
      const committed = await runMiniWorkload(source, { seed: 7, transactions: 60 })
      expect(committed).toBe(60)
      await pipeline.caughtUp()
      // What happened meanwhile: the change events on the stream committed after the first reading (each once), and the rows they changed.
      const changes = new Map(
        (await readWholeStream(env)).flatMap(({ record, partitionKey }) =>
          record.kind === "change" && lsnToBigInt(record.source.commitLsn) > readerFrom ? [[record.id, partitionKey] as const] : []
        )
      )
      const rowsChanged = new Set(changes.values()).size
      // The warehouse's statistics reach readers about a second after each apply: await at least one
      // write per row changed, then a console reading taken after that.
      await waitFor(async () => (counted = await mirrorWrites()) - writesBefore >= rowsChanged, 30_000, () => `the warehouse statistics counting ${rowsChanged} rows changed (at ${counted - writesBefore})`)
      const countedAt = Date.now()
      await waitFor(async () => (await snapshotOf(url)).history.t.at(-1)! > countedAt / 1000, 15_000, "a console reading after the statistics counted the workload")
      const last = await snapshotOf(url)
      const { t, series } = last.history
      // Seconds each point's rates cover, counting only the points after the first snapshot's reading.
      const from = first.history.t.at(-1)!
      const intervals = t.map((at, i) => (i === 0 || at <= from ? 0 : at - t[i - 1]!))

      // Changes applied per second, integrated over the readings: the mirror rows the consumer wrote meanwhile,
      // at least one per row changed, at most one per change (changes of one row in one apply transaction write it once).
      expect(changes.size).toBeGreaterThan(100)
      const applied = Math.round(sum(series.appliedPerSecond, intervals))
      expect(applied).toBeGreaterThanOrEqual(rowsChanged)
      expect(applied).toBeLessThanOrEqual(changes.size)
      // Events published are counted by the reader's metrics only, which a stage sends to CloudWatch.
      expect(series.publishedPerSecond.every((v) => v === null)).toBe(true)
      // WAL made durable by the reader: the rates add up to the distance its checkpoint moved.
      const readerMoved = Number(lsnToBigInt(last.status!.reader.checkpointLsn!) - readerFrom)
      expect(readerMoved).toBeGreaterThan(0)
      // (up to float rounding of rate × seconds: a few bytes in millions)
      expect(Math.abs(sum(series.publishedWalBytesPerSecond, intervals) - readerMoved)).toBeLessThanOrEqual(Math.max(2, readerMoved * 1e-6))
      expect(Math.max(...series.appliedWalBytesPerSecond.map((v) => v ?? 0))).toBeGreaterThan(0)
      // Commit → warehouse latency from the fact rows applied: real, and bounded by the test's own wait.
      const latencies = series.latencyP50Ms.filter((v): v is number => v !== null)
      expect(latencies.length).toBeGreaterThan(0)
      expect(Math.max(...latencies)).toBeLessThan(30_000)
      series.latencyP50Ms.forEach((p50, i) => p50 !== null && expect(series.latencyP99Ms[i]).toBeGreaterThanOrEqual(p50))
      expect(Object.keys(last.history.shards).sort()).toEqual(["shardId-000000000000", "shardId-000000000001"])
      expect(Object.fromEntries(last.stages.map((s) => [s.id, s.state]))).toMatchObject({ source: "running", reader: "running", stream: "running", consumer: "running", warehouse: "running" })

      // A record that cannot be decoded: set aside by the consumer, shown with its reason.
      const kinesis = kinesisClient(env)
      await kinesis.send(new PutRecordsCommand({ StreamName: env.TOTES_STREAM, Records: [{ PartitionKey: "k", Data: Buffer.from("{ not json") }] }))
      kinesis.destroy()
      await waitFor(async () => ((await snapshotOf(url)).status?.lakeActivity?.deadLetters.count ?? 0) === 1, 30_000, "the dead letter in the console")
      const dead = (await snapshotOf(url)).status!.lakeActivity!.deadLetters.newest[0]!
      expect(dead.reason).toMatch(/^undecodable: not JSON/)
      expect(JSON.stringify(dead)).not.toContain("not json")

      consoleRun.child.kill("SIGINT")
      expect(await consoleRun.exited, consoleRun.output()).toBe(130)
      expect(await portOpen(Number(new URL(url).port))).toBe(false)
    } finally {
      if (consoleRun.child.exitCode === null) consoleRun.child.kill("SIGKILL")
      await warehouse.end()
      await pipeline.stop()
      await source.end()
    }
  }, 120_000)
})
