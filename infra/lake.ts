/**
 * The lake bucket: versioned, Object Lock enabled (default retention in production), HTTPS
 * only, lifecycle to cheaper storage (lake-spec.ts). Prefixes: raw/ (Firehose), errors/
 * (Firehose failures), claims/ (reader, oversize events), dead-letter/ (consumer), parquet/
 * (compaction). Linked as `TotesLake` (name, arn) without permissions.
 */
import { statefulOptions } from "./iam.ts"
import { lakeLifecycleRules } from "./lake-spec.ts"
import type { StageConfig } from "./stage-config.ts"

export const lake = (config: StageConfig) => {
  const bucket = new sst.aws.Bucket(
    "Lake",
    {
      versioning: true,
      enforceHttps: true,
      transform: {
        bucket: (args) => {
          // Object Lock can only be turned on when the bucket is created
          args.objectLockEnabled = true
          args.forceDestroy = !config.production
        }
      }
    },
    statefulOptions(config.production)
  )
  if (config.lake.objectLock) {
    new aws.s3.BucketObjectLockConfiguration("LakeObjectLock", {
      bucket: bucket.name,
      objectLockEnabled: "Enabled",
      rule: { defaultRetention: { mode: config.lake.objectLock.mode, days: config.lake.objectLock.days } }
    })
  }
  new aws.s3.BucketLifecycleConfiguration("LakeLifecycle", {
    bucket: bucket.name,
    rules: lakeLifecycleRules(config.lake).map((rule) => ({
      id: rule.id,
      status: rule.status,
      filter: { prefix: rule.filter.prefix },
      transitions: rule.transitions?.map((t) => ({ days: t.days, storageClass: t.storageClass })),
      expiration: rule.expiration ? { days: rule.expiration.days } : undefined,
      noncurrentVersionExpiration: { noncurrentDays: rule.noncurrentVersionExpiration.noncurrentDays },
      abortIncompleteMultipartUpload: { daysAfterInitiation: rule.abortIncompleteMultipartUpload.daysAfterInitiation }
    }))
  })
  const link = new sst.Linkable("TotesLake", { properties: { name: bucket.name, arn: bucket.arn } })
  return { bucket, link }
}
