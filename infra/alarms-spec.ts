/**
 * CloudWatch alarms and the pipeline dashboard, as plain data (no SST imports: unit-tested).
 *
 * The pipeline's own metrics come from services/shared/metrics.ts (namespace TotesCdc,
 * dimensions {Stage, Component}); the others are AWS's: AWS/Lambda IteratorAge of the consumer,
 * AWS/SQS on the on-failure queue, AWS/Firehose delivery, AWS/RDS replication slot lag. The lake's
 * freshness is the age of its watermark (LakeWatermarkAgeSeconds, computed from the lake every
 * minute by infra/lake-watermark.ts), not Firehose's own DataFreshness: it also sees records that
 * never reach Firehose and objects that never land.
 *
 * Generic in the resource-name type `N` (Pulumi outputs in infra, strings in tests).
 */
import { DIMENSIONS, METRIC_NAMESPACE, METRICS, type MetricName } from "../services/shared/metrics.ts"

export type Comparison = "GreaterThanThreshold" | "GreaterThanOrEqualToThreshold" | "LessThanThreshold" | "LessThanOrEqualToThreshold"
export type MissingData = "breaching" | "notBreaching" | "ignore" | "missing"
export type Statistic = "SampleCount" | "Average" | "Sum" | "Minimum" | "Maximum"

export interface AlarmSpec<N = string> {
  /** Short stable id, also the Pulumi resource name suffix. */
  readonly id: string
  readonly name: string
  readonly description: string
  readonly namespace: string
  readonly metricName: string
  readonly dimensions: Readonly<Record<string, N | string>>
  readonly statistic: Statistic
  readonly periodSeconds: number
  readonly evaluationPeriods: number
  readonly datapointsToAlarm: number
  readonly threshold: number
  readonly comparison: Comparison
  readonly treatMissingData: MissingData
}

export interface AlarmThresholds {
  readonly periodSeconds: number
  /** Minutes without any ReplicationLagBytes sample before "reader down". */
  readonly readerSilentMinutes: number
  readonly replicationLagBytes: number
  readonly replicationLagSeconds: number
  readonly retainedWalBytes: number
  /** Fire when less WAL than this may still be written before the source invalidates the slot (safe_wal_size). */
  readonly slotWalHeadroomBytes: number
  readonly iteratorAgeMs: number
  readonly freshnessMinutes: number
  readonly firehoseFreshnessSeconds: number
}

export interface AlarmResources<N> {
  readonly consumerFunctionName: N
  readonly failureQueueName: N
  readonly deliveryStreamName: N
  /** The RDS instance of the source when this app manages it (retained WAL seen by RDS itself). */
  readonly sourceDbInstanceId?: N
}

/** Dimensions under which the pipeline's metric `name` is alarmed on: {Stage, Component}. */
export const pipelineDimensions = (stage: string, name: MetricName): Record<string, string> => ({
  [DIMENSIONS.stage]: stage,
  [DIMENSIONS.component]: METRICS[name].component
})

export const alarmSpecs = <N>(stage: string, t: AlarmThresholds, r: AlarmResources<N>): Array<AlarmSpec<N>> => {
  const prefix = `totes-${stage}`
  const period = t.periodSeconds
  const minutes = (m: number) => Math.max(1, Math.ceil((m * 60) / period))
  const pipeline = (
    id: string,
    metric: MetricName,
    rest: Omit<AlarmSpec<N>, "id" | "name" | "namespace" | "metricName" | "dimensions" | "periodSeconds">
  ): AlarmSpec<N> => ({ id, name: `${prefix}-${id}`, namespace: METRIC_NAMESPACE, metricName: metric, dimensions: pipelineDimensions(stage, metric), periodSeconds: period, ...rest })

  const alarms: Array<AlarmSpec<N>> = [
    pipeline("reader-down", "ReplicationLagBytes", {
      description: `The reader emitted no ReplicationLagBytes sample for ${t.readerSilentMinutes} minutes: it is down, stuck, or cannot reach the source.`,
      statistic: "SampleCount",
      evaluationPeriods: minutes(t.readerSilentMinutes),
      datapointsToAlarm: minutes(t.readerSilentMinutes),
      threshold: 1,
      comparison: "LessThanThreshold",
      treatMissingData: "breaching"
    }),
    pipeline("replication-lag-bytes", "ReplicationLagBytes", {
      description: `WAL not yet published and acknowledged exceeds ${t.replicationLagBytes} bytes for 5 minutes.`,
      statistic: "Maximum",
      evaluationPeriods: minutes(5),
      datapointsToAlarm: minutes(5),
      threshold: t.replicationLagBytes,
      comparison: "GreaterThanThreshold",
      treatMissingData: "notBreaching"
    }),
    pipeline("replication-lag-seconds", "ReplicationLagSeconds", {
      description: `Oldest unpublished commit is more than ${t.replicationLagSeconds} s old for 5 minutes.`,
      statistic: "Maximum",
      evaluationPeriods: minutes(5),
      datapointsToAlarm: minutes(5),
      threshold: t.replicationLagSeconds,
      comparison: "GreaterThanThreshold",
      treatMissingData: "notBreaching"
    }),
    pipeline("retained-wal", "RetainedWalBytes", {
      description: `The source retains more than ${t.retainedWalBytes} bytes of WAL for the slot (as measured by the reader).`,
      statistic: "Maximum",
      evaluationPeriods: minutes(5),
      datapointsToAlarm: minutes(5),
      threshold: t.retainedWalBytes,
      comparison: "GreaterThanThreshold",
      treatMissingData: "notBreaching"
    }),
    pipeline("slot-wal-headroom", "SlotSafeWalBytes", {
      description: `Less than ${t.slotWalHeadroomBytes} bytes of WAL may still be written before the source invalidates the slot (safe_wal_size, max_slot_wal_keep_size): once invalidated, only a new snapshot recovers.`,
      statistic: "Minimum",
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      threshold: t.slotWalHeadroomBytes,
      comparison: "LessThanThreshold",
      // No sample: no max_slot_wal_keep_size (nothing to run out of) or the reader is down (reader-down).
      treatMissingData: "notBreaching"
    }),
    pipeline("warehouse-freshness", "ConsistentThroughAgeSeconds", {
      description: `The warehouse's consistent_through is more than ${t.freshnessMinutes} minutes old (or the consumer reports nothing).`,
      statistic: "Maximum",
      evaluationPeriods: minutes(5),
      datapointsToAlarm: minutes(5),
      threshold: t.freshnessMinutes * 60,
      comparison: "GreaterThanThreshold",
      treatMissingData: "breaching"
    }),
    pipeline("table-paused", "TablesPaused", {
      description: "A source schema change broke a column the warehouse uses: that table is paused (its changes are kept). See pipeline_paused_tables, decide, then `totes warehouse resume`.",
      statistic: "Maximum",
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      threshold: 0,
      comparison: "GreaterThanThreshold",
      treatMissingData: "notBreaching"
    }),
    pipeline("dead-lettered-events", "DeadLetteredEvents", {
      description: "The consumer wrote events it could not apply to the lake's dead-letter/ prefix.",
      statistic: "Sum",
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      threshold: 0,
      comparison: "GreaterThanThreshold",
      treatMissingData: "notBreaching"
    }),
    {
      id: "consumer-iterator-age",
      name: `${prefix}-consumer-iterator-age`,
      description: `The consumer Lambda is more than ${t.iteratorAgeMs / 1000} s behind the stream.`,
      namespace: "AWS/Lambda",
      metricName: "IteratorAge",
      dimensions: { FunctionName: r.consumerFunctionName },
      statistic: "Maximum",
      periodSeconds: period,
      evaluationPeriods: minutes(5),
      datapointsToAlarm: minutes(5),
      threshold: t.iteratorAgeMs,
      comparison: "GreaterThanThreshold",
      treatMissingData: "notBreaching"
    },
    {
      id: "failed-batches",
      name: `${prefix}-failed-batches`,
      description: "Batches that exhausted their retries were sent to the on-failure queue: their records were skipped and must be replayed from the lake.",
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: { QueueName: r.failureQueueName },
      statistic: "Maximum",
      periodSeconds: 300,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      threshold: 0,
      comparison: "GreaterThanThreshold",
      treatMissingData: "notBreaching"
    },
    {
      id: "firehose-delivery-failures",
      name: `${prefix}-firehose-delivery-failures`,
      description: "Firehose failed to deliver to S3 (DeliveryToS3.Success below 1).",
      namespace: "AWS/Firehose",
      metricName: "DeliveryToS3.Success",
      dimensions: { DeliveryStreamName: r.deliveryStreamName },
      statistic: "Minimum",
      periodSeconds: 300,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      threshold: 1,
      comparison: "LessThanThreshold",
      treatMissingData: "notBreaching"
    },
    pipeline("firehose-freshness", "LakeWatermarkAgeSeconds", {
      description:
        `The lake is complete only up to more than ${t.firehoseFreshnessSeconds} s ago (the age of its watermark, the oldest of the shards' newest archived heartbeats), ` +
        `or nobody computed it: Firehose is not delivering, a shard's records are not archived, or the reader writes no heartbeats.`,
      statistic: "Maximum",
      evaluationPeriods: minutes(5),
      datapointsToAlarm: minutes(5),
      threshold: t.firehoseFreshnessSeconds,
      comparison: "GreaterThanThreshold",
      treatMissingData: "breaching"
    })
  ]
  if (r.sourceDbInstanceId !== undefined) {
    alarms.push({
      id: "source-slot-lag",
      name: `${prefix}-source-slot-lag`,
      description: `RDS reports more than ${t.retainedWalBytes} bytes of WAL held by the most lagging replication slot (fires even when the reader is down).`,
      namespace: "AWS/RDS",
      metricName: "OldestReplicationSlotLag",
      dimensions: { DBInstanceIdentifier: r.sourceDbInstanceId },
      statistic: "Maximum",
      periodSeconds: 300,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      threshold: t.retainedWalBytes,
      comparison: "GreaterThanThreshold",
      treatMissingData: "notBreaching"
    })
  }
  return alarms
}

// ---------------------------------------------------------------------------------------------
// dashboard

export interface DashboardInput {
  readonly stage: string
  readonly region: string
  readonly streamName: string
  readonly consumerFunctionName: string
  readonly failureQueueName: string
  readonly deliveryStreamName: string
  readonly sourceDbInstanceId?: string
  readonly alarmArns: ReadonlyArray<string>
}

type MetricRow = ReadonlyArray<string | Readonly<Record<string, unknown>>>

const pipelineMetric = (stage: string, name: MetricName, options: Record<string, unknown> = {}): MetricRow => [
  METRIC_NAMESPACE,
  name,
  DIMENSIONS.stage,
  stage,
  DIMENSIONS.component,
  METRICS[name].component,
  { label: name, ...options }
]

/** The body of aws.cloudwatch.Dashboard: one row per stage of the pipeline. */
export const dashboardBody = (input: DashboardInput): string => {
  const { stage, region } = input
  const widgets: Array<Record<string, unknown>> = []
  let y = 0
  const row = (title: string, panels: ReadonlyArray<{ title: string; metrics: ReadonlyArray<MetricRow>; stat?: string; period?: number }>) => {
    widgets.push({ type: "text", x: 0, y, width: 24, height: 1, properties: { markdown: `### ${title}` } })
    y += 1
    const width = Math.floor(24 / panels.length)
    panels.forEach((panel, i) => {
      widgets.push({
        type: "metric",
        x: i * width,
        y,
        width,
        height: 6,
        properties: { title: panel.title, region, view: "timeSeries", stacked: false, stat: panel.stat ?? "Sum", period: panel.period ?? 60, metrics: panel.metrics }
      })
    })
    y += 6
  }
  row("Reader (source → stream)", [
    { title: "Events published", metrics: [pipelineMetric(stage, "EventsPublished"), pipelineMetric(stage, "SnapshotRows"), pipelineMetric(stage, "RepairedRows"), pipelineMetric(stage, "SchemaChanges", { yAxis: "right" })] },
    { title: "Publish latency (ms)", stat: "p99", metrics: [pipelineMetric(stage, "PublishLatency", { stat: "p50", label: "p50" }), pipelineMetric(stage, "PublishLatency", { stat: "p99", label: "p99" })] },
    {
      title: "Replication lag and WAL",
      stat: "Maximum",
      metrics: [
        pipelineMetric(stage, "ReplicationLagBytes"),
        pipelineMetric(stage, "RetainedWalBytes"),
        pipelineMetric(stage, "SlotSafeWalBytes", { stat: "Minimum" }),
        pipelineMetric(stage, "ReplicationLagSeconds", { yAxis: "right" })
      ]
    },
    {
      title: "Batches, retries, heartbeat age",
      metrics: [
        pipelineMetric(stage, "PublishBatchSize", { stat: "Average" }),
        pipelineMetric(stage, "PublishRetries"),
        pipelineMetric(stage, "HeartbeatAgeSeconds", { stat: "Maximum", yAxis: "right" })
      ]
    },
    {
      title: "Dependency outages",
      metrics: [pipelineMetric(stage, "DependencyOutages"), pipelineMetric(stage, "DependencyOutageSeconds", { stat: "Maximum", yAxis: "right" })]
    }
  ])
  row("Stream", [
    { title: "Incoming records", metrics: [["AWS/Kinesis", "IncomingRecords", "StreamName", input.streamName], ["AWS/Kinesis", "IncomingBytes", "StreamName", input.streamName, { yAxis: "right" }]] },
    { title: "Throttling", metrics: [["AWS/Kinesis", "WriteProvisionedThroughputExceeded", "StreamName", input.streamName], ["AWS/Kinesis", "ReadProvisionedThroughputExceeded", "StreamName", input.streamName]] },
    { title: "Consumer iterator age (ms)", stat: "Maximum", metrics: [["AWS/Lambda", "IteratorAge", "FunctionName", input.consumerFunctionName]] }
  ])
  row("Consumer (stream → warehouse)", [
    { title: "Events applied", metrics: [pipelineMetric(stage, "EventsApplied"), pipelineMetric(stage, "DeadLetteredEvents", { yAxis: "right" })] },
    { title: "Latency (ms)", stat: "p99", metrics: [pipelineMetric(stage, "EndToEndLatency", { stat: "p99", label: "end-to-end p99" }), pipelineMetric(stage, "BatchDuration", { stat: "p99", label: "batch p99" })] },
    {
      title: "Warehouse freshness (s), paused tables",
      stat: "Maximum",
      metrics: [
        pipelineMetric(stage, "ConsistentThroughAgeSeconds"),
        pipelineMetric(stage, "TablesPaused", { yAxis: "right" }),
        pipelineMetric(stage, "EventsParked", { stat: "Sum", yAxis: "right" })
      ]
    },
    {
      title: "Errors",
      metrics: [
        ["AWS/Lambda", "Errors", "FunctionName", input.consumerFunctionName],
        pipelineMetric(stage, "WarehouseRetries"),
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", input.failureQueueName, { stat: "Maximum" }]
      ]
    }
  ])
  row("Lake", [
    {
      title: "Lake freshness (s)",
      stat: "Maximum",
      metrics: [
        pipelineMetric(stage, "LakeWatermarkAgeSeconds"),
        ["AWS/Firehose", "DeliveryToS3.DataFreshness", "DeliveryStreamName", input.deliveryStreamName, { period: 300 }]
      ]
    },
    { title: "Firehose delivery", stat: "Average", period: 300, metrics: [["AWS/Firehose", "DeliveryToS3.Success", "DeliveryStreamName", input.deliveryStreamName]] },
    { title: "Firehose records", period: 300, metrics: [["AWS/Firehose", "DeliveryToS3.Records", "DeliveryStreamName", input.deliveryStreamName]] },
    { title: "Lake writes", metrics: [pipelineMetric(stage, "LakeObjectsWritten"), pipelineMetric(stage, "LakeBytesWritten", { yAxis: "right" })] },
    { title: "Replay", metrics: [pipelineMetric(stage, "EventsReplayed"), pipelineMetric(stage, "ReplayEventsPerSecond", { stat: "Average", yAxis: "right" })] }
  ])
  if (input.sourceDbInstanceId) {
    row("Source database", [
      {
        title: "Replication slot lag (bytes)",
        stat: "Maximum",
        period: 300,
        metrics: [
          ["AWS/RDS", "OldestReplicationSlotLag", "DBInstanceIdentifier", input.sourceDbInstanceId],
          ["AWS/RDS", "TransactionLogsDiskUsage", "DBInstanceIdentifier", input.sourceDbInstanceId]
        ]
      },
      { title: "Free storage (bytes)", stat: "Minimum", period: 300, metrics: [["AWS/RDS", "FreeStorageSpace", "DBInstanceIdentifier", input.sourceDbInstanceId]] }
    ])
  }
  if (input.alarmArns.length > 0) {
    widgets.push({ type: "alarm", x: 0, y, width: 24, height: 3, properties: { title: "Alarms", alarms: [...input.alarmArns] } })
  }
  return JSON.stringify({ widgets })
}
