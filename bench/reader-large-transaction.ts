/**
 * One transaction of 1,000,000 rows through the reader (in its own process, as `totes run
 * --components reader` runs it) to Kinesis: its peak memory (VmHWM) must stay under 256 MiB
 * (backpressure bounds what waits for Kinesis), and its publish rate is printed next to the
 * time the source took to write the transaction.
 *
 *   node --import tsx bench/reader-large-transaction.ts      (BENCH_ROWS=1000000 by default)
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { Effect, Option } from "effect"
import pg from "pg"
import { readerCheckpointKey, type ReaderCheckpoint } from "../contracts/checkpoint.ts"
import { compareLsn } from "../contracts/lsn.ts"
import { currentWalLsn } from "../services/reader/source-admin.ts"
import { CheckpointStore } from "../services/shared/checkpoint-store.ts"
import { initSourceSchema } from "../tools/source/totesys-db.ts"
import { perSecond, seconds, withStack } from "./support.ts"

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000)
const LIMIT_MIB = 256
const BIN = new URL("../bin/totes.mjs", import.meta.url).pathname

const peakRssMiB = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0)
  return kb / 1024
}

await withStack(async (stack) => {
  const env: Record<string, string> = { ...stack.env, TOTES_METRICS: "off" }
  const source = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL })
  await source.connect()
  await initSourceSchema(source)
  const checkpoints = Effect.runSync(CheckpointStore.make(env))
  const durable = async () =>
    Option.getOrUndefined(await Effect.runPromise(checkpoints.get<ReaderCheckpoint | null>(readerCheckpointKey(env.TOTES_SLOT!))))?.data?.lsn ?? null

  const reader = spawn(process.execPath, [BIN, "run", "--components", "reader"], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] })
  const exited = new Promise<number | null>((resolve) => reader.on("exit", resolve))
  try {
    while ((await durable()) === null) await new Promise((r) => setTimeout(r, 100))
    const idleMiB = peakRssMiB(reader.pid!)
    const writeStarted = performance.now()
    await source.query(
      `INSERT INTO design (design_name, file_location, file_name, last_updated)
       SELECT 'Design ' || g, '/usr/share', 'design-' || g || '.json', now() FROM generate_series(1, $1) g`,
      [ROWS]
    )
    const writeMs = performance.now() - writeStarted
    const target = await currentWalLsn(source)
    const publishStarted = performance.now()
    let peak = idleMiB
    for (;;) {
      peak = Math.max(peak, peakRssMiB(reader.pid!))
      const lsn = await durable()
      if (lsn && compareLsn(lsn, target) >= 0) break
      await new Promise((r) => setTimeout(r, 200))
    }
    const publishMs = performance.now() - publishStarted
    peak = Math.max(peak, peakRssMiB(reader.pid!))
    console.log(`| one transaction of ${ROWS.toLocaleString("en-GB")} rows | time | rows/s |`)
    console.log("|---|---:|---:|")
    console.log(`| written by the source (INSERT … SELECT, reference) | ${seconds(writeMs)} s | ${perSecond(ROWS, writeMs)} |`)
    console.log(`| published by the reader (commit → every row durable on Kinesis) | ${seconds(publishMs)} s | ${perSecond(ROWS, publishMs)} |`)
    console.log("")
    console.log(`reader peak RSS (VmHWM): ${peak.toFixed(0)} MiB (idle before the transaction: ${idleMiB.toFixed(0)} MiB; limit ${LIMIT_MIB} MiB: ${peak < LIMIT_MIB ? "met" : "NOT met"})`)
  } finally {
    reader.kill("SIGTERM")
    await exited
    await source.end()
  }
})
