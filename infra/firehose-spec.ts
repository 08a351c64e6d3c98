/**
 * The Firehose delivery settings (Kinesis stream → lake raw/), as plain data (unit-tested).
 *
 * Firehose concatenates records; the reader's records carry no trailing newline, so the
 * AppendDelimiterToRecord processor makes each object NDJSON. Objects are gzip, named
 * `raw/YYYY/MM/DD/HH/<delivery stream>-<version>-<time>-<uuid>.ndjson.gz` (UTC hour of arrival),
 * which matches the lake layout of contracts/lake.ts up to the file name, and replay lists by
 * hour prefix. Failed deliveries land under errors/YYYY/MM/DD/HH/<error type>/.
 */
import { ERRORS_PREFIX } from "./policies.ts"
import { RAW_PREFIX } from "../contracts/lake.ts"

export const HOUR_EXPRESSION = "!{timestamp:yyyy/MM/dd/HH}"
export const FIREHOSE_PREFIX = `${RAW_PREFIX}${HOUR_EXPRESSION}/`
export const FIREHOSE_ERROR_PREFIX = `${ERRORS_PREFIX}${HOUR_EXPRESSION}/!{firehose:error-output-type}/`
export const FIREHOSE_FILE_EXTENSION = ".ndjson.gz"

export interface FirehoseSettings {
  readonly bufferingIntervalSeconds: number
  readonly bufferingSizeMb: number
}

/** Firehose limits: interval 0–900 s, size 1–128 MiB. */
export const validateFirehoseSettings = (settings: FirehoseSettings): FirehoseSettings => {
  const { bufferingIntervalSeconds: interval, bufferingSizeMb: size } = settings
  if (!Number.isInteger(interval) || interval < 0 || interval > 900) throw new Error(`Firehose buffering interval must be 0–900 s, got ${interval}`)
  if (!Number.isInteger(size) || size < 1 || size > 128) throw new Error(`Firehose buffering size must be 1–128 MiB, got ${size}`)
  return settings
}

/** The `extendedS3Configuration` of aws.kinesis.FirehoseDeliveryStream, without ARNs. */
export const firehoseDestination = (settings: FirehoseSettings) => {
  const { bufferingIntervalSeconds, bufferingSizeMb } = validateFirehoseSettings(settings)
  return {
    prefix: FIREHOSE_PREFIX,
    errorOutputPrefix: FIREHOSE_ERROR_PREFIX,
    compressionFormat: "GZIP",
    fileExtension: FIREHOSE_FILE_EXTENSION,
    customTimeZone: "UTC",
    bufferingInterval: bufferingIntervalSeconds,
    bufferingSize: bufferingSizeMb,
    processingConfiguration: {
      enabled: true,
      processors: [{ type: "AppendDelimiterToRecord" }]
    }
  }
}
