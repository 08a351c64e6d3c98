/**
 * The reader: one Fargate task (sst.aws.Service, min = max = 1) running
 * `node bin/totes.mjs run --components reader` from the repository's Dockerfile. Deployments stop
 * the old task before starting the new one (one replication connection per slot).
 * IAM: publish to the stream, read/write checkpoints, write claim checks (policies.ts).
 */
import { lakeArns, toPermissions } from "./iam.ts"
import { readerStatements } from "./policies.ts"
import type { DatabaseOutputs } from "./databases.ts"
import type { StageConfig } from "./stage-config.ts"

/** As the Dockerfile's CMD: the reader with a capped heap (its outbox is bounded: services/cli/component-processes.ts NODE_FLAGS). */
export const READER_COMMAND = ["node", "--max-old-space-size=160", "bin/totes.mjs", "run", "--components", "reader"]

export const reader = (
  config: StageConfig,
  deps: {
    readonly cluster: sst.aws.Cluster
    readonly stream: { readonly stream: sst.aws.KinesisStream; readonly link: sst.Linkable<Record<string, any>> }
    readonly checkpoints: { readonly table: sst.aws.Dynamo; readonly link: sst.Linkable<Record<string, any>> }
    readonly lake: { readonly bucket: sst.aws.Bucket; readonly link: sst.Linkable<Record<string, any>> }
    readonly source: DatabaseOutputs
  }
) => {
  const service = new sst.aws.Service("Reader", {
    cluster: deps.cluster,
    image: { context: ".", dockerfile: "Dockerfile" },
    command: READER_COMMAND,
    cpu: config.reader.cpu,
    memory: config.reader.memory,
    scaling: { min: 1, max: 1 },
    dev: false,
    link: [deps.stream.link, deps.checkpoints.link, deps.lake.link, deps.source.link],
    permissions: toPermissions(
      readerStatements({ stream: deps.stream.stream.arn, checkpointTable: deps.checkpoints.table.arn, lake: lakeArns(deps.lake.bucket.arn) })
    ),
    environment: {
      AWS_REGION: aws.getRegionOutput().region,
      TOTES_STAGE: $app.stage,
      TOTES_STREAM: deps.stream.stream.name,
      TOTES_CHECKPOINT_TABLE: deps.checkpoints.table.name,
      TOTES_LAKE_BUCKET: deps.lake.bucket.name,
      TOTES_SLOT: "totes_cdc",
      TOTES_PUBLICATION: "totes_cdc",
      TOTES_FAILOVER_SLOT: String(config.reader.failoverSlot),
      TOTES_LOG_LEVEL: "info"
    },
    ssm: { SOURCE_DATABASE_URL: deps.source.secret.arn },
    logging: { retention: config.logRetention },
    transform: {
      service: (args) => {
        args.deploymentMaximumPercent = 100
        args.deploymentMinimumHealthyPercent = 0
      }
    }
  })
  return { service }
}
