/**
 * Pure: the pipeline as a row of stages (source → reader → stream → lake, consumer → warehouse),
 * each with a state an operator can read at a glance and one line saying why. Derived from a
 * status reading only, so the console and anything else that shows it agree.
 */
import type { PipelineStatus } from "./status.ts"

export type StageState = "running" | "behind" | "attention" | "stopped" | "unknown"

export interface PipelineStage {
  readonly id: "source" | "reader" | "stream" | "lake" | "consumer" | "warehouse"
  readonly label: string
  readonly state: StageState
  readonly detail: string
}

export interface StageThresholds {
  /** Reader and consumer lag (seconds) above which they count as behind. */
  readonly behindSeconds: number
  /** Lake watermark age above which the lake counts as behind: Firehose buffers for minutes (the firehose-freshness alarm allows a buffer + 10 minutes). */
  readonly lakeBehindSeconds: number
}

export const DEFAULT_THRESHOLDS: StageThresholds = { behindSeconds: 30, lakeBehindSeconds: 900 }

const bytes = (n: number | null) =>
  n === null ? "–" : n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : n < 1024 ** 3 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024 ** 3).toFixed(1)} GiB`
const seconds = (n: number | null) => (n === null ? "–" : `${n.toFixed(1)} s`)
const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString("en-GB")} ${n === 1 ? one : many}`

const stage = (id: PipelineStage["id"], state: StageState, detail: string): PipelineStage => ({ id, label: id, state, detail })

export const pipelineStages = (status: PipelineStatus, thresholds: StageThresholds = DEFAULT_THRESHOLDS): ReadonlyArray<PipelineStage> => {
  const { reader, consumer, lake, lakeActivity, paused } = status

  const readerStage = (() => {
    if (reader.slotConfirmedLsn === null) return stage("reader", "stopped", "no replication slot: the reader has not started, or its slot is gone")
    if (!reader.slotActive) return stage("reader", "stopped", `slot inactive: no reader connected · durable ${reader.checkpointLsn ?? "–"} · lag ${bytes(reader.lagBytes)}`)
    if (reader.checkpointLsn === null) return stage("reader", "behind", "connected, no checkpoint yet (initial snapshot)")
    const detail = `durable ${reader.checkpointLsn} · lag ${bytes(reader.lagBytes)}, ${seconds(reader.lagSeconds)}`
    return stage("reader", (reader.lagSeconds ?? 0) > thresholds.behindSeconds ? "behind" : "running", detail)
  })()

  const shards = consumer.shards.length
  const withoutHeartbeat = consumer.shards.filter((s) => s.heartbeatLsn === null).length
  const streamStage =
    shards === 0
      ? stage("stream", "unknown", "no shard applied by the consumer yet")
      : stage("stream", "running", `${plural(shards, "shard")}${withoutHeartbeat > 0 ? ` · ${withoutHeartbeat} without a heartbeat applied yet` : ""}`)

  const lakeStage = (() => {
    if (!lake) return stage("lake", "unknown", "not read")
    if (lake.error) return stage("lake", "unknown", `cannot read: ${lake.error}`)
    const written = lakeActivity && !lakeActivity.error ? ` · ${plural(lakeActivity.rawLastHour.objects, "object")} in the last hour` : ""
    if (lake.watermarkLsn === null) return stage("lake", "unknown", `no heartbeat archived yet${written}`)
    const detail = `complete through ${lake.watermarkLsn} · lag ${seconds(lake.lagSeconds)}${written}`
    return stage("lake", (lake.lagSeconds ?? 0) > thresholds.lakeBehindSeconds ? "behind" : "running", detail)
  })()

  const consumerStage = (() => {
    const deadLetters = lakeActivity && !lakeActivity.error ? lakeActivity.deadLetters.count : 0
    const dead = deadLetters > 0 ? ` · ${plural(deadLetters, "dead letter")} in ${lakeActivity!.deadLetters.lookbackDays} days` : ""
    if (shards === 0) return stage("consumer", "unknown", `nothing applied yet${dead}`)
    const detail = `lag ${bytes(consumer.lagBytes)}, ${seconds(consumer.lagSeconds)}${dead}`
    if ((consumer.lagSeconds ?? 0) > thresholds.behindSeconds) return stage("consumer", "behind", detail)
    return stage("consumer", deadLetters > 0 ? "attention" : "running", detail)
  })()

  const warehouseStage = (() => {
    if (consumer.consistentThroughLsn === null) return stage("warehouse", "unknown", "not consistent through any position yet")
    const through = `consistent through ${consumer.consistentThroughLsn}${consumer.consistentThroughSource === "replay" ? " (rebuilt by replay)" : ""}`
    if (paused.length > 0) return stage("warehouse", "attention", `${through} · paused: ${paused.map((t) => t.table).join(", ")}`)
    return stage("warehouse", "running", through)
  })()

  return [stage("source", "running", `WAL at ${status.source.walLsn}`), readerStage, streamStage, lakeStage, consumerStage, warehouseStage]
}
