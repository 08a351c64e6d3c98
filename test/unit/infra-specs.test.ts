import { describe, expect, it } from "vitest"
import { rawHourPrefixes } from "../../contracts/lake.ts"
import { alarmSpecs, dashboardBody, pipelineDimensions } from "../../infra/alarms-spec.ts"
import { FIREHOSE_ERROR_PREFIX, FIREHOSE_PREFIX, firehoseDestination, validateFirehoseSettings } from "../../infra/firehose-spec.ts"
import { lakeLifecycleRules } from "../../infra/lake-spec.ts"
import { appSettings, databaseUrl, stageConfig, withSslMode } from "../../infra/stage-config.ts"
import { DIMENSIONS, METRIC_NAMESPACE, METRICS, type MetricName } from "../../services/shared/metrics.ts"

const resources = {
  consumerFunctionName: "totes-dev-consumer",
  failureQueueName: "totes-dev-consumer-failures",
  deliveryStreamName: "totes-dev-lake",
  sourceDbInstanceId: "totes-dev-source"
}

/** Firehose's !{timestamp:yyyy/MM/dd/HH} evaluated for a date (UTC). */
const evaluate = (prefix: string, at: Date, errorType = "processing-failed") => {
  const pad = (n: number) => String(n).padStart(2, "0")
  return prefix
    .replace("!{timestamp:yyyy/MM/dd/HH}", `${at.getUTCFullYear()}/${pad(at.getUTCMonth() + 1)}/${pad(at.getUTCDate())}/${pad(at.getUTCHours())}`)
    .replace("!{firehose:error-output-type}", errorType)
}

describe("stage settings", () => {
  it("retains and protects production, removes other stages", () => {
    expect(appSettings("production")).toEqual({ removal: "retain", protect: true })
    expect(appSettings("prod")).toEqual({ removal: "retain", protect: true })
    expect(appSettings("dev")).toEqual({ removal: "remove", protect: false })
    expect(appSettings("pr-42")).toEqual({ removal: "remove", protect: false })
  })

  it("chooses stream capacity per stage, overridable from the environment", () => {
    expect(stageConfig("production").stream.capacity).toEqual({ mode: "ON_DEMAND" })
    expect(stageConfig("dev").stream.capacity).toEqual({ mode: "PROVISIONED", shards: 1 })
    expect(stageConfig("dev", { TOTES_STREAM_MODE: "on-demand" }).stream.capacity).toEqual({ mode: "ON_DEMAND" })
    expect(stageConfig("production", { TOTES_STREAM_MODE: "provisioned", TOTES_STREAM_SHARDS: "4" }).stream.capacity).toEqual({ mode: "PROVISIONED", shards: 4 })
    expect(() => stageConfig("dev", { TOTES_STREAM_SHARDS: "0" })).toThrow(/TOTES_STREAM_SHARDS/)
    expect(() => stageConfig("dev", { TOTES_STREAM_MODE: "fast" })).toThrow(/TOTES_STREAM_MODE/)
  })

  it("makes production durable: verified TLS, object lock retention, PITR-protected checkpoints", () => {
    const prod = stageConfig("production", { TOTES_ALARM_EMAIL: "ops@example.com" })
    expect(prod.databases.tls).toBe("verify-full")
    expect(prod.lake.objectLock).toEqual({ mode: "GOVERNANCE", days: 365 })
    expect(prod.checkpoints.deletionProtection).toBe(true)
    expect(prod.alarms.email).toBe("ops@example.com")
    expect(prod.databases.mode === "managed" && prod.databases.source.multiAz).toBe(true)
    expect(stageConfig("dev").lake.objectLock).toBeNull()
    expect(stageConfig("dev", { TOTES_DATABASES: "existing" }).databases.mode).toBe("existing")
    expect(() => stageConfig("dev", { TOTES_ALARM_EMAIL: "not-an-address" })).toThrow(/e-mail/)
  })

  it("creates the reader's slot with failover in production stages only (TOTES_FAILOVER_SLOT)", () => {
    expect(stageConfig("production").reader.failoverSlot).toBe(true)
    expect(stageConfig("prod").reader.failoverSlot).toBe(true)
    expect(stageConfig("dev").reader.failoverSlot).toBe(false)
  })

  it("builds database URLs with encoded credentials and the stage's sslmode", () => {
    expect(databaseUrl({ username: "totes", password: "p@ss/w:rd?", host: "db.abc.eu-west-2.rds.amazonaws.com", port: 5432, database: "totesys" }, "verify-full")).toBe(
      "postgres://totes:p%40ss%2Fw%3Ard%3F@db.abc.eu-west-2.rds.amazonaws.com:5432/totesys?sslmode=verify-full"
    )
    expect(withSslMode("postgres://u:p@h/db", "verify-full")).toBe("postgres://u:p@h/db?sslmode=verify-full")
    expect(withSslMode("postgres://u:p@h/db?application_name=x", "no-verify")).toBe("postgres://u:p@h/db?application_name=x&sslmode=no-verify")
    expect(withSslMode("postgres://u:p@h/db?sslmode=verify-ca&sslrootcert=/ca.pem", "verify-full")).toBe("postgres://u:p@h/db?sslmode=verify-ca&sslrootcert=/ca.pem")
    expect(() => withSslMode("postgres://u:p@h/db?sslmode=disable", "verify-full")).toThrow(/requires TLS/)
  })
})

describe("firehose settings", () => {
  it("writes gzip NDJSON under hourly raw/ prefixes that replay lists", () => {
    const destination = firehoseDestination({ bufferingIntervalSeconds: 300, bufferingSizeMb: 64 })
    expect(destination).toMatchObject({
      prefix: "raw/!{timestamp:yyyy/MM/dd/HH}/",
      errorOutputPrefix: "errors/!{timestamp:yyyy/MM/dd/HH}/!{firehose:error-output-type}/",
      compressionFormat: "GZIP",
      fileExtension: ".ndjson.gz",
      customTimeZone: "UTC",
      bufferingInterval: 300,
      bufferingSize: 64,
      processingConfiguration: { enabled: true, processors: [{ type: "AppendDelimiterToRecord" }] }
    })
    const at = new Date("2026-11-20T07:45:00Z")
    expect(rawHourPrefixes(at, at)).toEqual([evaluate(FIREHOSE_PREFIX, at)])
    expect(evaluate(FIREHOSE_ERROR_PREFIX, at)).toBe("errors/2026/11/20/07/processing-failed/")
    // Firehose requires the error type in the error prefix when the prefix uses expressions
    expect(FIREHOSE_ERROR_PREFIX).toContain("!{firehose:error-output-type}")
  })

  it("rejects buffering outside Firehose's limits", () => {
    expect(() => validateFirehoseSettings({ bufferingIntervalSeconds: 901, bufferingSizeMb: 5 })).toThrow(/interval/)
    expect(() => validateFirehoseSettings({ bufferingIntervalSeconds: 60, bufferingSizeMb: 0 })).toThrow(/size/)
    for (const stage of ["dev", "production"]) expect(() => firehoseDestination(stageConfig(stage).firehose)).not.toThrow()
  })
})

describe("lake lifecycle", () => {
  it("never expires raw/ or claims/, archives them, and expires only errors/", () => {
    const rules = lakeLifecycleRules(stageConfig("production").lake)
    const byPrefix = Object.fromEntries(rules.map((r) => [r.filter.prefix, r]))
    expect(Object.keys(byPrefix).sort()).toEqual(["claims/", "dead-letter/", "errors/", "parquet/", "raw/"])
    expect(byPrefix["raw/"]?.expiration).toBeUndefined()
    expect(byPrefix["claims/"]?.expiration).toBeUndefined()
    expect(byPrefix["raw/"]?.transitions?.map((t) => t.storageClass)).toEqual(["STANDARD_IA", "GLACIER_IR"])
    expect(byPrefix["errors/"]?.expiration?.days).toBeGreaterThan(0)
    expect(rules.every((r) => r.abortIncompleteMultipartUpload.daysAfterInitiation === 7)).toBe(true)
    expect(new Set(rules.map((r) => r.id)).size).toBe(rules.length)
  })
})

describe("alarms", () => {
  const config = stageConfig("production")
  const alarms = alarmSpecs("production", config.alarms, resources)
  const byId = Object.fromEntries(alarms.map((a) => [a.id, a]))

  it("covers every failure the pipeline promises to page on", () => {
    expect(Object.keys(byId).sort()).toEqual(
      [
        "consumer-iterator-age",
        "dead-lettered-events",
        "failed-batches",
        "firehose-delivery-failures",
        "firehose-freshness",
        "reader-down",
        "replication-lag-bytes",
        "replication-lag-seconds",
        "retained-wal",
        "slot-wal-headroom",
        "source-slot-lag",
        "table-paused",
        "warehouse-freshness"
      ].sort()
    )
    expect(alarmSpecs("dev", stageConfig("dev").alarms, { ...resources, sourceDbInstanceId: undefined }).map((a) => a.id)).not.toContain("source-slot-lag")
    expect(new Set(alarms.map((a) => a.name)).size).toBe(alarms.length)
    expect(alarms.every((a) => a.name.startsWith("totes-production-"))).toBe(true)
  })

  it("watches the pipeline's own metrics by the names, dimensions and units of services/shared/metrics.ts", () => {
    const own = alarms.filter((a) => a.namespace === METRIC_NAMESPACE)
    expect(own.length).toBeGreaterThan(0)
    for (const alarm of own) {
      const name = alarm.metricName as MetricName
      expect(Object.keys(METRICS)).toContain(name)
      expect(alarm.dimensions).toEqual({ [DIMENSIONS.stage]: "production", [DIMENSIONS.component]: METRICS[name].component })
    }
    expect(byId["reader-down"]).toMatchObject({ metricName: "ReplicationLagBytes", statistic: "SampleCount", comparison: "LessThanThreshold", threshold: 1, treatMissingData: "breaching" })
    expect(byId["replication-lag-bytes"]).toMatchObject({ threshold: config.alarms.replicationLagBytes, comparison: "GreaterThanThreshold" })
    expect(METRICS.ReplicationLagBytes.unit).toBe("Bytes")
    expect(byId["replication-lag-seconds"]).toMatchObject({ metricName: "ReplicationLagSeconds", threshold: config.alarms.replicationLagSeconds })
    expect(METRICS.ReplicationLagSeconds.unit).toBe("Seconds")
    expect(byId["warehouse-freshness"]).toMatchObject({ metricName: "ConsistentThroughAgeSeconds", threshold: config.alarms.freshnessMinutes * 60, treatMissingData: "breaching" })
    expect(METRICS.ConsistentThroughAgeSeconds.unit).toBe("Seconds")
    expect(byId["dead-lettered-events"]).toMatchObject({ metricName: "DeadLetteredEvents", statistic: "Sum", threshold: 0, comparison: "GreaterThanThreshold" })
    expect(byId["retained-wal"]).toMatchObject({ metricName: "RetainedWalBytes", threshold: config.alarms.retainedWalBytes })
    // The lake's freshness is the age of its watermark, computed from the lake itself; silence (nobody computes it) alarms too.
    expect(byId["firehose-freshness"]).toMatchObject({
      metricName: "LakeWatermarkAgeSeconds",
      dimensions: { Stage: "production", Component: "lake" },
      statistic: "Maximum",
      threshold: config.alarms.firehoseFreshnessSeconds,
      comparison: "GreaterThanThreshold",
      treatMissingData: "breaching"
    })
    expect(METRICS.LakeWatermarkAgeSeconds.unit).toBe("Seconds")
    expect(config.alarms.firehoseFreshnessSeconds).toBeGreaterThan(config.firehose.bufferingIntervalSeconds)
    expect(byId["slot-wal-headroom"]).toMatchObject({
      metricName: "SlotSafeWalBytes",
      statistic: "Minimum",
      comparison: "LessThanThreshold",
      threshold: config.alarms.slotWalHeadroomBytes,
      treatMissingData: "notBreaching"
    })
    expect(METRICS.SlotSafeWalBytes.unit).toBe("Bytes")
  })

  it("warns about the slot's WAL in two steps before the source invalidates it (max_slot_wal_keep_size)", () => {
    for (const stage of ["production", "dev"]) {
      const c = stageConfig(stage)
      const keepBytes = (c.databases.mode === "managed" ? c.databases.source.maxSlotWalKeepSizeMb : 0) * 1024 * 1024
      // retained-wal at half the limit, slot-wal-headroom with a quarter left: both before invalidation.
      expect(c.alarms.retainedWalBytes).toBe(keepBytes / 2)
      expect(c.alarms.slotWalHeadroomBytes).toBe(keepBytes / 4)
      expect(keepBytes - c.alarms.retainedWalBytes).toBeGreaterThan(c.alarms.slotWalHeadroomBytes)
    }
  })

  it("watches AWS metrics of the consumer, the failure queue, Firehose delivery and RDS", () => {
    expect(byId["consumer-iterator-age"]).toMatchObject({ namespace: "AWS/Lambda", metricName: "IteratorAge", dimensions: { FunctionName: "totes-dev-consumer" }, threshold: config.alarms.iteratorAgeMs })
    expect(byId["failed-batches"]).toMatchObject({ namespace: "AWS/SQS", dimensions: { QueueName: "totes-dev-consumer-failures" }, threshold: 0 })
    expect(byId["firehose-delivery-failures"]).toMatchObject({ namespace: "AWS/Firehose", metricName: "DeliveryToS3.Success", comparison: "LessThanThreshold", threshold: 1 })
    expect(byId["source-slot-lag"]).toMatchObject({ namespace: "AWS/RDS", metricName: "OldestReplicationSlotLag", dimensions: { DBInstanceIdentifier: "totes-dev-source" } })
  })

  it("uses valid CloudWatch alarm settings", () => {
    for (const a of alarms) {
      expect([10, 30].includes(a.periodSeconds) || a.periodSeconds % 60 === 0).toBe(true)
      expect(a.datapointsToAlarm).toBeLessThanOrEqual(a.evaluationPeriods)
      expect(a.evaluationPeriods * a.periodSeconds).toBeLessThanOrEqual(86_400)
      expect(a.name.length).toBeLessThanOrEqual(255)
    }
    expect(config.alarms.retainedWalBytes).toBeLessThan((config.databases.mode === "managed" ? config.databases.source.maxSlotWalKeepSizeMb : 0) * 1024 * 1024)
  })

  it("keeps the reader-down window at least as long as the silence it detects", () => {
    const a = byId["reader-down"]!
    expect(a.evaluationPeriods * a.periodSeconds).toBe(config.alarms.readerSilentMinutes * 60)
    expect(pipelineDimensions("dev", "EventsApplied")).toEqual({ Stage: "dev", Component: "consumer" })
  })
})

describe("dashboard", () => {
  it("graphs every catalogued metric and the AWS metrics of each stage", () => {
    const body = JSON.parse(
      dashboardBody({
        stage: "dev",
        region: "eu-west-2",
        streamName: "totes-dev-changes",
        consumerFunctionName: resources.consumerFunctionName,
        failureQueueName: resources.failureQueueName,
        deliveryStreamName: resources.deliveryStreamName,
        sourceDbInstanceId: resources.sourceDbInstanceId,
        alarmArns: ["arn:aws:cloudwatch:eu-west-2:111122223333:alarm:totes-dev-reader-down"]
      })
    )
    const metricRows: Array<Array<unknown>> = body.widgets.filter((w: any) => w.type === "metric").flatMap((w: any) => w.properties.metrics)
    const own = new Set(metricRows.filter((m) => m[0] === METRIC_NAMESPACE).map((m) => m[1]))
    expect([...own].sort()).toEqual(Object.keys(METRICS).sort())
    for (const row of metricRows.filter((m) => m[0] === METRIC_NAMESPACE)) {
      expect(row.slice(2, 6)).toEqual(["Stage", "dev", "Component", METRICS[row[1] as MetricName].component])
    }
    const namespaces = new Set(metricRows.map((m) => m[0]))
    for (const ns of ["AWS/Kinesis", "AWS/Lambda", "AWS/Firehose", "AWS/SQS", "AWS/RDS"]) expect(namespaces.has(ns)).toBe(true)
    expect(body.widgets.some((w: any) => w.type === "alarm")).toBe(true)
    for (const w of body.widgets) expect(w.x + w.width).toBeLessThanOrEqual(24)
  })
})
