/**
 * What the deployed components may carry in plain environment variables: names, ARNs and
 * settings, never a credential. Database URLs hold a password: ECS tasks receive theirs as task
 * definition secrets (`ssm`), the consumer Lambda reads its warehouse URL from Secrets Manager at
 * cold start (TOTES_WAREHOUSE_SECRET_ARN). Plain data, unit-tested.
 */
/** The consumer Lambda's environment. */
export const consumerEnvironment = <A>(refs: {
  readonly stage: A
  readonly stream: A
  readonly checkpointTable: A
  readonly lakeBucket: A
  readonly warehouseSecretArn: A
}): Record<string, A | string> => ({
  TOTES_STAGE: refs.stage,
  TOTES_STREAM: refs.stream,
  TOTES_CHECKPOINT_TABLE: refs.checkpointTable,
  TOTES_LAKE_BUCKET: refs.lakeBucket,
  TOTES_WAREHOUSE_SECRET_ARN: refs.warehouseSecretArn,
  // the Lambda runtime's CA file includes the RDS certificate authorities
  NODE_EXTRA_CA_CERTS: "/var/runtime/ca-cert.pem",
  TOTES_LOG_LEVEL: "info"
})
