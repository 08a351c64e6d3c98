/**
 * One transaction of 1,000,000 rows through the reader (in its own process, as `totes run
 * --components reader` runs it) to Kinesis, and what pgoutput protocol 1 costs for it:
 *
 *   - the reader's peak memory (VmHWM), against a 256 MiB goal (backpressure bounds what waits
 *     for Kinesis), and its publish rate next to the time the source took to write the rows;
 *   - the time from the transaction's commit to its first event being durable on Kinesis (seen
 *     by a poller of every shard: an upper bound by one poll) and to all of them (checkpoint);
 *   - what the server spilled to disk for it while decoding (pg_stat_replication_slots): protocol
 *     1 sends a transaction only after its commit;
 *   - the reference: the same kind of transaction decoded with protocol 2 and streaming = on by
 *     pg_recvlogical (when installed), which receives changes while the transaction runs.
 *
 *   node --import tsx bench/reader-large-transaction.ts      (BENCH_ROWS=1000000 by default)
 */
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from "@aws-sdk/client-kinesis"
import { Effect, Option } from "effect"
import pg from "pg"
import { readerCheckpointKey, type ReaderCheckpoint } from "../contracts/checkpoint.ts"
import type { StreamRecord } from "../contracts/change-event.ts"
import { compareLsn } from "../contracts/lsn.ts"
import { NODE_FLAGS } from "../services/cli/component-processes.ts"
import { currentWalLsn } from "../services/reader/source-admin.ts"
import { kinesisClient } from "../services/shared/aws-clients.ts"
import { CheckpointStore } from "../services/shared/checkpoint-store.ts"
import { deaggregate } from "../services/shared/kinesis/aggregation.ts"
import { initSourceSchema } from "../tools/source/totesys-db.ts"
import { perSecond, seconds, withStack } from "./support.ts"

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000)
const LIMIT_MIB = 256
const BIN = new URL("../bin/totes.mjs", import.meta.url).pathname
const MIB = 1024 * 1024

const peakRssMiB = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0)
  return kb / 1024
}

const INSERT = `INSERT INTO design (design_name, file_location, file_name, last_updated)
  SELECT 'Design ' || g, '/usr/share', 'design-' || g || '.json', now() FROM generate_series(1, $1) g`

interface SlotStats {
  readonly spillTxns: number
  readonly spillCount: number
  readonly spillBytes: number
  readonly streamTxns: number
  readonly streamBytes: number
  readonly totalTxns: number
  readonly totalBytes: number
}

const slotStats = async (client: pg.Client, slot: string): Promise<SlotStats> => {
  const { rows } = await client.query(
    "SELECT spill_txns, spill_count, spill_bytes, stream_txns, stream_bytes, total_txns, total_bytes FROM pg_stat_replication_slots WHERE slot_name = $1",
    [slot]
  )
  const r = rows[0] ?? {}
  return {
    spillTxns: Number(r.spill_txns ?? 0),
    spillCount: Number(r.spill_count ?? 0),
    spillBytes: Number(r.spill_bytes ?? 0),
    streamTxns: Number(r.stream_txns ?? 0),
    streamBytes: Number(r.stream_bytes ?? 0),
    totalTxns: Number(r.total_txns ?? 0),
    totalBytes: Number(r.total_bytes ?? 0)
  }
}

const minus = (a: SlotStats, b: SlotStats): SlotStats => ({
  spillTxns: a.spillTxns - b.spillTxns,
  spillCount: a.spillCount - b.spillCount,
  spillBytes: a.spillBytes - b.spillBytes,
  streamTxns: a.streamTxns - b.streamTxns,
  streamBytes: a.streamBytes - b.streamBytes,
  totalTxns: a.totalTxns - b.totalTxns,
  totalBytes: a.totalBytes - b.totalBytes
})

/** The walsender reports its statistics a little after decoding: wait until the transaction shows. */
const statsAfter = async (client: pg.Client, slot: string, before: SlotStats): Promise<SlotStats> => {
  const deadline = Date.now() + 15_000
  for (;;) {
    const delta = minus(await slotStats(client, slot), before)
    if (delta.totalBytes >= ROWS * 50 || delta.streamBytes > 0 || Date.now() > deadline) return delta
    await new Promise((r) => setTimeout(r, 250))
  }
}

/**
 * Polls every shard from its current end; resolves with the time the first change event of
 * `table` shows up (heartbeats are skipped).
 */
const watchFirstChange = async (env: Record<string, string>, table: string, signal: AbortSignal): Promise<number | undefined> => {
  const client = kinesisClient(env)
  try {
    const shards = (await client.send(new ListShardsCommand({ StreamName: env.TOTES_STREAM }))).Shards ?? []
    const iterators = await Promise.all(
      shards.map(async (s) => (await client.send(new GetShardIteratorCommand({ StreamName: env.TOTES_STREAM, ShardId: s.ShardId, ShardIteratorType: "LATEST" }))).ShardIterator)
    )
    while (!signal.aborted) {
      for (let i = 0; i < iterators.length; i++) {
        if (!iterators[i]) continue
        const page = await client.send(new GetRecordsCommand({ ShardIterator: iterators[i], Limit: 100 }))
        iterators[i] = page.NextShardIterator
        for (const record of page.Records ?? []) {
          for (const user of deaggregate(record.Data!, record.PartitionKey!)) {
            const event = JSON.parse(Buffer.from(user.data).toString("utf8")) as StreamRecord
            if (event.kind === "change" && event.source.table === table) return performance.now()
          }
        }
      }
      await new Promise((r) => setTimeout(r, 25))
    }
    return undefined
  } finally {
    client.destroy()
  }
}

const describeStats = (s: SlotStats) =>
  `spilled ${s.spillTxns} transaction(s) in ${s.spillCount} spill(s), ${(s.spillBytes / MIB).toFixed(0)} MiB; streamed ${s.streamTxns} in progress, ${(s.streamBytes / MIB).toFixed(0)} MiB; decoded ${(s.totalBytes / MIB).toFixed(0)} MiB`

/**
 * The reference: pg_recvlogical on a slot of its own with protocol 2 and streaming = on, the
 * same kind of transaction. Returns when its first bytes arrived relative to the commit, and the
 * slot's statistics.
 */
const protocol2Reference = async (source: pg.Client, env: Record<string, string>) => {
  if (spawnSync("pg_recvlogical", ["--version"]).status !== 0) return undefined
  const slot = "bench_proto2"
  await source.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot])
  const dir = mkdtempSync(join(tmpdir(), "totes-bench-proto2-"))
  const file = join(dir, "out")
  const url = new URL(env.SOURCE_DATABASE_URL!)
  const child = spawn(
    "pg_recvlogical",
    ["-h", url.hostname, "-p", url.port, "-U", decodeURIComponent(url.username), "-d", url.pathname.slice(1), "-S", slot, "--start", "--no-loop", "-F", "0",
      "-o", "proto_version=2", "-o", "streaming=on", "-o", `publication_names=${env.TOTES_PUBLICATION}`, "-f", file],
    { env: { ...process.env, PGPASSWORD: decodeURIComponent(url.password) }, stdio: ["ignore", "ignore", "pipe"] }
  )
  let stderr = ""
  child.stderr.on("data", (d) => (stderr += d))
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve))
  const size = () => {
    try {
      return statSync(file).size
    } catch {
      return 0
    }
  }
  try {
    await new Promise((r) => setTimeout(r, 1_000))
    if (child.exitCode !== null) throw new Error(`pg_recvlogical exited: ${stderr}`)
    const before = await slotStats(source, slot)
    const idle = size()
    let firstAt: number | undefined
    const watching = (async () => {
      while (firstAt === undefined && child.exitCode === null) {
        if (size() > idle) firstAt = performance.now()
        await new Promise((r) => setTimeout(r, 10))
      }
    })()
    const started = performance.now()
    await source.query(INSERT, [ROWS])
    const committedAt = performance.now()
    const stats = await statsAfter(source, slot, before)
    await watching
    return { writeMs: committedAt - started, firstAfterCommitMs: firstAt === undefined ? undefined : firstAt - committedAt, stats }
  } finally {
    child.kill("SIGINT")
    await exited
    await source.query("SELECT pg_drop_replication_slot($1)", [slot]).catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}

await withStack(async (stack) => {
  const env: Record<string, string> = { ...stack.env, TOTES_METRICS: "off" }
  const source = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL })
  await source.connect()
  await initSourceSchema(source)
  const workMem = (await source.query("SHOW logical_decoding_work_mem")).rows[0].logical_decoding_work_mem as string
  const checkpoints = Effect.runSync(CheckpointStore.make(env))
  const durable = async () =>
    Option.getOrUndefined(await Effect.runPromise(checkpoints.get<ReaderCheckpoint | null>(readerCheckpointKey(env.TOTES_SLOT!))))?.data?.lsn ?? null

  // Started as production starts it (the Dockerfile's reader command, services/cli/component-processes.ts).
  const reader = spawn(process.execPath, [...NODE_FLAGS.reader!, BIN, "run", "--components", "reader"], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] })
  const exited = new Promise<number | null>((resolve) => reader.on("exit", resolve))
  let stopped = false
  try {
    while ((await durable()) === null) await new Promise((r) => setTimeout(r, 100))
    const idleMiB = peakRssMiB(reader.pid!)
    const before = await slotStats(source, env.TOTES_SLOT!)
    const stopWatching = new AbortController()
    const firstChange = watchFirstChange(env, "design", stopWatching.signal)
    await new Promise((r) => setTimeout(r, 500)) // the watcher holds its iterators before the transaction starts
    const writeStarted = performance.now()
    await source.query(INSERT, [ROWS])
    const committedAt = performance.now()
    const writeMs = committedAt - writeStarted
    const target = await currentWalLsn(source)
    let peak = idleMiB
    for (;;) {
      peak = Math.max(peak, peakRssMiB(reader.pid!))
      const lsn = await durable()
      if (lsn && compareLsn(lsn, target) >= 0) break
      await new Promise((r) => setTimeout(r, 200))
    }
    const allDurableMs = performance.now() - committedAt
    peak = Math.max(peak, peakRssMiB(reader.pid!))
    const firstAt = await firstChange
    stopWatching.abort()
    const spill = await statsAfter(source, env.TOTES_SLOT!, before)

    // The reader's slot stays (inactive): the reference decodes its own transaction alone.
    reader.kill("SIGTERM")
    await exited
    stopped = true
    const reference = await protocol2Reference(source, env)

    console.log(`logical_decoding_work_mem = ${workMem}; one transaction of ${ROWS.toLocaleString("en-GB")} rows`)
    console.log("")
    console.log("| measure | time | rows/s |")
    console.log("|---|---:|---:|")
    console.log(`| written by the source (INSERT … SELECT, reference) | ${seconds(writeMs)} s | ${perSecond(ROWS, writeMs)} |`)
    console.log(`| reader, protocol 1: commit → first event durable on Kinesis | ${firstAt === undefined ? "not seen" : `${seconds(firstAt - committedAt)} s`} | |`)
    console.log(`| reader, protocol 1: commit → every event durable (checkpoint) | ${seconds(allDurableMs)} s | ${perSecond(ROWS, allDurableMs)} |`)
    if (reference) {
      const first = reference.firstAfterCommitMs
      const when = first === undefined ? "not seen" : `${first < 0 ? "−" : "+"}${seconds(Math.abs(first))} s`
      console.log(`| pg_recvlogical, protocol 2 streaming (reference, no publishing): first change received, relative to the commit | ${when} | |`)
      console.log(`| (its transaction written in) | ${seconds(reference.writeMs)} s | ${perSecond(ROWS, reference.writeMs)} |`)
    }
    console.log("")
    console.log(`server, reader's slot (protocol 1): ${describeStats(spill)}`)
    if (reference) console.log(`server, pg_recvlogical's slot (protocol 2, streaming = on): ${describeStats(reference.stats)}`)
    else console.log("pg_recvlogical is not installed: no protocol 2 reference")
    console.log(`reader peak RSS (VmHWM): ${peak.toFixed(0)} MiB (idle before the transaction: ${idleMiB.toFixed(0)} MiB; goal under ${LIMIT_MIB} MiB: ${peak < LIMIT_MIB ? "met" : "NOT met"})`)
  } finally {
    if (!stopped) {
      reader.kill("SIGTERM")
      await exited
    }
    await source.end()
  }
})
