/**
 * The VPC: databases in private subnets, the reader and tasks in public subnets with public IPs
 * (SST's default for Fargate in an sst.aws.Vpc), the consumer Lambda in private subnets. Gateway
 * endpoints let private subnets reach S3 and DynamoDB without NAT; NAT (per stage) is for the
 * rest (e.g. Kinesis ListShards from the Lambda, Secrets Manager).
 */
import type { StageConfig } from "./stage-config.ts"

export const network = (config: StageConfig) => {
  const vpc = new sst.aws.Vpc("Network", {
    az: config.production ? 3 : 2,
    ...(config.network.nat === "none" ? {} : { nat: config.network.nat })
  })
  const region = aws.getRegionOutput().region
  const routeTableIds = vpc.nodes.privateRouteTables.apply((tables) => tables.map((t) => t.id))
  for (const service of ["s3", "dynamodb"] as const) {
    new aws.ec2.VpcEndpoint(`Network${service === "s3" ? "S3" : "DynamoDb"}Endpoint`, {
      vpcId: vpc.id,
      serviceName: $interpolate`com.amazonaws.${region}.${service}`,
      vpcEndpointType: "Gateway",
      routeTableIds
    })
  }
  return { vpc }
}
