/**
 * The lake watermark, every minute: a small scheduled Lambda (services/lake/watermark-handler.handler)
 * reads the newest raw objects, computes how far the lake is complete and emits
 * LakeWatermarkAgeSeconds, which the `firehose-freshness` alarm watches. Its warm container keeps
 * what it read, so each run reads only newly delivered objects. IAM: list and read raw/, nothing
 * else (policies.ts). No VPC: it only talks to S3.
 */
import { lakeArns, toPermissions } from "./iam.ts"
import { lakeWatermarkStatements } from "./policies.ts"
import type { StageConfig } from "./stage-config.ts"

export const LAKE_WATERMARK_HANDLER = "services/lake/watermark-handler.handler"

export const lakeWatermark = (
  config: StageConfig,
  deps: { readonly lake: { readonly bucket: sst.aws.Bucket; readonly link: sst.Linkable<Record<string, any>> } }
) => {
  const cron = new sst.aws.CronV2("LakeWatermark", {
    schedule: "rate(1 minute)",
    function: {
      handler: LAKE_WATERMARK_HANDLER,
      runtime: "nodejs22.x",
      architecture: "arm64",
      memory: "1024 MB",
      timeout: "55 seconds",
      link: [deps.lake.link],
      permissions: toPermissions(lakeWatermarkStatements({ lake: lakeArns(deps.lake.bucket.arn) })),
      environment: { TOTES_STAGE: $app.stage, TOTES_LAKE_BUCKET: deps.lake.bucket.name, TOTES_LOG_LEVEL: "info" },
      logging: { retention: config.logRetention }
    }
  })
  return { cron }
}
