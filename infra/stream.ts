/**
 * The change stream: on-demand or provisioned per stage, encrypted with the AWS-managed key.
 * Linked as `TotesStream` (name, arn) without permissions: each service gets exactly its
 * actions from policies.ts.
 */
import { statefulOptions } from "./iam.ts"
import type { StageConfig } from "./stage-config.ts"

export const stream = (config: StageConfig) => {
  const { capacity, retentionHours } = config.stream
  const changes = new sst.aws.KinesisStream(
    "Changes",
    {
      transform: {
        stream: (args) => {
          args.streamModeDetails = { streamMode: capacity.mode }
          args.shardCount = capacity.mode === "PROVISIONED" ? capacity.shards : undefined
          args.retentionPeriod = retentionHours
          args.encryptionType = "KMS"
          args.kmsKeyId = "alias/aws/kinesis"
          args.shardLevelMetrics = ["IncomingRecords", "IteratorAgeMilliseconds", "WriteProvisionedThroughputExceeded"]
        }
      }
    },
    statefulOptions(config.production)
  )
  const link = new sst.Linkable("TotesStream", { properties: { name: changes.name, arn: changes.arn } })
  return { stream: changes, link }
}
