/**
 * Firehose: Kinesis stream → lake raw/ (gzip NDJSON, hourly prefixes), failures → errors/.
 * Its role may read the stream and write only raw/ and errors/ (policies.ts).
 */
import { firehoseDestination } from "./firehose-spec.ts"
import { lakeArnStrings, physicalName } from "./iam.ts"
import { firehoseStatements, firehoseTrustPolicy, policyDocument } from "./policies.ts"
import type { StageConfig } from "./stage-config.ts"

export const firehose = (
  config: StageConfig,
  deps: { readonly stream: sst.aws.KinesisStream; readonly bucket: sst.aws.Bucket }
) => {
  const logGroup = new aws.cloudwatch.LogGroup("FirehoseLogs", {
    name: `/totes/${$app.stage}/firehose`,
    retentionInDays: config.production ? 365 : 7
  })
  const logStream = new aws.cloudwatch.LogStream("FirehoseLogStream", { logGroupName: logGroup.name, name: "S3Delivery" })
  const account = aws.getCallerIdentityOutput({})
  const role = new aws.iam.Role("FirehoseRole", {
    assumeRolePolicy: account.accountId.apply(firehoseTrustPolicy)
  })
  const policy = new aws.iam.RolePolicy("FirehosePolicy", {
    role: role.id,
    policy: $resolve({ stream: deps.stream.arn, bucket: deps.bucket.arn, log: logStream.arn }).apply(({ stream, bucket, log }) =>
      policyDocument(firehoseStatements({ stream, lake: lakeArnStrings(bucket), logStream: log }))
    )
  })
  const delivery = new aws.kinesis.FirehoseDeliveryStream(
    "LakeDelivery",
    {
      name: physicalName("lake"),
      destination: "extended_s3",
      kinesisSourceConfiguration: { kinesisStreamArn: deps.stream.arn, roleArn: role.arn },
      extendedS3Configuration: {
        ...firehoseDestination(config.firehose),
        bucketArn: deps.bucket.arn,
        roleArn: role.arn,
        cloudwatchLoggingOptions: { enabled: true, logGroupName: logGroup.name, logStreamName: logStream.name }
      }
    },
    { dependsOn: [policy] }
  )
  return { delivery, role }
}
