/**
 * The live figures of a local run, aggregated from the same EMF lines the components emit
 * (so `totes dev` shows exactly what CloudWatch would receive).
 */
import { parseEmfLine, type MetricsSink } from "../../services/shared/metrics.ts"

export interface LiveFigures {
  published: number
  applied: number
  deadLettered: number
  warehouseRetries: number
  publishRetries: number
  lakeObjects: number
  lakeBytes: number
  replicationLagBytes: number | null
  /** Recent end-to-end latencies (ms), newest last, bounded. */
  readonly latencies: Array<number>
  /** How many latencies were ever recorded (the newest `latenciesSeen − n` of `latencies` are those after the n-th). */
  latenciesSeen: number
  /** (time, published, applied) samples for throughput over the last seconds. */
  readonly history: Array<{ at: number; published: number; applied: number }>
}

const WINDOW = 2_000

export class FiguresSink implements MetricsSink {
  readonly figures: LiveFigures = {
    published: 0,
    applied: 0,
    deadLettered: 0,
    warehouseRetries: 0,
    publishRetries: 0,
    lakeObjects: 0,
    lakeBytes: 0,
    replicationLagBytes: null,
    latencies: [],
    latenciesSeen: 0,
    history: []
  }

  readonly write = (line: string): void => {
    const doc = parseEmfLine(line)
    if (!doc) return
    const f = this.figures
    const num = (name: string): number => {
      const value = doc[name]
      return typeof value === "number" ? value : Array.isArray(value) ? value.reduce((a: number, b) => a + (typeof b === "number" ? b : 0), 0) : 0
    }
    f.published += num("EventsPublished")
    f.applied += num("EventsApplied")
    f.deadLettered += num("DeadLetteredEvents")
    f.warehouseRetries += num("WarehouseRetries")
    f.publishRetries += num("PublishRetries")
    f.lakeObjects += num("LakeObjectsWritten")
    f.lakeBytes += num("LakeBytesWritten")
    if (typeof doc.ReplicationLagBytes === "number") f.replicationLagBytes = doc.ReplicationLagBytes
    const latency = doc.EndToEndLatency
    const latencies = typeof latency === "number" ? [latency] : Array.isArray(latency) ? latency.filter((v): v is number => typeof v === "number") : []
    f.latencies.push(...latencies)
    f.latenciesSeen += latencies.length
    if (f.latencies.length > WINDOW) f.latencies.splice(0, f.latencies.length - WINDOW)
  }

  /** Records a throughput sample; keeps the last minute. */
  sample(now = Date.now()) {
    const h = this.figures.history
    h.push({ at: now, published: this.figures.published, applied: this.figures.applied })
    while (h.length > 0 && now - h[0]!.at > 60_000) h.shift()
  }
}

/** The latencies recorded after the first `seen` ones (as many as the bounded window still holds). */
export const latenciesAfter = (figures: LiveFigures, seen: number): Array<number> => {
  const fresh = Math.min(figures.latencies.length, Math.max(0, figures.latenciesSeen - seen))
  return fresh === 0 ? [] : figures.latencies.slice(-fresh)
}

export const percentile = (values: ReadonlyArray<number>, p: number): number | null => {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

/** Events per second over the last `seconds`, from the throughput samples. */
export const ratePerSecond = (history: LiveFigures["history"], key: "published" | "applied", seconds = 10): number => {
  const last = history[history.length - 1]
  if (!last) return 0
  const first = history.find((h) => last.at - h.at <= seconds * 1000) ?? last
  const span = (last.at - first.at) / 1000
  return span > 0 ? (last[key] - first[key]) / span : 0
}
