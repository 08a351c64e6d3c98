/**
 * On-demand tasks in the cluster (sst.aws.Task, nothing runs until started):
 *   Replay          `totes replay …`        lake → the consumer's projection → warehouse
 *   LakeCompaction  `totes lake compact …`  raw/ → parquet/
 * Start one with `aws ecs run-task` using the outputs of `sst deploy` (see sst.config.ts),
 * overriding the command to pass arguments.
 */
import { lakeArns, toPermissions } from "./iam.ts"
import { compactionStatements, replayStatements } from "./policies.ts"
import type { DatabaseOutputs } from "./databases.ts"
import type { StageConfig } from "./stage-config.ts"

export const REPLAY_COMMAND = ["node", "bin/totes.mjs", "replay"]
export const COMPACT_COMMAND = ["node", "bin/totes.mjs", "lake", "compact"]

export const tasks = (
  config: StageConfig,
  deps: {
    readonly cluster: sst.aws.Cluster
    readonly checkpoints: { readonly table: sst.aws.Dynamo; readonly link: sst.Linkable<Record<string, any>> }
    readonly lake: { readonly bucket: sst.aws.Bucket; readonly link: sst.Linkable<Record<string, any>> }
    readonly warehouse: DatabaseOutputs
  }
) => {
  const common = {
    cluster: deps.cluster,
    image: { context: ".", dockerfile: "Dockerfile" },
    cpu: config.tasks.cpu,
    memory: config.tasks.memory,
    dev: false as const,
    logging: { retention: config.logRetention }
  }
  const lake = lakeArns(deps.lake.bucket.arn)
  const region = aws.getRegionOutput().region
  const replay = new sst.aws.Task("Replay", {
    ...common,
    command: REPLAY_COMMAND,
    link: [deps.checkpoints.link, deps.lake.link, deps.warehouse.link],
    permissions: toPermissions(replayStatements({ checkpointTable: deps.checkpoints.table.arn, lake })),
    environment: {
      AWS_REGION: region,
      TOTES_STAGE: $app.stage,
      TOTES_CHECKPOINT_TABLE: deps.checkpoints.table.name,
      TOTES_LAKE_BUCKET: deps.lake.bucket.name
    },
    ssm: { WAREHOUSE_DATABASE_URL: deps.warehouse.secret.arn }
  })
  const compaction = new sst.aws.Task("LakeCompaction", {
    ...common,
    command: COMPACT_COMMAND,
    link: [deps.lake.link],
    permissions: toPermissions(compactionStatements({ lake })),
    environment: { AWS_REGION: region, TOTES_STAGE: $app.stage, TOTES_LAKE_BUCKET: deps.lake.bucket.name }
  })
  return { replay, compaction }
}
