/** Pure: renders the live dashboard of `totes dev` as lines of text. */
import { describeSnapshotProgress } from "../../contracts/checkpoint.ts"
import type { PipelineStatus } from "../../services/status/status.ts"
import { percentile, ratePerSecond, type LiveFigures } from "./figures.ts"

export interface DashboardInput {
  readonly startedAt: number
  readonly figures: LiveFigures
  readonly status: PipelineStatus | undefined
  readonly simulated: { transactions: number; rowChanges: number }
  readonly lake: { objects: number; bytes: number } | undefined
  readonly errors: ReadonlyArray<string>
  readonly envPath: string
}

const fmt = (n: number | null | undefined, digits = 0) => (n === null || n === undefined ? "–" : n.toLocaleString("en-GB", { maximumFractionDigits: digits }))
const bytes = (n: number | null | undefined) =>
  n === null || n === undefined ? "–" : n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`
const ago = (iso: string | null | undefined, now: number) => (iso ? `${Math.max(0, (now - Date.parse(iso)) / 1000).toFixed(1)} s ago` : "–")

const lakeWatermark = (s: PipelineStatus | undefined, now: number) =>
  s?.lake?.watermarkLsn ? `complete through ${s.lake.watermarkLsn} (${ago(s.lake.watermarkAt, now)})` : s?.lake?.error ? `watermark unknown: ${s.lake.error}` : "watermark –"

export const renderDashboard = (input: DashboardInput, now = Date.now()): Array<string> => {
  const { figures: f, status: s } = input
  const uptime = Math.round((now - input.startedAt) / 1000)
  const p = (q: number) => fmt(percentile(f.latencies, q))
  return [
    `totes dev · up ${uptime}s · Ctrl-C stops everything · psql: set -a; . ${input.envPath}`,
    "",
    `source     ${fmt(input.simulated.transactions)} transactions, ${fmt(input.simulated.rowChanges)} row changes simulated · WAL ${s?.source.walLsn ?? "–"}`,
    `reader     ${fmt(f.published)} events published (${fmt(ratePerSecond(f.history, "published"), 1)}/s) · durable ${s?.reader.checkpointLsn ?? "–"} · lag ${bytes(s?.reader.lagBytes)} · retries ${fmt(f.publishRetries)}`,
    // While the initial snapshot runs: a line per table read so far (rows, rows/s, ETA).
    ...(s?.snapshot ? (s.snapshot.progress ?? []).map((t) => `  snapshot ${describeSnapshotProgress(t, now)}`) : []),
    `lake       ${input.lake ? `${fmt(input.lake.objects)} objects archived (${fmt(input.lake.bytes / 1024, 1)} KiB gzip)` : "archiver not running"} · ${lakeWatermark(s, now)}`,
    `consumer   ${fmt(f.applied)} events applied (${fmt(ratePerSecond(f.history, "applied"), 1)}/s) · latency p50 ${p(50)} ms p95 ${p(95)} ms p99 ${p(99)} ms · dead-lettered ${fmt(f.deadLettered)}`,
    `warehouse  consistent through ${s?.consumer.consistentThroughLsn ?? "–"} (${ago(s?.consumer.consistentThroughAt, now)}) · lag ${bytes(s?.consumer.lagBytes)} · ${s?.consumer.shards.length ?? 0} shards`,
    `errors     ${input.errors.length === 0 ? "none" : input.errors.slice(-3).join(" | ")}`
  ]
}
