// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- SST generates these globals
/// <reference path="./.sst/platform/config.d.ts" />
/**
 * totes-cdc on AWS: Postgres (logical replication) → reader (ECS) → Kinesis → Firehose → S3 lake,
 * Kinesis → consumer (Lambda) → warehouse; checkpoints in DynamoDB; the lake watermark every
 * minute (Lambda); alarms and a dashboard.
 * One file per concern under infra/; the settings that vary per stage are in
 * infra/stage-config.ts, the IAM statements in infra/policies.ts, alarms in
 * infra/alarms-spec.ts, Firehose settings in infra/firehose-spec.ts, the Glue tables and Athena
 * workgroup in infra/lake-catalog-spec.ts (all unit-tested).
 *
 * Offline type-check: scripts/sst-typecheck.sh. Deploy: `npx sst deploy --stage <stage>`.
 */
export default $config({
  async app(input) {
    const { appSettings } = await import("./infra/stage-config.ts")
    const { removal, protect } = appSettings(input.stage)
    return {
      name: "totes-cdc",
      home: "aws",
      removal,
      protect,
      providers: { aws: { region: "eu-west-2" } }
    }
  },
  async run() {
    const { stageConfig } = await import("./infra/stage-config.ts")
    const { network } = await import("./infra/network.ts")
    const { stream } = await import("./infra/stream.ts")
    const { lake } = await import("./infra/lake.ts")
    const { firehose } = await import("./infra/firehose.ts")
    const { checkpoints } = await import("./infra/checkpoints.ts")
    const { databases } = await import("./infra/databases.ts")
    const { cluster } = await import("./infra/cluster.ts")
    const { reader } = await import("./infra/reader.ts")
    const { consumer } = await import("./infra/consumer.ts")
    const { tasks, REPLAY_COMMAND, COMPACT_COMMAND } = await import("./infra/replay.ts")
    const { lakeWatermark } = await import("./infra/lake-watermark.ts")
    const { monitoring } = await import("./infra/monitoring.ts")
    const { lakeCatalog } = await import("./infra/lake-catalog.ts")

    const config = stageConfig($app.stage, process.env)
    const { vpc } = network(config)
    const changes = stream(config)
    const lakeBucket = lake(config)
    const delivery = firehose(config, { stream: changes.stream, bucket: lakeBucket.bucket })
    const catalog = lakeCatalog(config, { bucket: lakeBucket.bucket })
    const checkpointTable = checkpoints(config)
    const { source, warehouse } = databases(config, { vpc })
    const ecs = cluster({ vpc })
    const readerService = reader(config, { cluster: ecs, stream: changes, checkpoints: checkpointTable, lake: lakeBucket, source })
    const consumerFunction = consumer(config, { vpc, stream: changes, checkpoints: checkpointTable, lake: lakeBucket, warehouse })
    const { replay, compaction } = tasks(config, { cluster: ecs, checkpoints: checkpointTable, lake: lakeBucket, warehouse })
    lakeWatermark(config, { lake: lakeBucket })
    const monitor = monitoring(config, {
      streamName: changes.stream.name,
      consumerFunctionName: consumerFunction.functionName,
      failureQueueName: consumerFunction.failures.nodes.queue.name,
      deliveryStreamName: delivery.delivery.name,
      ...(source.instanceId ? { sourceDbInstanceId: source.instanceId } : {})
    })

    /** A ready `aws ecs run-task` command; edit the command override to pass arguments. */
    const runTask = (task: sst.aws.Task, command: ReadonlyArray<string>) =>
      $resolve({
        clusterArn: ecs.nodes.cluster.arn,
        taskDefinition: task.taskDefinition,
        subnets: task.subnets,
        securityGroups: task.securityGroups,
        publicIp: task.assignPublicIp,
        containers: task.containers
      }).apply(({ clusterArn, taskDefinition, subnets, securityGroups, publicIp, containers }) =>
        [
          "aws ecs run-task --launch-type FARGATE",
          `--cluster ${clusterArn}`,
          `--task-definition ${taskDefinition}`,
          `--network-configuration 'awsvpcConfiguration={subnets=[${subnets.join(",")}],securityGroups=[${securityGroups.join(",")}],assignPublicIp=${publicIp ? "ENABLED" : "DISABLED"}}'`,
          `--overrides '${JSON.stringify({ containerOverrides: [{ name: containers[0], command: [...command] }] })}'`
        ].join(" ")
      )

    return {
      stage: $app.stage,
      stream: changes.stream.name,
      lakeBucket: lakeBucket.bucket.name,
      firehose: delivery.delivery.name,
      checkpointTable: checkpointTable.table.name,
      readerService: readerService.service.nodes.service.name,
      consumerFunction: consumerFunction.functionName,
      consumerFailureQueue: consumerFunction.failures.url,
      alarmTopic: monitor.topic.arn,
      dashboard: monitor.dashboardUrl,
      runReplay: runTask(replay, REPLAY_COMMAND),
      runLakeCompaction: runTask(compaction, COMPACT_COMMAND),
      lakeDatabase: catalog.database.name,
      athenaWorkgroup: catalog.workgroup.name,
      athenaResultsBucket: catalog.results.name,
      lakeAnalystPolicy: catalog.analystPolicy.arn
    }
  }
})
