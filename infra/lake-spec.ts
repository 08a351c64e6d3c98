/**
 * The lake bucket's lifecycle and Object Lock settings, as plain data (unit-tested).
 *
 * Objects are written once and never overwritten; raw/ and claims/ are the record of truth
 * for replay, so they are never expired, only moved to cheaper storage. errors/ (Firehose
 * delivery failures) expires; dead-letter/ is kept. Noncurrent versions (left by deletes) and
 * incomplete multipart uploads are cleaned up.
 */
import { LAKE_PREFIXES } from "./policies.ts"
import type { StageConfig } from "./stage-config.ts"

export interface LifecycleRule {
  readonly id: string
  readonly status: "Enabled"
  readonly filter: { readonly prefix: string }
  readonly transitions?: ReadonlyArray<{ readonly days: number; readonly storageClass: "STANDARD_IA" | "GLACIER_IR" | "GLACIER" }>
  readonly expiration?: { readonly days: number }
  readonly noncurrentVersionExpiration: { readonly noncurrentDays: number }
  readonly abortIncompleteMultipartUpload: { readonly daysAfterInitiation: number }
}

export const lakeLifecycleRules = (lake: StageConfig["lake"]): Array<LifecycleRule> => {
  if (lake.glacierAfterDays <= lake.infrequentAccessAfterDays) throw new Error("lake: glacierAfterDays must be after infrequentAccessAfterDays")
  // S3 requires at least 30 days in STANDARD before STANDARD_IA
  if (lake.infrequentAccessAfterDays < 30) throw new Error("lake: infrequentAccessAfterDays must be at least 30")
  const housekeeping = {
    noncurrentVersionExpiration: { noncurrentDays: lake.noncurrentExpireAfterDays },
    abortIncompleteMultipartUpload: { daysAfterInitiation: 7 }
  }
  const archive = [
    { days: lake.infrequentAccessAfterDays, storageClass: "STANDARD_IA" as const },
    { days: lake.glacierAfterDays, storageClass: "GLACIER_IR" as const }
  ]
  return [
    { id: "raw-archive", status: "Enabled", filter: { prefix: LAKE_PREFIXES.raw }, transitions: archive, ...housekeeping },
    { id: "claims-archive", status: "Enabled", filter: { prefix: LAKE_PREFIXES.claims }, transitions: archive, ...housekeeping },
    { id: "parquet-infrequent", status: "Enabled", filter: { prefix: LAKE_PREFIXES.parquet }, transitions: [archive[0]!], ...housekeeping },
    { id: "dead-letter-infrequent", status: "Enabled", filter: { prefix: LAKE_PREFIXES.deadLetter }, transitions: [archive[0]!], ...housekeeping },
    { id: "errors-expire", status: "Enabled", filter: { prefix: LAKE_PREFIXES.errors }, expiration: { days: lake.errorsExpireAfterDays }, ...housekeeping }
  ]
}
