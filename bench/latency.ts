/**
 * End-to-end latency (source commit → warehouse commit) at a steady workload, from the
 * consumer's EndToEndLatency metric (the figure CloudWatch gets), reported as p50/p95/p99.
 *
 *   node --import tsx bench/latency.ts        (BENCH_RATE=20 transactions/s, BENCH_SECONDS=30)
 *
 * Reference in the same run: the duration of one PutRecords call to the stream (the floor of
 * any Kinesis-based path), and the goal (p99 under 2 s locally).
 */
import pg from "pg"
import { consumerFromEnv, migrateFromEnv } from "../services/consumer/main.ts"
import { readerFromEnv } from "../services/reader/main.ts"
import { metrics } from "../services/shared/metrics.ts"
import { generateTotesys } from "../tools/source/generate.ts"
import { DEFAULT_MIX, simulate } from "../tools/source/simulate.ts"
import { percentile, withStack } from "./support.ts"

const RATE = Number(process.env.BENCH_RATE ?? 20)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30)

await withStack(async (stack) => {
  const env = { ...stack.env }
  const source = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL })
  await source.connect()
  await generateTotesys(source, { seed: "latency", days: 30 })
  await migrateFromEnv(env)
  const { sink, restore } = metrics.capture()

  const reader = readerFromEnv(env, { heartbeatIntervalMs: 1_000 })
  const readerRun = reader.start()
  readerRun.catch((e) => console.error(e))
  while (reader.stats.durableLsn === null) await new Promise((r) => setTimeout(r, 50))
  const consumer = consumerFromEnv(env, { idleWaitMs: 20 })
  const stop = new AbortController()
  const polling = consumer.poller.run(stop.signal)
  await new Promise((r) => setTimeout(r, 2_000))
  sink.clear()

  const report = await simulate(source, {
    seed: "latency-live",
    rate: RATE,
    durationMs: SECONDS * 1000,
    mix: DEFAULT_MIX,
    clock: "wall"
  })
  await new Promise((r) => setTimeout(r, 3_000))
  stop.abort()
  await polling
  await reader.stop()
  await consumer.close()
  restore()

  const latencies = sink.values("EndToEndLatency")
  const publishLatency = sink.values("PublishLatency")
  console.log(`steady workload: ${report.transactions} transactions (${report.rowChanges} row changes) at ${RATE}/s for ${SECONDS} s`)
  console.log("")
  console.log("| measure | samples | p50 | p95 | p99 |")
  console.log("|---|---:|---:|---:|---:|")
  const row = (name: string, values: ReadonlyArray<number>) =>
    console.log(`| ${name} | ${values.length} | ${percentile(values, 50).toFixed(0)} ms | ${percentile(values, 95).toFixed(0)} ms | ${percentile(values, 99).toFixed(0)} ms |`)
  row("end to end: source commit → warehouse commit", latencies)
  row("reference: one PutRecords call (reader → Kinesis)", publishLatency)
  console.log("")
  console.log(`goal: p99 under 2,000 ms → ${percentile(latencies, 99) < 2000 ? "met" : "NOT met"}`)
  await source.end()
})
