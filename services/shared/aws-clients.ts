/** The AWS SDK v3 clients of the pipeline (aws-client-options.ts); import the single client's module where only one is needed. */
export { dynamoClient } from "./dynamo-client.ts"
export { firehoseClient } from "./firehose-client.ts"
export { kinesisClient } from "./kinesis-client.ts"
export { s3Client } from "./s3-client.ts"
export { secretsManagerClient } from "./secrets-manager-client.ts"
