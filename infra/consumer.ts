/**
 * The consumer: a Lambda subscribed to the stream (services/consumer/handler.handler), from
 * TRIM_HORIZON, with partial batch responses, bisect on error, bounded retries and an SQS
 * on-failure destination (a batch that exhausts its retries is recorded there and the alarm
 * fires: replay that range from the lake). It runs in the VPC's private subnets to reach the
 * warehouse. IAM: its own checkpoints, claim checks (read), dead-letter/ (write), the failure
 * queue, the warehouse URL's secret; stream read actions come from the subscription itself
 * (policies.ts). The warehouse URL is never in its environment: the handler reads the secret at
 * cold start (environment-spec.ts, services/shared/warehouse-url.ts).
 */
import { CONSUMER_COPY_FILES, CONSUMER_HANDLER } from "./consumer-package.ts"
import { lakeArns, toPermissions } from "./iam.ts"
import { consumerEnvironment } from "./environment-spec.ts"
import { consumerStatements } from "./policies.ts"
import type { DatabaseOutputs } from "./databases.ts"
import type { StageConfig } from "./stage-config.ts"


export const consumer = (
  config: StageConfig,
  deps: {
    readonly vpc: sst.aws.Vpc
    readonly stream: { readonly stream: sst.aws.KinesisStream; readonly link: sst.Linkable<Record<string, any>> }
    readonly checkpoints: { readonly table: sst.aws.Dynamo; readonly link: sst.Linkable<Record<string, any>> }
    readonly lake: { readonly bucket: sst.aws.Bucket; readonly link: sst.Linkable<Record<string, any>> }
    readonly warehouse: DatabaseOutputs
  }
) => {
  const c = config.consumer
  const failures = new sst.aws.Queue("ConsumerFailures", {
    transform: { queue: { messageRetentionSeconds: 14 * 24 * 3600, sqsManagedSseEnabled: true } }
  })
  const subscriber = deps.stream.stream.subscribe(
    "Consumer",
    {
      handler: CONSUMER_HANDLER,
      copyFiles: CONSUMER_COPY_FILES.map((entry) => ({ ...entry })),
      runtime: "nodejs22.x",
      architecture: "arm64",
      memory: `${c.memoryMb} MB`,
      timeout: `${c.timeoutSeconds} seconds`,
      vpc: deps.vpc,
      link: [deps.checkpoints.link, deps.lake.link, deps.warehouse.link],
      permissions: toPermissions(
        consumerStatements({
          checkpointTable: deps.checkpoints.table.arn,
          lake: lakeArns(deps.lake.bucket.arn),
          failureQueue: failures.arn,
          warehouseSecret: deps.warehouse.secret.arn
        })
      ),
      environment: consumerEnvironment<$util.Input<string>>({
        stage: $app.stage,
        stream: deps.stream.stream.name,
        checkpointTable: deps.checkpoints.table.name,
        lakeBucket: deps.lake.bucket.name,
        warehouseSecretArn: deps.warehouse.secret.arn
      }),
      logging: { retention: config.logRetention }
    },
    {
      transform: {
        eventSourceMapping: (args) => {
          args.startingPosition = "TRIM_HORIZON"
          args.batchSize = c.batchSize
          args.maximumBatchingWindowInSeconds = c.batchingWindowSeconds
          args.functionResponseTypes = ["ReportBatchItemFailures"]
          args.bisectBatchOnFunctionError = true
          args.maximumRetryAttempts = c.maximumRetryAttempts
          args.maximumRecordAgeInSeconds = c.maximumRecordAgeSeconds
          args.parallelizationFactor = c.parallelizationFactor
          args.destinationConfig = { onFailure: { destinationArn: failures.arn } }
        }
      }
    }
  )
  const functionName = subscriber.apply((s) => s.nodes.function.apply((f) => f.name))
  return { subscriber, failures, functionName }
}
