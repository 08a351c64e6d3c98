/**
 * Checkpoints: one DynamoDB table (hash key `pk` string), on-demand, point-in-time recovery.
 * Items: reader#<slot>, snapshot#<slot>, consumer#<stream>#<shard>, replay#<name>
 * (contracts/checkpoint.ts). Linked as `TotesCheckpoints` (name, arn) without permissions.
 */
import { statefulOptions } from "./iam.ts"
import type { StageConfig } from "./stage-config.ts"

export const checkpoints = (config: StageConfig) => {
  const table = new sst.aws.Dynamo(
    "Checkpoints",
    {
      fields: { pk: "string" },
      primaryIndex: { hashKey: "pk" },
      deletionProtection: config.checkpoints.deletionProtection,
      transform: {
        table: (args) => {
          args.billingMode = "PAY_PER_REQUEST"
          args.pointInTimeRecovery = { enabled: true }
        }
      }
    },
    statefulOptions(config.production)
  )
  const link = new sst.Linkable("TotesCheckpoints", { properties: { name: table.name, arn: table.arn } })
  return { table, link }
}
