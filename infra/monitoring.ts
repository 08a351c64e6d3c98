/**
 * Alarms (alarms-spec.ts) to an SNS topic with an optional e-mail subscription, and one
 * dashboard with the pipeline's metrics.
 */
import { alarmSpecs, dashboardBody } from "./alarms-spec.ts"
import { physicalName } from "./iam.ts"
import type { StageConfig } from "./stage-config.ts"

const pascal = (id: string) => id.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase())

export const monitoring = (
  config: StageConfig,
  deps: {
    readonly streamName: $util.Output<string>
    readonly consumerFunctionName: $util.Output<string>
    readonly failureQueueName: $util.Output<string>
    readonly deliveryStreamName: $util.Output<string>
    readonly sourceDbInstanceId?: $util.Output<string>
  }
) => {
  const topic = new sst.aws.SnsTopic("Alarms")
  if (config.alarms.email) {
    new aws.sns.TopicSubscription("AlarmsEmail", { topic: topic.arn, protocol: "email", endpoint: config.alarms.email })
  }
  const alarms = alarmSpecs($app.stage, config.alarms, {
    consumerFunctionName: deps.consumerFunctionName,
    failureQueueName: deps.failureQueueName,
    deliveryStreamName: deps.deliveryStreamName,
    ...(deps.sourceDbInstanceId ? { sourceDbInstanceId: deps.sourceDbInstanceId } : {})
  }).map(
    (spec) =>
      new aws.cloudwatch.MetricAlarm(`Alarm${pascal(spec.id)}`, {
        name: spec.name,
        alarmDescription: spec.description,
        namespace: spec.namespace,
        metricName: spec.metricName,
        dimensions: spec.dimensions,
        statistic: spec.statistic,
        period: spec.periodSeconds,
        evaluationPeriods: spec.evaluationPeriods,
        datapointsToAlarm: spec.datapointsToAlarm,
        threshold: spec.threshold,
        comparisonOperator: spec.comparison,
        treatMissingData: spec.treatMissingData,
        alarmActions: [topic.arn],
        okActions: [topic.arn]
      })
  )
  const region = aws.getRegionOutput().region
  const dashboard = new aws.cloudwatch.Dashboard("Dashboard", {
    dashboardName: physicalName("pipeline", 255),
    dashboardBody: $resolve({
      region,
      streamName: deps.streamName,
      consumerFunctionName: deps.consumerFunctionName,
      failureQueueName: deps.failureQueueName,
      deliveryStreamName: deps.deliveryStreamName,
      sourceDbInstanceId: deps.sourceDbInstanceId,
      alarmArns: alarms.map((a) => a.arn)
    }).apply((v) => dashboardBody({ ...v, stage: $app.stage, sourceDbInstanceId: v.sourceDbInstanceId ?? undefined }))
  })
  const dashboardUrl = $interpolate`https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${dashboard.dashboardName}`
  return { topic, alarms, dashboard, dashboardUrl }
}
