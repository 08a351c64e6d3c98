/**
 * Reader throughput on a 200,000-row workload, next to pg_recvlogical decoding the same WAL
 * with the same plugin (pgoutput, proto 1) in the same run.
 *
 *   node --import tsx bench/reader.ts            (BENCH_ROWS=200000 by default)
 *
 * Figures: pg_recvlogical to /dev/null (the walsender's pace: the reference); decode only (the
 * reader's replication stream, pgoutput parser and transaction assembler: change events built,
 * nothing encoded); the reader with an in-memory stream (decoding, events, JSON, routing,
 * aggregation, checkpoints); the reader publishing aggregated records to Kinesis (kinesalite in the
 * stack's own process) with checkpoints in DynamoDB, next to what kinesalite itself accepts (1 MiB
 * records put by one client: the local ceiling of that row). Then
 * what the records of the same events mean against AWS' per-shard limits (1,000 records/s and
 * 1 MiB/s): events per shard-second aggregated, and with one event per record (counted on an
 * in-memory run with aggregation off).
 */
import { spawn } from "node:child_process"
import pg from "pg"
import { compareLsn } from "../contracts/lsn.ts"
import { readerFromEnv } from "../services/reader/main.ts"
import type { Reader, ReaderOptions } from "../services/reader/reader.ts"
import { currentWalLsn } from "../services/reader/source-admin.ts"
import { PutRecordsCommand } from "@aws-sdk/client-kinesis"
import { openReplicationStream } from "../services/reader/replication-stream.ts"
import { TransactionAssembler } from "../services/reader/transaction-assembler.ts"
import { kinesisClient } from "../services/shared/kinesis-client.ts"
import { memoryPublisher } from "../services/shared/kinesis/publisher.ts"
import { metrics, nullSink } from "../services/shared/metrics.ts"
import { initSourceSchema } from "../tools/source/totesys-db.ts"
import { perSecond, seconds, withStack } from "./support.ts"

const ROWS = Number(process.env.BENCH_ROWS ?? 200_000)
const TRANSACTIONS = 4
const SHARDS = 4
const SHARD_RECORDS_PER_SECOND = 1_000
const SHARD_BYTES_PER_SECOND = 1024 * 1024

metrics.setSink(nullSink)

const untilDurable = async (reader: Reader, target: string) => {
  const started = performance.now()
  while (!reader.stats.durableLsn || compareLsn(reader.stats.durableLsn, target) < 0) {
    if (reader.error) throw reader.error
    await new Promise((r) => setTimeout(r, 5))
  }
  return performance.now() - started
}

/** The bytes the aggregated run put on the stream. */
const aggregatedBytes = (stats: Reader["stats"]) => stats.recordBytes

/**
 * Decode only: the reader's own replication stream, parser and assembler over the same WAL,
 * counting the change events built until the target position (nothing encoded or published).
 */
const decodeOnly = async (env: Record<string, string>, target: string): Promise<number> => {
  const source = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL })
  await source.connect()
  const { rows } = await source.query("SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1", [env.TOTES_SLOT])
  await source.end()
  const assembler = new TransactionAssembler("totesys")
  let events = 0
  let done: () => void = () => {}
  const finished = new Promise<void>((resolve) => (done = resolve))
  const started = performance.now()
  const stream = openReplicationStream({
    sourceUrl: env.SOURCE_DATABASE_URL!,
    slot: env.TOTES_SLOT!,
    publication: env.TOTES_PUBLICATION!,
    startLsn: rows[0].lsn,
    onMessage: (lsn, message) => {
      const out = assembler.next(message, lsn)
      if (out._tag === "Events") events += out.events.length
      else if (out._tag === "Commit" && compareLsn(out.commit.commitEndLsn, target) >= 0) done()
    },
    onReplyRequested: () => {}
  })
  await finished
  const ms = performance.now() - started
  await stream.close()
  if (events !== ROWS) throw new Error(`decode only: ${events} events, expected ${ROWS}`)
  return ms
}

/** kinesalite's own pace for `bytes` of 1 MiB records, one PutRecords after another (what one lane does). */
const kinesisCeiling = async (env: Record<string, string>, bytes: number): Promise<number> => {
  const client = kinesisClient(env)
  const record = Buffer.alloc(1_000_000, 97)
  const count = Math.max(1, Math.round(bytes / record.length))
  const started = performance.now()
  for (let i = 0; i < count; i++) {
    await client.send(new PutRecordsCommand({ StreamName: env.TOTES_STREAM, Records: [{ Data: record, PartitionKey: `ceiling-${i}` }] }))
  }
  const ms = performance.now() - started
  client.destroy()
  return ms
}

await withStack(async (stack) => {
  const env = { ...stack.env }
  const source = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL })
  await source.connect()
  await initSourceSchema(source)

  // Slots first (each reader takes its initial snapshot of the still-empty tables), then the workload.
  const variants = ["memory", "kinesis", "single", "decode"] as const // single: one event per record, in memory
  const envOf = (name: string) => ({ ...env, TOTES_SLOT: `bench_${name}`, TOTES_PUBLICATION: "bench_pub" })
  for (const name of variants) {
    const reader = readerFromEnv(envOf(name))
    reader.start().catch(() => {})
    while (reader.stats.durableLsn === null) await new Promise((r) => setTimeout(r, 20))
    await reader.stop()
  }
  await source.query("SELECT pg_create_logical_replication_slot('bench_recvlogical', 'pgoutput')")

  const writeStarted = performance.now()
  for (let t = 0; t < TRANSACTIONS; t++) {
    await source.query(
      `INSERT INTO design (design_name, file_location, file_name, last_updated)
       SELECT 'Design ' || g, '/usr/share', 'design-' || g || '.json', now() FROM generate_series(1, $1) g`,
      [ROWS / TRANSACTIONS]
    )
  }
  const target = await currentWalLsn(source)
  console.log(`workload: ${ROWS.toLocaleString("en-GB")} inserts in ${TRANSACTIONS} transactions written in ${seconds(performance.now() - writeStarted)} s, WAL end ${target}; stream of ${SHARDS} shards`)

  // Reference: pg_recvlogical with the same plugin and publication, to /dev/null.
  const url = new URL(env.SOURCE_DATABASE_URL!)
  const recvStarted = performance.now()
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      "pg_recvlogical",
      ["-h", url.hostname, "-p", url.port, "-U", url.username, "-d", "totesys", "-S", "bench_recvlogical", "--start", "--endpos", target,
        "-o", "proto_version=1", "-o", "publication_names=bench_pub", "-f", "/dev/null", "--no-loop"],
      { env: { ...process.env, PGPASSWORD: decodeURIComponent(url.password) }, stdio: ["ignore", "ignore", "pipe"] }
    )
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`pg_recvlogical exited ${code}: ${stderr}`))))
  })
  const recvMs = performance.now() - recvStarted

  const measure = async (name: (typeof variants)[number], overrides: Partial<ReaderOptions>) => {
    const reader = readerFromEnv(envOf(name), overrides)
    reader.start().catch(() => {})
    const ms = await untilDurable(reader, target)
    await reader.stop()
    return { ms, stats: reader.stats }
  }
  const decodeMs = await decodeOnly(envOf("decode"), target)
  const memory = await measure("memory", { publisher: memoryPublisher(undefined, SHARDS) })
  const kinesis = await measure("kinesis", {})
  const single = await measure("single", { publisher: memoryPublisher(undefined, SHARDS), maxEventsPerRecord: 1 })
  const ceiling = await kinesisCeiling(env, aggregatedBytes(kinesis.stats))

  const ratio = (ms: number) => (recvMs / ms).toFixed(2)
  console.log("")
  console.log(`| consumer of the same ${ROWS.toLocaleString("en-GB")}-row WAL | time | events/s | vs pg_recvlogical |`)
  console.log("|---|---:|---:|---:|")
  console.log(`| pg_recvlogical (pgoutput, proto 1) → /dev/null (reference) | ${seconds(recvMs)} s | ${perSecond(ROWS, recvMs)} | 1.00 |`)
  console.log(`| decode only: replication stream → pgoutput parser → transaction assembler (change events) | ${seconds(decodeMs)} s | ${perSecond(ROWS, decodeMs)} | ${ratio(decodeMs)} |`)
  console.log(`| reader, in-memory stream (decode, events, JSON, routing, aggregation, checkpoints) | ${seconds(memory.ms)} s | ${perSecond(ROWS, memory.ms)} | ${ratio(memory.ms)} |`)
  console.log(`| reader → Kinesis (local kinesalite), aggregated, checkpoints in DynamoDB | ${seconds(kinesis.ms)} s | ${perSecond(ROWS, kinesis.ms)} | ${ratio(kinesis.ms)} |`)
  console.log(`| kinesalite alone: the same bytes as 1 MiB PutRecords from one client (the local ceiling) | ${seconds(ceiling)} s | ${perSecond(ROWS, ceiling)} | ${ratio(ceiling)} |`)

  // What the records mean on AWS: a shard takes 1,000 records/s and 1 MiB/s, whichever is reached first.
  const perShardSecond = (events: number, records: number, bytes: number) =>
    Math.min(SHARD_RECORDS_PER_SECOND * (events / records), SHARD_BYTES_PER_SECOND * (events / bytes))
  const aggregated = kinesis.stats
  const plain = single.stats
  const aggregatedCapacity = perShardSecond(aggregated.published, aggregated.records, aggregated.recordBytes)
  const plainCapacity = perShardSecond(plain.published, plain.records, plain.recordBytes)
  console.log("")
  console.log("| Kinesis records for the same events | events | records | events per record | bytes per event | events per shard-second (AWS limits) |")
  console.log("|---|---:|---:|---:|---:|---:|")
  console.log(`| one event per record | ${plain.published} | ${plain.records} | ${(plain.published / plain.records).toFixed(1)} | ${Math.round(plain.recordBytes / plain.published)} | ${Math.round(plainCapacity).toLocaleString("en-GB")} (1.00) |`)
  console.log(`| aggregated (KPL format) | ${aggregated.published} | ${aggregated.records} | ${(aggregated.published / aggregated.records).toFixed(1)} | ${Math.round(aggregated.recordBytes / aggregated.published)} | ${Math.round(aggregatedCapacity).toLocaleString("en-GB")} (${(aggregatedCapacity / plainCapacity).toFixed(2)}) |`)
  await source.end()
})
