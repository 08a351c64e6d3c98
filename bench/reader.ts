/**
 * Reader throughput on a 200,000-row workload, next to pg_recvlogical decoding the same WAL
 * with the same plugin (pgoutput, proto 1) in the same run.
 *
 *   node --import tsx bench/reader.ts            (BENCH_ROWS=200000 by default)
 *
 * Three figures: pg_recvlogical to /dev/null (the walsender's pace: the reference), the reader
 * with an in-memory publisher (decoding + event assembly + encoding), and the reader publishing
 * to Kinesis (kinesalite locally; the local Kinesis server bounds it).
 */
import { spawn } from "node:child_process"
import pg from "pg"
import { compareLsn } from "../contracts/lsn.ts"
import { readerFromEnv } from "../services/reader/main.ts"
import type { Reader } from "../services/reader/reader.ts"
import { currentWalLsn } from "../services/reader/source-admin.ts"
import { memoryPublisher } from "../services/shared/kinesis/publisher.ts"
import { metrics, nullSink } from "../services/shared/metrics.ts"
import { initSourceSchema } from "../tools/source/totesys-db.ts"
import { perSecond, seconds, withStack } from "./support.ts"

const ROWS = Number(process.env.BENCH_ROWS ?? 200_000)
const TRANSACTIONS = 4

metrics.setSink(nullSink)

const untilDurable = async (reader: Reader, target: string) => {
  const started = performance.now()
  while (!reader.stats.durableLsn || compareLsn(reader.stats.durableLsn, target) < 0) {
    if (reader.error) throw reader.error
    await new Promise((r) => setTimeout(r, 5))
  }
  return performance.now() - started
}

await withStack(async (stack) => {
  const env = { ...stack.env }
  const source = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL })
  await source.connect()
  await initSourceSchema(source)

  // Slots first (each reader takes its initial snapshot of the still-empty tables), then the workload.
  const memoryEnv = { ...env, TOTES_SLOT: "bench_memory", TOTES_PUBLICATION: "bench_pub" }
  const kinesisEnv = { ...env, TOTES_SLOT: "bench_kinesis", TOTES_PUBLICATION: "bench_pub" }
  for (const e of [memoryEnv, kinesisEnv]) {
    const reader = readerFromEnv(e)
    const run = reader.start()
    run.catch(() => {})
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
  console.log(`workload: ${ROWS.toLocaleString("en-GB")} inserts in ${TRANSACTIONS} transactions written in ${seconds(performance.now() - writeStarted)} s, WAL end ${target}`)

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

  const memoryReader = readerFromEnv(memoryEnv, { publisher: memoryPublisher(undefined, 4) })
  const memoryRun = memoryReader.start()
  memoryRun.catch(() => {})
  const memoryMs = await untilDurable(memoryReader, target)
  await memoryReader.stop()

  const kinesisReader = readerFromEnv(kinesisEnv)
  const kinesisRun = kinesisReader.start()
  kinesisRun.catch(() => {})
  const kinesisMs = await untilDurable(kinesisReader, target)
  await kinesisReader.stop()

  console.log("")
  console.log(`| consumer of the same ${ROWS.toLocaleString("en-GB")}-row WAL | time | events/s | vs pg_recvlogical |`)
  console.log("|---|---:|---:|---:|")
  console.log(`| pg_recvlogical (pgoutput, proto 1) → /dev/null (reference) | ${seconds(recvMs)} s | ${perSecond(ROWS, recvMs)} | 1.00 |`)
  console.log(`| reader, in-memory publisher (decode + events + encode) | ${seconds(memoryMs)} s | ${perSecond(ROWS, memoryMs)} | ${(recvMs / memoryMs).toFixed(2)} |`)
  console.log(`| reader → Kinesis (local kinesalite), checkpoints in DynamoDB | ${seconds(kinesisMs)} s | ${perSecond(ROWS, kinesisMs)} | ${(recvMs / kinesisMs).toFixed(2)} |`)
  await source.end()
})
