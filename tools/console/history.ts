/**
 * Pure: the console's time series. Every second the console makes an observation (a status
 * reading plus the counters it has: the EMF figures in `totes dev`, the warehouse's own counts
 * against a stage); each observation becomes one point, derived from it and the previous one.
 * The history is bounded (a local tool keeps minutes, not days) and handed to the page as
 * columns, the shape uPlot draws.
 */
import { lsnToBigInt } from "../../contracts/lsn.ts"
import type { PipelineStatus } from "../../services/status/status.ts"
import { percentile } from "../dev/figures.ts"

export interface Observation {
  readonly at: number
  readonly status: PipelineStatus | undefined
  /** Cumulative counts of events published and applied (null: not known in this mode). */
  readonly published: number | null
  readonly applied: number | null
  /** Commit → warehouse latencies (ms) observed since the previous observation. */
  readonly latenciesMs: ReadonlyArray<number>
}

/** Every series the page charts, one value per point (null: a gap). */
export const SERIES = [
  "latencyP50Ms",
  "latencyP99Ms",
  "publishedPerSecond",
  "appliedPerSecond",
  "publishedWalBytesPerSecond",
  "appliedWalBytesPerSecond",
  "readerLagSeconds",
  "consumerLagSeconds",
  "lakeLagSeconds",
  "readerLagBytes",
  "consumerLagBytes",
  "lakeLagBytes"
] as const

export type SeriesName = (typeof SERIES)[number]

export interface Point {
  /** Seconds since the epoch (uPlot's time axis). */
  readonly t: number
  readonly values: Readonly<Record<SeriesName, number | null>>
  /** Per shard: bytes of WAL between the source's position and the shard's last applied heartbeat. */
  readonly shardLagBytes: Readonly<Record<string, number | null>>
}

export interface HistoryColumns {
  readonly t: ReadonlyArray<number>
  readonly series: Readonly<Record<SeriesName, ReadonlyArray<number | null>>>
  readonly shards: Readonly<Record<string, ReadonlyArray<number | null>>>
}

/** Change per second between two counter readings; null when unknown or when the counter went back (a restart or a statistics reset). */
const ratePerSecond = (now: number | null | undefined, before: number | null | undefined, seconds: number): number | null =>
  now === null || now === undefined || before === null || before === undefined || seconds <= 0 || now < before ? null : (now - before) / seconds

const lsnBytes = (lsn: string | null | undefined): number | null => (lsn ? Number(lsnToBigInt(lsn)) : null)

const walBehind = (status: PipelineStatus, lsn: string | null) => {
  if (lsn === null) return null
  return Math.max(0, Number(lsnToBigInt(status.source.walLsn) - lsnToBigInt(lsn)))
}

export const toPoint = (current: Observation, previous: Observation | undefined): Point => {
  const seconds = previous ? (current.at - previous.at) / 1000 : 0
  const s = current.status
  const before = previous?.status
  const values: Record<SeriesName, number | null> = {
    latencyP50Ms: percentile(current.latenciesMs, 50),
    latencyP99Ms: percentile(current.latenciesMs, 99),
    publishedPerSecond: ratePerSecond(current.published, previous?.published, seconds),
    appliedPerSecond: ratePerSecond(current.applied, previous?.applied, seconds),
    publishedWalBytesPerSecond: ratePerSecond(lsnBytes(s?.reader.checkpointLsn), lsnBytes(before?.reader.checkpointLsn), seconds),
    appliedWalBytesPerSecond: ratePerSecond(lsnBytes(s?.consumer.consistentThroughLsn), lsnBytes(before?.consumer.consistentThroughLsn), seconds),
    readerLagSeconds: s?.reader.lagSeconds ?? null,
    consumerLagSeconds: s?.consumer.lagSeconds ?? null,
    lakeLagSeconds: s?.lake?.lagSeconds ?? null,
    readerLagBytes: s?.reader.lagBytes ?? null,
    consumerLagBytes: s?.consumer.lagBytes ?? null,
    lakeLagBytes: s?.lake?.lagBytes ?? null
  }
  const shardLagBytes = Object.fromEntries((s?.consumer.shards ?? []).map((shard) => [shard.shardId, walBehind(s!, shard.heartbeatLsn)]))
  return { t: current.at / 1000, values, shardLagBytes }
}

export class ConsoleHistory {
  private readonly points: Array<Point> = []
  private previous: Observation | undefined

  constructor(readonly capacity = 900) {}

  record(observation: Observation): Point {
    const point = toPoint(observation, this.previous)
    this.previous = observation
    this.points.push(point)
    if (this.points.length > this.capacity) this.points.splice(0, this.points.length - this.capacity)
    return point
  }

  get length() {
    return this.points.length
  }

  columns(): HistoryColumns {
    const shardIds = [...new Set(this.points.flatMap((p) => Object.keys(p.shardLagBytes)))].sort()
    return {
      t: this.points.map((p) => p.t),
      series: Object.fromEntries(SERIES.map((name) => [name, this.points.map((p) => p.values[name])])) as Record<SeriesName, Array<number | null>>,
      shards: Object.fromEntries(shardIds.map((id) => [id, this.points.map((p) => p.shardLagBytes[id] ?? null)]))
    }
  }
}
